"""Several input sizes in one prediction: each finds the people of the heights it sees well.

A larger input finds smaller people (a distant crowd), but the student never saw a
person taller than its training canvas (short sides 320-480), so at a larger input a
person seen close is boxed short (docs/results.md, "Input size"). So each frame runs at
every size, and each pass keeps the people whose height suits it: a pass larger than the
first keeps those at most `split_px` tall in its own input, every pass but the last those
taller than 80% of what the next larger pass keeps, and one NMS removes the few found
by two passes in that overlap. (The labelling teacher splits its two YOLO passes the same
way, data_pipelines/yolo_teacher.py; letting every pass keep everyone and NMS choose lost
crowd recall there: a large box over two small neighbours suppressed both.)

The merge runs on the host after each pass's blend, on valid instances only, and fills
the first pass's `max_detections` slots by descending score.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import cv2
import numpy as np

SPLIT_PX = 200         # inference.multiscale_split_px for exports whose config lacks it
OVERLAP = 0.8          # every pass but the last also keeps people down to 80% of its limit
# Instance arrays merged slot by slot; the rest of a pass's outputs are per frame.
INSTANCE_KEYS = ('boxes', 'scores', 'embeddings', 'mask_logits', 'mask_boxes')


def height_bands(scales: Sequence[float], split_px: float) -> List[tuple]:
  """[(min, max) frame-pixel height kept] per pass, `scales` the network's input pixels per
  frame pixel of each pass, ascending."""
  if any(b <= a for a, b in zip(scales, scales[1:])):
    raise ValueError(f'pass scales must ascend, got {list(scales)}')
  limits = [np.inf] + [split_px / s for s in scales[1:]]         # tallest each pass keeps
  return [(OVERLAP * limits[k + 1] if k + 1 < len(scales) else 0.0, limits[k])
          for k in range(len(scales))]


def merge(passes: Sequence[Dict[str, np.ndarray]], bands: Sequence[tuple], nms_iou: float,
          slots: int) -> Dict[str, np.ndarray]:
  """Per-frame outputs of each pass (a leading batch axis; masks blended, not pasted) ->
  one pass's worth: each pass's valid instances inside its height band, NMS over the
  union, the best `slots` by score in slots 0.., valid marking the filled ones."""
  first = passes[0]
  batch = len(first['valid'])
  out = {k: np.zeros((batch, slots) + first[k].shape[2:], first[k].dtype)
         for k in INSTANCE_KEYS}
  out['valid'] = np.zeros((batch, slots), bool)
  for b in range(batch):
    picked = {k: [] for k in INSTANCE_KEYS}
    for p, (lo, hi) in zip(passes, bands):
      h = p['boxes'][b, :, 3] - p['boxes'][b, :, 1]
      keep = np.flatnonzero(p['valid'][b] & (h >= lo) & (h <= hi))
      for k in INSTANCE_KEYS:
        picked[k].append(p[k][b, keep])
    cand = {k: np.concatenate(v) for k, v in picked.items()}
    if not len(cand['scores']):
      continue
    xywh = np.concatenate([cand['boxes'][:, :2], cand['boxes'][:, 2:] - cand['boxes'][:, :2]], 1)
    order = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), cand['scores'].tolist(), 0.0, nms_iou,
                                        top_k=slots), int).reshape(-1)[:slots]
    for k in INSTANCE_KEYS:
      out[k][b, :len(order)] = cand[k][order]
    out['valid'][b, :len(order)] = True
  return out


def merge_crowd_pass(base, crowd, crowded, bands, nms_iou: float, slots: int):
  """A batch's first-pass instances `base` with the crowd pass's `crowd` (run on the
  `crowded` frames only) merged by height band; the other frames keep their first pass,
  in the same number of slots."""
  idx, calm = np.flatnonzero(crowded), np.flatnonzero(~crowded)
  pick = lambda d, rows: {k: d[k][rows] for k in INSTANCE_KEYS + ('valid',)}  # pylint: disable=g-long-lambda
  merged = merge([pick(base, idx), crowd], bands, nms_iou, slots)
  alone = merge([pick(base, calm)], [(0.0, np.inf)], nms_iou, slots)
  res = {k: np.zeros((len(crowded),) + merged[k].shape[1:], merged[k].dtype) for k in merged}
  for k in res:
    res[k][idx], res[k][calm] = merged[k], alone[k]
  return res
