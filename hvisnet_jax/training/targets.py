"""Dense FCOS training targets from padded ground truth, inside jit (fixed shapes).

For every location of every level and every ground-truth instance:
  inside its box, within `radius * stride` of its sampling center (a square clipped to
  the box, FCOS center sampling), and max(l, t, r, b) within the level's size range.
The sampling center is the box center (FCOS), the mask centroid, or the paper's inner
center (centers.py), chosen by config. A location claimed by several instances is
ambiguous (paper Sec. III-B): by default it becomes a negative; otherwise it goes to the
smallest box, as in FCOS. Instances without a center (empty masks) get no positives.
"""
from __future__ import annotations

from typing import Dict

import jax.numpy as jnp
import ml_collections

from hvisnet_jax.model import hvisnet as model_lib

STRATEGIES = ('box_center', 'mask_centroid', 'inner_center')


def sampling_centers(strategy: str, boxes, inner, centroid):
  if strategy == 'box_center':
    return jnp.stack([(boxes[..., 0] + boxes[..., 2]) / 2,
                      (boxes[..., 1] + boxes[..., 3]) / 2], -1)
  if strategy == 'mask_centroid':
    return centroid
  if strategy == 'inner_center':
    return inner
  raise ValueError(f'sampling strategy must be one of {STRATEGIES}, got {strategy!r}')


def ignored_locations(ignore_boxes, ignore_valid, mcfg: ml_collections.ConfigDict,
                      height: int, width: int):
  """(L,) bool: locations inside an ignore region's box (COCO crowd, MOTS class 10, people
  the pseudo-labeller saw but could not label). Not a negative for classification there."""
  locs, _ = model_lib.locations(mcfg, height, width)
  x, y = locs[:, 0:1], locs[:, 1:2]
  b = ignore_boxes
  inside = (x >= b[None, :, 0]) & (x <= b[None, :, 2]) & (y >= b[None, :, 1]) & (y <= b[None, :, 3])
  return (inside & ignore_valid[None, :]).any(-1)


def fcos_targets(boxes, centers, valid, mcfg: ml_collections.ConfigDict,
                 tcfg: ml_collections.ConfigDict, height: int, width: int) -> Dict:
  """Targets for one image. boxes (M, 4), centers (M, 2) (NaN = none), valid (M,).

  Returns labels (L,) int32 1/0, reg (L, 4) ltrb in pixels, ctr (L,) centerness target
  (0 at negatives), gt_index (L,) int32 (-1 at negatives), ambiguous (L,) bool.
  """
  locs, strides = model_lib.locations(mcfg, height, width)
  soi = jnp.asarray(mcfg.sizes_of_interest, jnp.float32)
  level = jnp.searchsorted(jnp.asarray(mcfg.strides), strides)
  lo, hi = soi[level, 0], soi[level, 1]
  x, y = locs[:, 0:1], locs[:, 1:2]                                  # (L, 1)
  x1, y1, x2, y2 = (boxes[None, :, i] for i in range(4))             # (1, M)
  reg = jnp.stack([x - x1, y - y1, x2 - x, y2 - y], -1)              # (L, M, 4)
  cx, cy = centers[None, :, 0], centers[None, :, 1]
  has_center = jnp.isfinite(cx) & jnp.isfinite(cy)
  cx, cy = jnp.where(has_center, cx, 0.0), jnp.where(has_center, cy, 0.0)
  rad = tcfg.radius * strides[:, None].astype(jnp.float32)
  in_center = ((x > jnp.maximum(cx - rad, x1)) & (x < jnp.minimum(cx + rad, x2)) &
               (y > jnp.maximum(cy - rad, y1)) & (y < jnp.minimum(cy + rad, y2)))
  in_box = reg.min(-1) > 0
  max_reg = reg.max(-1)
  in_level = (max_reg >= lo[:, None]) & (max_reg <= hi[:, None])
  cand = in_center & in_box & in_level & valid[None, :] & has_center
  count = cand.sum(-1)
  area = (x2 - x1) * (y2 - y1)
  matched = jnp.argmin(jnp.where(cand, area, jnp.inf), axis=-1)
  ambiguous = count >= 2
  positive = (count == 1) if tcfg.eliminate_ambiguous else (count >= 1)
  r = jnp.take_along_axis(reg, matched[:, None, None], axis=1)[:, 0]  # (L, 4)
  lr, tb = r[:, 0::2], r[:, 1::2]
  ctr = jnp.sqrt(jnp.clip(lr.min(-1) / jnp.maximum(lr.max(-1), 1e-6), 0) *
                 jnp.clip(tb.min(-1) / jnp.maximum(tb.max(-1), 1e-6), 0))
  return dict(labels=positive.astype(jnp.int32),
              reg=jnp.where(positive[:, None], r, 0.0),
              ctr=jnp.where(positive, ctr, 0.0),
              gt_index=jnp.where(positive, matched, -1).astype(jnp.int32),
              ambiguous=ambiguous)
