"""Masks per track: a detection label map as track ids, and a coasting track's mask carried
through a short miss (NumPy only)."""
from __future__ import annotations

from typing import Dict

import numpy as np


def track_id_map(label_map: np.ndarray, det_to_track: Dict[int, int]) -> np.ndarray:
  """Predictor label map (detection index per pixel, -1 = none) -> track id per pixel (0 = none).

  The label map gives each pixel to at most one detection, so track masks never overlap.
  """
  lut = np.zeros(int(max(label_map.max(), 0)) + 2, np.int32)
  for det, tid in det_to_track.items():
    if det + 1 < len(lut):
      lut[det + 1] = tid
  if label_map.flags.f_contiguous and not label_map.flags.c_contiguous:
    return np.take(lut, label_map.T + 1).T          # keeps the map's Fortran order
  return np.take(lut, label_map + 1)


class MaskCarrier:
  """Carries a coasting track's mask (Tracker.coasting) through a short miss.

  Keeps the last mask of every reported track, cropped to its box; for a coasting track it
  moves that mask with the Kalman prediction (the box centre's shift; the size of a
  prediction over a few frames is kept) and paints it on pixels no other person holds, so
  masks stay disjoint.
  """

  def __init__(self):
    self._last = {}                 # track id -> (box centre, y0, x0, bool crop)

  def __call__(self, id_map: np.ndarray, boxes: Dict[int, np.ndarray],
               coasting: Dict[int, np.ndarray]) -> np.ndarray:
    h, w = id_map.shape
    for tid, box in boxes.items():
      x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
      x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
      if x1 > x0 and y1 > y0:
        crop = id_map[y0:y1, x0:x1] == tid
        if crop.any():
          self._last[tid] = (_centre(box), y0, x0, crop)
    if coasting:
      id_map = id_map.copy()
    for tid, box in coasting.items():
      if tid not in self._last:
        continue
      (cx, cy), y0, x0, crop = self._last[tid]
      nx, ny = _centre(box)
      y0, x0 = y0 + int(round(ny - cy)), x0 + int(round(nx - cx))
      ys, xs = slice(max(y0, 0), min(y0 + crop.shape[0], h)), slice(max(x0, 0),
                                                                  min(x0 + crop.shape[1], w))
      if ys.stop <= ys.start or xs.stop <= xs.start:
        continue
      part = crop[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
      region = id_map[ys, xs]
      region[part & (region == 0)] = tid
    keep = set(boxes) | set(coasting)
    self._last = {t: v for t, v in self._last.items() if t in keep}
    return id_map


def _centre(box):
  return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
