"""One track of the tracker: its Kalman state, smoothed embedding, appearance gallery and
latest detection (NumPy only)."""
from __future__ import annotations

import enum

import numpy as np

from hvisnet_jax.tracking.kalman import tlbr_to_xyah, xyah_to_tlbr


class State(enum.IntEnum):
  NEW = 0
  TRACKED = 1
  LOST = 2
  REMOVED = 3


class Track:
  """One identity: Kalman state, smoothed embedding, and its latest detection."""

  def __init__(self, box, score, emb, det_index, gallery_size=0):
    self.box = np.asarray(box, float)
    self.score = float(score)
    self.smooth_feat = None
    # The last `gallery_size` matched features, a ring: row gallery_count % size is next.
    self.gallery = None
    self.gallery_count = 0
    self._gallery_size = gallery_size
    # A detection's feature enters the gallery only if it becomes a track (activate): most
    # detections are matched to an existing track, whose gallery takes the feature then.
    self.update_features(emb, 0.0, to_gallery=False)
    self.det_index = det_index
    self.track_id = 0
    self.state = State.NEW
    self.is_activated = False
    self.mean = self.cov = None
    self.frame_id = self.start_frame = 0
    self.tracklet_len = 0
    self.hits = 0        # frames with a detection over the track's whole life (coasting)

  def update_features(self, emb, alpha, to_gallery=True):
    f = np.asarray(emb, float)
    f = f / max(np.linalg.norm(f), 1e-12)
    self.curr_feat = f
    if to_gallery and alpha < 1.0:             # alpha 1: a feature the track does not take
      self._add_to_gallery(f)
    if self.smooth_feat is None:
      self.smooth_feat = f
    else:
      self.smooth_feat = alpha * self.smooth_feat + (1 - alpha) * f
    self.smooth_feat = self.smooth_feat / max(np.linalg.norm(self.smooth_feat), 1e-12)

  def _add_to_gallery(self, f):
    if not self._gallery_size:
      return
    if self.gallery is None:
      self.gallery = np.zeros((self._gallery_size, len(f)))
    self.gallery[self.gallery_count % self._gallery_size] = f
    self.gallery_count += 1

  @property
  def tlbr(self):
    return self.box.copy() if self.mean is None else xyah_to_tlbr(self.mean[:4])

  def activate(self, kf, frame_id, track_id):
    self._add_to_gallery(self.curr_feat)
    self.track_id = track_id
    self.mean, self.cov = kf.initiate(tlbr_to_xyah(self.box))
    self.tracklet_len = 0
    self.hits = 1
    self.state = State.TRACKED
    self.is_activated = frame_id == 1
    self.frame_id = self.start_frame = frame_id

  def update(self, kf, det: 'Track', frame_id, alpha, reactivate=False):
    self.mean, self.cov = kf.update(self.mean, self.cov, tlbr_to_xyah(det.box))
    self.box, self.score, self.det_index = det.box, det.score, det.det_index
    self.update_features(det.curr_feat, alpha)
    self.state = State.TRACKED
    self.is_activated = True
    self.frame_id = frame_id
    self.tracklet_len = 0 if reactivate else self.tracklet_len + 1
    self.hits += 1
