"""Static-shape box and mask operators of inference, usable inside jit.

Box IoU, a padded greedy NMS, and mask pasting after detectron2's `paste_masks_in_image`
(grid_sample, align_corners=False): separable along y and x, two small matmuls per
instance. (RoIAlign belongs to the blender: model/blender.py.)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def box_iou(a, b):
  """IoU between boxes a (..., 4) and b (..., 4), (x1, y1, x2, y2), broadcasting."""
  lt = jnp.maximum(a[..., :2], b[..., :2])
  rb = jnp.minimum(a[..., 2:], b[..., 2:])
  inter = jnp.prod(jnp.clip(rb - lt, 0), -1)
  area = lambda x: jnp.prod(jnp.clip(x[..., 2:] - x[..., :2], 0), -1)
  union = area(a) + area(b) - inter
  return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1), 0.0)


def nms(boxes, scores, valid, iou_threshold: float, max_output: int):
  """Greedy NMS with a fixed output size.

  Each step picks the highest remaining score (lowest index on ties), then suppresses the
  boxes overlapping it by more than `iou_threshold`, until `max_output` are kept or none
  remain. This equals classic sort-then-suppress NMS truncated to `max_output`, at
  O(kept * n) cost and without an n x n IoU matrix.

  Returns (indices (max_output,), keep_valid (max_output,)); indices are in descending
  score order and point at index 0 where keep_valid is False.
  """
  boxes, scores, valid = jnp.asarray(boxes), jnp.asarray(scores), jnp.asarray(valid)
  n = boxes.shape[0]
  remaining = jnp.where(valid, scores, -jnp.inf)

  def more(carry):
    i, remaining, _, _ = carry
    return (i < max_output) & jnp.any(remaining > -jnp.inf)

  def step(carry):
    i, remaining, idx, ok = carry
    best = jnp.argmax(remaining)
    iou = box_iou(boxes[best][None], boxes)
    suppress = (iou > iou_threshold) | (jnp.arange(n) == best)
    return (i + 1, jnp.where(suppress, -jnp.inf, remaining), idx.at[i].set(best),
            ok.at[i].set(True))

  # Stops once every box is picked or suppressed: a frame with a few people costs a few
  # steps, not max_output (a crowd of 300 needs max_output 300; an empty street does not).
  init = (jnp.int32(0), remaining, jnp.zeros((max_output,), jnp.int32),
          jnp.zeros((max_output,), bool))
  _, _, idx, ok = jax.lax.while_loop(more, step, init)
  return idx, ok


def _paste_weights(lo_edge, hi_edge, size: int, res: int):
  """(size, res) interpolation weights taking a res-long mask axis to image pixels."""
  pix = jnp.arange(size, dtype=jnp.float32) + 0.5
  extent = jnp.maximum(hi_edge - lo_edge, 1e-6)
  u = (pix - lo_edge) / extent * res - 0.5
  lo = jnp.floor(u)
  w_hi = u - lo
  cols = jnp.arange(res, dtype=jnp.float32)
  # grid_sample with zero padding: taps outside [0, res-1] contribute nothing.
  return ((cols[None, :] == lo[:, None]) * (1.0 - w_hi)[:, None] +
          (cols[None, :] == lo[:, None] + 1) * w_hi[:, None])


def paste_masks(masks, boxes, height: int, width: int):
  """Paste (N, R, R) mask probabilities into (N, height, width) using boxes (N, 4)."""
  masks, boxes = jnp.asarray(masks), jnp.asarray(boxes)
  res = masks.shape[-1]

  def one(mask, box):
    wy = _paste_weights(box[1], box[3], height, res)
    wx = _paste_weights(box[0], box[2], width, res)
    return wy @ mask @ wx.T

  return jax.vmap(one)(masks, boxes)


def label_map(mask_probs, valid, threshold: float, min_visible_fraction: float = 0.0):
  """(N, H, W) probabilities of score-sorted instances -> ((H, W) int32 map, (N,) valid).

  Each pixel gets the index of the first (highest-scoring) valid instance whose
  probability exceeds `threshold` there, or -1: masks never overlap. With
  min_visible_fraction > 0, an instance that keeps less than that fraction of its own mask
  (a duplicate under a higher-scoring detection of the same person: mask-level NMS) is
  invalidated and its pixels go to the next instance covering them.
  """
  covered = (mask_probs > threshold) & valid[:, None, None]

  def assign(cov):
    first = jnp.argmax(cov, axis=0).astype(jnp.int32)
    return jnp.where(cov.any(axis=0), first, -1)

  lm = assign(covered)
  if min_visible_fraction <= 0:
    return lm, valid & covered.any(axis=(1, 2))
  own = covered.sum(axis=(1, 2))
  n = mask_probs.shape[0]
  visible = jnp.zeros((n,), jnp.int32).at[jnp.where(lm >= 0, lm, n).ravel()].add(
      1, mode='drop')
  keep = valid & (own > 0) & (visible >= min_visible_fraction * own)
  lm = assign(covered & keep[:, None, None])
  return lm, keep
