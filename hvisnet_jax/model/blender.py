"""BlendMask's blender: RoIAlign of the bases with each box, attentions, weighted sum.

Part of the model (training pools with ground-truth boxes, inference with predicted
ones). RoIAlign follows torchvision's `roi_align` (aligned=True) bilinear rules exactly;
it is separable along y and x, four gathers per sample.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections


def _bilinear_taps(coord, size: int):
  """torchvision's bilinear_interpolate along one axis: (lo, hi, w_lo, w_hi) per coord."""
  inside = (coord >= -1.0) & (coord <= size)
  c = jnp.maximum(coord, 0.0)
  lo = jnp.floor(c).astype(jnp.int32)
  at_edge = lo >= size - 1
  lo = jnp.where(at_edge, size - 1, lo)
  hi = jnp.where(at_edge, size - 1, lo + 1)
  c = jnp.where(at_edge, lo.astype(c.dtype), c)
  w_hi = c - lo
  w_lo = 1.0 - w_hi
  return lo, hi, w_lo * inside, w_hi * inside


def roi_align(features, boxes, output_size: int, spatial_scale: float,
              sampling_ratio: int = 1):
  """RoIAlign (aligned=True) of one feature map (H, W, C) with boxes (N, 4) -> (N, R, R, C)."""
  features, boxes = jnp.asarray(features), jnp.asarray(boxes)
  h, w, _ = features.shape
  sr = sampling_ratio

  def one(box):
    x1, y1, x2, y2 = box * spatial_scale - 0.5
    bin_h, bin_w = (y2 - y1) / output_size, (x2 - x1) / output_size
    grid = (jnp.arange(output_size)[:, None] + (jnp.arange(sr)[None, :] + 0.5) / sr)
    ys = (y1 + grid * bin_h).ravel()        # (R * sr,)
    xs = (x1 + grid * bin_w).ravel()
    y_lo, y_hi, wy_lo, wy_hi = _bilinear_taps(ys, h)
    x_lo, x_hi, wx_lo, wx_hi = _bilinear_taps(xs, w)
    out = 0.0
    for yi, wy in ((y_lo, wy_lo), (y_hi, wy_hi)):
      for xi, wx in ((x_lo, wx_lo), (x_hi, wx_hi)):
        out = out + features[yi[:, None], xi[None, :]] * (wy[:, None] * wx[None, :])[..., None]
    out = out.reshape(output_size, sr, output_size, sr, -1)
    return out.mean(axis=(1, 3))

  return jax.vmap(one)(boxes)



def mask_window(boxes, margin: float):
  """Boxes (..., 4) grown by `margin` of their width and height on every side.

  Masks are blended and pasted in this window rather than in the detection box, so a mask
  can reach the head or the feet where the predicted box stops short of them (a box that
  stops short caps its mask: benchmarks/extent_diagnosis.py).
  """
  if not margin:
    return boxes
  w, h = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
  return boxes + margin * jnp.stack([-w, -h, w, h], -1)


def blend(bases, attn, boxes, mcfg: ml_collections.ConfigDict, resolution: int = 0):
  """BlendMask blender: (H/4, W/4, K) bases, (N, K*M*M) attentions, (N, 4) boxes -> (N, R, R) logits.

  Boxes are in the coordinates of the network input; bases are at stride 4. R is
  `resolution`, or blendmask.pooler_resolution (the training size) when 0.
  """
  bm = mcfg.blendmask
  k, m, r = bm.num_bases, bm.attn_size, resolution or bm.pooler_resolution
  pooled = roi_align(bases, boxes, r, 0.25, sampling_ratio=1)        # (N, R, R, K)
  attn = attn.reshape(-1, k, m, m).transpose(0, 2, 3, 1)                  # (N, M, M, K)
  attn = jax.image.resize(attn, (attn.shape[0], r, r, k), 'bilinear', antialias=False)
  attn = jax.nn.softmax(attn, axis=-1)
  return jnp.sum(pooled * attn, axis=-1)
