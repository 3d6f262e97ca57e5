"""The match module: Kalman filter + Hungarian matching on embeddings and boxes (NumPy/SciPy).

Follows the authors' released tracker (FairMOT's JDETracker carrying a mask per track;
docs/design.md, "The tracker"): embeddings L2-normalised and smoothed per track (EMA 0.9); stage 1
matches tracked and lost tracks to detections by cosine distance, gated by the Kalman
Mahalanobis distance (cost = inf above chi2_0.95(4) = 9.4877, else 0.98 * emb + 0.02 *
maha; ours gates at chi2_0.99(4)), threshold 0.7; stage 2
matches the remaining tracked tracks by IoU distance (threshold 0.5); unconfirmed tracks
by IoU distance 0.7; a new track needs score >= 0.5; a lost track is removed after
`track_buffer * fps / 30` frames; duplicates between tracked and lost tracks (IoU
distance < 0.15) keep the longer track. Additions of ours
(tracking/config.py; measured in docs/tracker.md): tracks lost for longer than `reid_after_lost` frames are
re-identified by appearance alone; coasting through short misses; an appearance gallery
beside the EMA feature; a wider motion gate; a tracked track keeps a detection a lost
track would take from it when its own predicted box overlaps that detection more.

The settings are tracking/config.py's; masks per track (id maps, the mask carried through
a short miss) are tracking/masks.py's. No jax or tensorflow imports: the tracker runs on
the host beside the accelerator.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import numpy as np

from hvisnet_jax.tracking.config import AUTHORS_MATCHING, TrackerConfig  # pylint: disable=unused-import
from hvisnet_jax.tracking.kalman import KalmanFilter, tlbr_to_xyah, warp_states
from hvisnet_jax.tracking.track import State, Track
from hvisnet_jax.tracking import matching
from hvisnet_jax.tracking.matching import iou_matrix, linear_assignment


@dataclasses.dataclass(frozen=True)
class Stage:
  """One association step of Tracker.update: which tracks meet which detections, by what
  cost, under which TrackerConfig threshold, and what the tracks it leaves become."""
  name: str
  tracks: str           # 'pool' (tracked + lost), 'tracked_left' (tracked, unmatched so
                        # far), 'unconfirmed' (started last frame)
  detections: str       # 'strong' (>= det_thresh, unmatched so far), 'weak'
  cost: str             # 'embedding' (appearance gated by motion) or 'iou' (1 - IoU)
  threshold: str        # the TrackerConfig field that caps the cost
  unmatched: str = ''   # the tracks left: '' (on to the next stage), 'lost' or 'removed'
  keep_embedding: bool = True   # False: a match moves the track, not its embedding


# The authors' stages, with ByteTrack's weak second chance (empty unless low_det_thresh).
STAGES = (
    Stage('appearance', 'pool', 'strong', 'embedding', 'embedding_thresh'),
    Stage('iou', 'tracked_left', 'strong', 'iou', 'iou_thresh'),
    Stage('weak', 'tracked_left', 'weak', 'iou', 'low_iou_thresh', unmatched='lost',
          keep_embedding=False),
    Stage('unconfirmed', 'unconfirmed', 'strong', 'iou', 'unconfirmed_iou_thresh',
          unmatched='removed'),
)


class Tracker:
  """Per frame: `update(boxes, scores, embeddings, valid)` -> {detection index: track id}."""

  def __init__(self, config: Optional[TrackerConfig] = None):
    self.config = config or TrackerConfig()
    self.kf = KalmanFilter(self.config.std_weight_position, self.config.std_weight_velocity)
    self.tracked: List[Track] = []
    self.lost: List[Track] = []
    self.frame_id = 0
    self._next_id = 0
    self._emb_dim = None

  def _new_id(self):
    self._next_id += 1
    return self._next_id

  def _check_inputs(self, boxes, scores, embeddings, valid):
    """Arrays of one frame, or a ValueError that says which argument has which shape."""
    boxes = np.asarray(boxes, float)
    if boxes.size == 0:
      boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
      raise ValueError(f'tracker: boxes must be (N, 4) x1 y1 x2 y2, got shape {boxes.shape}')
    n = len(boxes)
    scores = np.asarray(scores, float)
    if scores.shape != (n,):
      raise ValueError(f'tracker: scores must be ({n},) for {n} boxes, got shape '
                       f'{scores.shape}')
    embeddings = np.asarray(embeddings, float)
    if n == 0 and embeddings.size == 0:
      embeddings = embeddings.reshape(0, self._emb_dim or 0)
    if embeddings.ndim != 2 or len(embeddings) != n:
      raise ValueError(f'tracker: embeddings must be ({n}, D) for {n} boxes, got shape '
                       f'{embeddings.shape}')
    if n and self._emb_dim is None:
      self._emb_dim = embeddings.shape[1]
    elif n and embeddings.shape[1] != self._emb_dim:
      raise ValueError(f'tracker: embeddings of dimension {embeddings.shape[1]}, but this '
                       f'tracker\'s tracks have dimension {self._emb_dim}')
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    if valid.shape != (n,):
      raise ValueError(f'tracker: valid must be ({n},) for {n} boxes, got shape {valid.shape}')
    return boxes, scores, embeddings, valid

  def _embedding_cost(self, tracks, dets):
    """Stage 1's cost: appearance gated and fused with motion; appearance alone (stricter)
    for tracks lost longer than reid_after_lost frames."""
    if not len(tracks) or not len(dets):
      return np.zeros((len(tracks), len(dets)))
    det_feats = np.stack([de.curr_feat for de in dets])
    cost = matching.cosine_distance(np.stack([tr.smooth_feat for tr in tracks]), det_feats)
    z = np.stack([tlbr_to_xyah(de.box) for de in dets])
    maha = self.kf.gating_distances(np.stack([t.mean for t in tracks]),
                                    np.stack([t.cov for t in tracks]), z)
    long_lost = np.array([t.state == State.LOST and
                          self.frame_id - t.frame_id > self.config.reid_after_lost
                          for t in tracks])
    if self.config.gallery_size:
      # Only where the pair can match: inside the motion gate, or any detection for a
      # track re-identified by appearance alone. (All pairs would cost T x K x N products.)
      self._nearest_in_gallery(tracks, det_feats, cost, long_lost[:, None] |
                               (maha <= self.config.motion_gate))
    fused = matching.gated_fused_cost(cost, maha, self.config.motion_weight,
                                      self.config.motion_gate)
    if self.config.iou_weight:
      # A tie-breaker, not a gate: which pairs may match is still decided by the fused
      # cost against embedding_thresh (update() widens the threshold by iou_weight).
      iou_dist = 1 - iou_matrix([t.tlbr for t in tracks], [d.box for d in dets])
      fused = np.where(fused <= self.config.embedding_thresh,
                       fused + self.config.iou_weight * iou_dist, np.inf)
    by_appearance = np.where(cost <= self.config.reid_thresh, cost, np.inf)
    return np.where(long_lost[:, None], by_appearance, fused)

  def _tracked_keeps_overlap(self, pool, dets, cost, matches, u_track):
    """Stage 1's matches with detections moved from lost tracks to tracked tracks left
    unmatched that accept them (cost <= the threshold) and whose predicted boxes overlap
    them more (TrackerConfig.tracked_keeps_overlap). Returns (matches, unmatched tracks)."""
    free = [i for i in u_track if pool[i].state == State.TRACKED]
    to_lost = [k for k, (it, _) in enumerate(matches) if pool[it].state != State.TRACKED]
    if not free or not to_lost:
      return matches, u_track
    thresh = self.config.embedding_thresh + self.config.iou_weight
    matches = matches.copy()
    free_boxes = np.stack([pool[i].tlbr for i in free])
    for k in to_lost:
      it, idet = matches[k]
      box = dets[idet].box
      iou = iou_matrix(free_boxes, [box])[:, 0]
      iou[[cost[i, idet] > thresh for i in free]] = -1.0       # would not accept it
      j = int(np.argmax(iou))
      if iou[j] > iou_matrix([pool[it].tlbr], [box])[0, 0]:
        matches[k, 0] = free[j]
        free.pop(j)
        free_boxes = np.delete(free_boxes, j, axis=0)
        if not free:
          break
    return matches, np.setdiff1d(np.arange(len(pool)), matches[:, 0])

  def _nearest_in_gallery(self, tracks, det_feats, cost, candidates):
    """Lowers cost[t, n] (in place) to the mean distance from detection n to the 3 nearest
    of track t's last gallery_size features (all, if fewer), for the candidate pairs."""
    rows, cols = np.nonzero(candidates)
    if not len(rows):
      return
    k = self.config.gallery_size
    filled = np.minimum([t.gallery_count for t in tracks], k)[rows]            # (P,)
    gallery = np.stack([t.gallery for t in tracks])[rows]                      # (P, K, D)
    d = np.maximum(0.0, 1.0 - np.einsum('pkd,pd->pk', gallery, det_feats[cols]))
    d[np.arange(k)[None] >= filled[:, None]] = np.inf                          # empty rows
    m = min(3, k)
    nearest = np.partition(d, m - 1, axis=1)[:, :m]
    nearest = np.where(np.isfinite(nearest), nearest, 0.0).sum(1) / np.minimum(filled, m)
    cost[rows, cols] = np.minimum(cost[rows, cols], nearest)

  def _associate(self, stage: 'Stage', tracks, dets):
    """One stage's Hungarian assignment: (matches, unmatched tracks, unmatched dets)."""
    cfg = self.config
    if stage.cost == 'embedding':
      cost = self._embedding_cost(tracks, dets)
      m, u_track, u_det = linear_assignment(cost, cfg.embedding_thresh + cfg.iou_weight)
      if cfg.tracked_keeps_overlap:
        m, u_track = self._tracked_keeps_overlap(tracks, dets, cost, m, u_track)
      return m, u_track, u_det
    cost = 1 - iou_matrix([t.tlbr for t in tracks], [d.box for d in dets])
    return linear_assignment(cost, getattr(cfg, stage.threshold))

  def update(self, boxes, scores, embeddings, valid=None, warp=None) -> Dict[int, int]:
    """Associates this frame's detections (x1, y1, x2, y2 boxes in pixels) with tracks.

    warp: the camera's motion since the last frame (a 2x3 transform from
    camera_motion.CameraMotion), applied to every track's prediction; None for a still
    camera. Returns {detection index: track id} for the detections that belong to an
    activated, tracked track in this frame.
    """
    cfg = self.config
    boxes, scores, embeddings, valid = self._check_inputs(boxes, scores, embeddings, valid)
    self.frame_id += 1
    # A detection with a non-finite box, score or embedding is dropped: one NaN would
    # otherwise enter a Kalman state and every distance computed from it.
    finite = (np.isfinite(boxes).all(1) & np.isfinite(scores) & np.isfinite(embeddings).all(1))
    usable = valid & finite
    keep = np.flatnonzero(usable & (scores >= cfg.det_thresh))
    dets = [Track(boxes[i], scores[i], embeddings[i], int(i), cfg.gallery_size)
            for i in keep]
    low = cfg.det_thresh if cfg.low_det_thresh is None else cfg.low_det_thresh
    weak = np.flatnonzero(usable & (scores >= low) & (scores < cfg.det_thresh))

    unconfirmed = [t for t in self.tracked if not t.is_activated]
    tracked = [t for t in self.tracked if t.is_activated]
    pool = tracked + [t for t in self.lost if t not in tracked]
    if pool:
      for t in pool:
        if t.state != State.TRACKED:
          t.mean[7] = 0                     # as FairMOT: no height velocity while lost
      means, covs = self.kf.multi_predict(np.stack([t.mean for t in pool]),
                                          np.stack([t.cov for t in pool]))
      for t, m, c in zip(pool, means, covs):
        t.mean, t.cov = m, c
    moved = [t for t in pool + unconfirmed if t.mean is not None]
    if warp is not None and moved:
      means, covs = warp_states(np.stack([t.mean for t in moved]),
                                              np.stack([t.cov for t in moved]), warp)
      for t, m, c in zip(moved, means, covs):
        t.mean, t.cov = m, c

    activated, refound, lost, removed = [], [], [], []
    weak_dets = [Track(boxes[i], scores[i], embeddings[i], int(i), cfg.gallery_size)
                 for i in weak]
    groups = {'pool': pool, 'unconfirmed': unconfirmed, 'tracked_left': [],
              'strong': dets, 'weak': weak_dets}
    for stage in STAGES:
      tracks, found = groups[stage.tracks], groups[stage.detections]
      m, u_track, u_det = self._associate(stage, tracks, found)
      for it, idet in m:
        t = tracks[it]
        if t.state == State.LOST:
          t.update(self.kf, found[idet], self.frame_id, cfg.ema_alpha, reactivate=True)
          refound.append(t)
        else:                 # alpha 1: the box moves the track, the embedding does not
          t.update(self.kf, found[idet], self.frame_id,
                   cfg.ema_alpha if stage.keep_embedding else 1.0)
          activated.append(t)
      left = [tracks[i] for i in u_track]
      for t in left if stage.unmatched else ():
        t.state = State.LOST if stage.unmatched == 'lost' else State.REMOVED
        (lost if stage.unmatched == 'lost' else removed).append(t)
      if stage.tracks != 'unconfirmed':
        groups['tracked_left'] = [t for t in left if t.state == State.TRACKED]
      if stage.detections == 'strong':
        groups['strong'] = [found[i] for i in u_det]
    for d in groups['strong']:                # detections no stage took: new tracks
      if d.score >= cfg.new_track_thresh:
        d.activate(self.kf, self.frame_id, self._new_id())
        activated.append(d)
    # Lost tracks expire.
    for t in self.lost:
      if self.frame_id - t.frame_id > cfg.max_time_lost:
        t.state = State.REMOVED
        removed.append(t)

    self.tracked = [t for t in self.tracked if t.state == State.TRACKED]
    self.tracked = _union(self.tracked, activated + refound)
    self.lost = [t for t in self.lost if t.state == State.LOST and t not in self.tracked
                 and t not in removed]
    self.lost = _union(self.lost, [t for t in lost if t not in removed])
    self.tracked, self.lost = self._remove_duplicates(self.tracked, self.lost)
    return {t.det_index: t.track_id for t in self.tracked
            if t.is_activated and t.frame_id == self.frame_id}

  def coasting(self) -> Dict[int, np.ndarray]:
    """{track id: predicted x1 y1 x2 y2} of the tracks missed in this frame after being
    seen for at least coast_min_len frames, for at most coast_frames frames: report them
    beside update()'s output. A prediction that would duplicate a reported track (IoU > 0.7
    with a track matched now) is left out."""
    cfg = self.config
    if cfg.coast_frames <= 0:
      return {}
    now = [t.tlbr for t in self.tracked if t.is_activated and t.frame_id == self.frame_id]
    out = {}
    for t in self.lost:
      if (0 < self.frame_id - t.frame_id <= cfg.coast_frames and
          t.hits >= cfg.coast_min_len):
        box = t.tlbr
        if not now or iou_matrix([box], now).max() <= 0.7:
          out[t.track_id] = box
    return out

  def _remove_duplicates(self, a, b):
    if not a or not b:
      return a, b
    dist = 1 - iou_matrix([t.tlbr for t in a], [t.tlbr for t in b])
    drop_a, drop_b = set(), set()
    for i, j in zip(*np.nonzero(dist < self.config.duplicate_iou_dist)):
      if a[i].frame_id - a[i].start_frame > b[j].frame_id - b[j].start_frame:
        drop_b.add(j)
      else:
        drop_a.add(i)
    return ([t for i, t in enumerate(a) if i not in drop_a],
            [t for j, t in enumerate(b) if j not in drop_b])


def _union(a, b):
  seen = {id(t) for t in a}
  return a + [t for t in b if id(t) not in seen and not seen.add(id(t))]
