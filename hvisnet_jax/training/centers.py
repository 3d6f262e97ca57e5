"""Sampling centers of instance masks: the paper's inner center and the mask centroid.

The inner center (paper Sec. III-B) is the point inside the mask minimising the sum of
squared distances to the mask's edge points. Because sum_i |p - e_i|^2 equals
n |p - mean(e)|^2 plus a constant, it is exactly the mask pixel nearest to the mean of
the edge points: deterministic, no sampling. Ties go to the first pixel in raster order.
Edge points are mask pixels with a 4-neighbour outside the mask (or on the image border).
Coordinates are pixel centers, (x + 0.5, y + 0.5), matching box coordinates.
"""
from __future__ import annotations

import numpy as np

NO_CENTER = (np.nan, np.nan)


def _edge(mask: np.ndarray) -> np.ndarray:
  p = np.pad(mask, 1)
  interior = p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
  return mask & ~interior


def inner_center(mask: np.ndarray):
  """(x, y) of the inner center of a boolean (H, W) mask, or (nan, nan) if it is empty."""
  mask = np.asarray(mask, bool)
  if mask.ndim != 2:
    raise ValueError(f'expected a 2-D mask, got shape {mask.shape}')
  rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
  if rows.size == 0:
    return NO_CENTER
  y0, x0 = rows[0], cols[0]
  crop = mask[y0:rows[-1] + 1, x0:cols[-1] + 1]   # the image border is outside the crop too
  ey, ex = np.nonzero(_edge(crop))
  my, mx = ey.mean(), ex.mean()
  ys, xs = np.nonzero(crop)             # raster order: first minimum wins ties
  i = int(np.argmin((ys - my) ** 2 + (xs - mx) ** 2))
  return float(xs[i] + x0 + 0.5), float(ys[i] + y0 + 0.5)


def mask_centroid(mask: np.ndarray):
  """(x, y) mean of the mask's pixel centers (may lie outside a non-convex mask)."""
  ys, xs = np.nonzero(np.asarray(mask, bool))
  if ys.size == 0:
    return NO_CENTER
  return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def box_of(mask: np.ndarray):
  """(x1, y1, x2, y2) tight box of a mask in pixel-edge coordinates, or zeros if empty."""
  ys, xs = np.nonzero(np.asarray(mask, bool))
  if ys.size == 0:
    return (0.0, 0.0, 0.0, 0.0)
  return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
