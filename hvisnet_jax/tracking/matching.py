"""Matching costs and assignment: box IoU, fused appearance + motion, Hungarian (scipy)."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


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


def cosine_distance(track_feats, det_feats):
  """(T, N) 1 - cosine similarity of unit vectors, clipped at 0."""
  if not len(track_feats) or not len(det_feats):
    return np.zeros((len(track_feats), len(det_feats)))
  return np.maximum(0.0, 1.0 - np.asarray(track_feats) @ np.asarray(det_feats).T)


def gated_fused_cost(appearance, maha, motion_weight, gate):
  """FairMOT's fuse_motion: (1 - l) * appearance + l * Mahalanobis, inf beyond the gate."""
  return np.where(maha > gate, np.inf,
                  (1 - motion_weight) * appearance + motion_weight * maha)
