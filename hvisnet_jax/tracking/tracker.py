"""The match module: Kalman filter + Hungarian matching on embeddings and boxes (NumPy/SciPy).

Follows the authors' released tracker (FairMOT's JDETracker carrying a mask per track;
DESIGN.md section 3): embeddings L2-normalised and smoothed per track (EMA 0.9); stage 1
matches tracked and lost tracks to detections by cosine distance, gated by the Kalman
Mahalanobis distance (cost = inf above chi2_0.95(4) = 9.4877, else 0.98 * emb + 0.02 *
maha), threshold 0.7; stage 2 matches the remaining tracked tracks by IoU distance
(threshold 0.5); unconfirmed tracks by IoU distance 0.7; a new track needs score >= 0.5;
a lost track is removed after `track_buffer * fps / 30` frames; duplicates between
tracked and lost tracks (IoU distance < 0.15) keep the longer track. One addition of
ours: tracks lost for longer than `reid_after_lost` frames are re-identified by appearance
alone (see TrackerConfig).

No jax or tensorflow imports: the tracker runs on the host beside the accelerator.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Dict, List, Optional

import numpy as np
from scipy.optimize import linear_sum_assignment

CHI2_95_4DOF = 9.4877


@dataclasses.dataclass
class TrackerConfig:
  """Defaults are DESIGN.md section 3's (the authors' FairMOT-based tracker)."""
  det_thresh: float = 0.4            # detections below this are ignored altogether
  new_track_thresh: float = 0.5      # score needed to start a track
  embedding_thresh: float = 0.7      # stage 1 (FairMOT uses 0.4)
  iou_thresh: float = 0.5            # stage 2
  unconfirmed_iou_thresh: float = 0.7
  motion_weight: float = 0.02        # lambda of the fused cost: (1-l)*emb + l*maha
  ema_alpha: float = 0.9
  track_buffer: int = 30             # frames at 30 fps a lost track is kept
  fps: float = 30.0
  duplicate_iou_dist: float = 0.15
  # Ours, beyond the authors' tracker: a Kalman prediction extrapolated over a long absence
  # says little about where a person comes back (re-entering the frame, leaving an
  # occluder's far side), so tracks lost for more than `reid_after_lost` frames are
  # matched on appearance alone, with the stricter cosine threshold `reid_thresh`.
  reid_after_lost: int = 5
  reid_thresh: float = 0.4
  std_weight_position: float = 1.0 / 20
  std_weight_velocity: float = 1.0 / 160

  @property
  def max_time_lost(self) -> int:
    return int(self.fps / 30.0 * self.track_buffer)


class KalmanFilter:
  """Constant-velocity filter on (x, y, aspect, height) with velocities, as in DeepSORT."""

  def __init__(self, std_pos: float = 1.0 / 20, std_vel: float = 1.0 / 160):
    self.F = np.eye(8)
    self.F[:4, 4:] = np.eye(4)
    self.H = np.eye(4, 8)
    self.std_pos, self.std_vel = std_pos, std_vel

  def initiate(self, z):
    mean = np.r_[z, np.zeros(4)]
    h = z[3]
    std = [2 * self.std_pos * h, 2 * self.std_pos * h, 1e-2, 2 * self.std_pos * h,
           10 * self.std_vel * h, 10 * self.std_vel * h, 1e-5, 10 * self.std_vel * h]
    return mean, np.diag(np.square(std))

  def _motion_noise(self, h):
    return np.diag(np.square([self.std_pos * h, self.std_pos * h, 1e-2, self.std_pos * h,
                              self.std_vel * h, self.std_vel * h, 1e-5, self.std_vel * h]))

  def predict(self, mean, cov):
    return self.F @ mean, self.F @ cov @ self.F.T + self._motion_noise(mean[3])

  def project(self, mean, cov):
    h = mean[3]
    r = np.diag(np.square([self.std_pos * h, self.std_pos * h, 1e-1, self.std_pos * h]))
    return self.H @ mean, self.H @ cov @ self.H.T + r

  def update(self, mean, cov, z):
    m, s = self.project(mean, cov)
    # 4x4 systems: numpy's solve costs far less per call than scipy's Cholesky wrappers.
    gain = np.linalg.solve(s, (cov @ self.H.T).T).T
    return mean + gain @ (z - m), cov - gain @ s @ gain.T

  def gating_distances(self, means, covs, zs):
    """(T, N) squared Mahalanobis distances, all T states against all N measurements."""
    h = means[:, 3]
    r = np.square(np.stack([self.std_pos * h, self.std_pos * h, np.full_like(h, 1e-1),
                            self.std_pos * h], -1))
    m = means[:, :4]
    s = covs[:, :4, :4] + r[:, :, None] * np.eye(4)[None]
    d = np.asarray(zs, float)[None] - m[:, None]                      # (T, N, 4)
    sol = np.linalg.solve(s, d.transpose(0, 2, 1))                   # (T, 4, N)
    return np.einsum('tnk,tkn->tn', d, sol)


def tlbr_to_xyah(b):
  w, h = b[2] - b[0], b[3] - b[1]
  return np.array([b[0] + w / 2, b[1] + h / 2, w / max(h, 1e-6), h], float)


def xyah_to_tlbr(x):
  w = x[2] * x[3]
  return np.array([x[0] - w / 2, x[1] - x[3] / 2, x[0] + w / 2, x[1] + x[3] / 2])


def iou_matrix(a, b):
  a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
  if not len(a) or not len(b):
    return np.zeros((len(a), len(b)))
  lt = np.maximum(a[:, None, :2], b[None, :, :2])
  rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
  inter = np.prod(np.clip(rb - lt, 0, None), -1)
  area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), -1)
  union = area(a)[:, None] + area(b)[None] - inter
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def linear_assignment(cost, thresh):
  """Hungarian assignment keeping pairs with cost <= thresh: (matches, unmatched_a, unmatched_b)."""
  n, m = cost.shape
  if n == 0 or m == 0:
    return np.zeros((0, 2), int), np.arange(n), np.arange(m)
  c = np.where(np.isfinite(cost), cost, thresh + 1e5)
  c = np.minimum(c, thresh + 1e-4)
  rows, cols = linear_sum_assignment(c)
  keep = cost[rows, cols] <= thresh
  matches = np.stack([rows[keep], cols[keep]], 1)
  return (matches, np.setdiff1d(np.arange(n), matches[:, 0]),
          np.setdiff1d(np.arange(m), matches[:, 1]))


class State(enum.IntEnum):
  NEW = 0
  TRACKED = 1
  LOST = 2
  REMOVED = 3


class Track:
  """One identity: Kalman state, smoothed embedding, and its latest detection."""

  def __init__(self, box, score, emb, det_index):
    self.box = np.asarray(box, float)
    self.score = float(score)
    self.smooth_feat = None
    self.update_features(emb, 0.0)
    self.det_index = det_index
    self.track_id = 0
    self.state = State.NEW
    self.is_activated = False
    self.mean = self.cov = None
    self.frame_id = self.start_frame = 0
    self.tracklet_len = 0

  def update_features(self, emb, alpha):
    f = np.asarray(emb, float)
    f = f / max(np.linalg.norm(f), 1e-12)
    self.curr_feat = f
    if self.smooth_feat is None:
      self.smooth_feat = f
    else:
      self.smooth_feat = alpha * self.smooth_feat + (1 - alpha) * f
    self.smooth_feat = self.smooth_feat / max(np.linalg.norm(self.smooth_feat), 1e-12)

  @property
  def tlbr(self):
    return self.box.copy() if self.mean is None else xyah_to_tlbr(self.mean[:4])

  def activate(self, kf, frame_id, track_id):
    self.track_id = track_id
    self.mean, self.cov = kf.initiate(tlbr_to_xyah(self.box))
    self.tracklet_len = 0
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
    cost = np.zeros((len(tracks), len(dets)))
    if not len(tracks) or not len(dets):
      return cost
    t = np.stack([tr.smooth_feat for tr in tracks])
    d = np.stack([de.curr_feat for de in dets])
    cost = np.maximum(0.0, 1.0 - t @ d.T)           # cosine distance
    lam = self.config.motion_weight
    z = np.stack([tlbr_to_xyah(de.box) for de in dets])
    maha = self.kf.gating_distances(np.stack([t.mean for t in tracks]),
                                    np.stack([t.cov for t in tracks]), z)
    fused = np.where(maha > CHI2_95_4DOF, np.inf, (1 - lam) * cost + lam * maha)
    long_lost = np.array([t.state == State.LOST and
                          self.frame_id - t.frame_id > self.config.reid_after_lost
                          for t in tracks])
    by_appearance = np.where(cost <= self.config.reid_thresh, cost, np.inf)
    return np.where(long_lost[:, None], by_appearance, fused)

  def update(self, boxes, scores, embeddings, valid=None) -> Dict[int, int]:
    """Associates this frame's detections (x1, y1, x2, y2 boxes in pixels) with tracks.

    Returns {detection index: track id} for the detections that belong to an activated,
    tracked track in this frame.
    """
    cfg = self.config
    boxes, scores, embeddings, valid = self._check_inputs(boxes, scores, embeddings, valid)
    self.frame_id += 1
    # A detection with a non-finite box, score or embedding is dropped: one NaN would
    # otherwise enter a Kalman state and every distance computed from it.
    finite = (np.isfinite(boxes).all(1) & np.isfinite(scores) & np.isfinite(embeddings).all(1))
    keep = np.flatnonzero(valid & finite & (scores >= cfg.det_thresh))
    dets = [Track(boxes[i], scores[i], embeddings[i], int(i)) for i in keep]

    unconfirmed = [t for t in self.tracked if not t.is_activated]
    tracked = [t for t in self.tracked if t.is_activated]
    pool = tracked + [t for t in self.lost if t not in tracked]
    for t in pool:
      if t.state != State.TRACKED:
        t.mean[7] = 0                       # as FairMOT: no height velocity while lost
      t.mean, t.cov = self.kf.predict(t.mean, t.cov)

    activated, refound, lost, removed = [], [], [], []
    # Stage 1: embeddings, gated by motion.
    m, u_track, u_det = linear_assignment(self._embedding_cost(pool, dets), cfg.embedding_thresh)
    for it, idet in m:
      t = pool[it]
      if t.state == State.TRACKED:
        t.update(self.kf, dets[idet], self.frame_id, cfg.ema_alpha)
        activated.append(t)
      else:
        t.update(self.kf, dets[idet], self.frame_id, cfg.ema_alpha, reactivate=True)
        refound.append(t)
    # Stage 2: IoU for the remaining tracked tracks.
    dets2 = [dets[i] for i in u_det]
    r_tracked = [pool[i] for i in u_track if pool[i].state == State.TRACKED]
    cost = 1 - iou_matrix([t.tlbr for t in r_tracked], [d.box for d in dets2])
    m, u_track2, u_det2 = linear_assignment(cost, cfg.iou_thresh)
    for it, idet in m:
      r_tracked[it].update(self.kf, dets2[idet], self.frame_id, cfg.ema_alpha)
      activated.append(r_tracked[it])
    for it in u_track2:
      t = r_tracked[it]
      t.state = State.LOST
      lost.append(t)
    # Unconfirmed tracks (seen once) need a good IoU match now.
    dets3 = [dets2[i] for i in u_det2]
    cost = 1 - iou_matrix([t.tlbr for t in unconfirmed], [d.box for d in dets3])
    m, u_unconf, u_det3 = linear_assignment(cost, cfg.unconfirmed_iou_thresh)
    for it, idet in m:
      unconfirmed[it].update(self.kf, dets3[idet], self.frame_id, cfg.ema_alpha)
      activated.append(unconfirmed[it])
    for it in u_unconf:
      unconfirmed[it].state = State.REMOVED
      removed.append(unconfirmed[it])
    # New tracks.
    for i in u_det3:
      d = dets3[i]
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


def track_id_map(label_map: np.ndarray, det_to_track: Dict[int, int]) -> np.ndarray:
  """Predictor label map (detection index per pixel, -1 = none) -> track id per pixel (0 = none).

  The label map gives each pixel to at most one detection, so track masks never overlap.
  """
  lut = np.zeros(int(max(label_map.max(), 0)) + 2, np.int64)
  for det, tid in det_to_track.items():
    if det + 1 < len(lut):
      lut[det + 1] = tid
  return lut[label_map + 1]
