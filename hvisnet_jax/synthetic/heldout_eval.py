"""Held-out evaluation on synthetic videos: mask AP and MOTS/HOTA of a trained model.

Frames go through the Predictor; instances are linked from frame to frame twice: by the
tracker (tracking/tracker.py, what `hvisnet track` does) and, as a tracker-free
reference, by mask IoU (Hungarian assignment, scipy). Both are scored with
`evaluation.evaluate_mots` (trackeval); masks with their scores by
`evaluation.evaluate_coco` (pycocotools, per-frame masks from the label map).
"""
from __future__ import annotations

from typing import Dict, List

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from hvisnet_jax import evaluation
from hvisnet_jax.synthetic import synth
from hvisnet_jax.tracking import masks as masks_lib
from hvisnet_jax.tracking import config as tracking_config


def heldout_videos(preset: str, videos: int, frames: int, height: int, width: int, seed: int):
  """Rendered videos with a JPEG round trip (as `hvisnet synth` writes them), RGB frames."""
  out = []
  for v in range(videos):
    video = synth.render_video(seed, v, frames, height, width, preset)
    rgb = []
    for img in video.frames:
      _, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, synth.JPEG_QUALITY])
      rgb.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
    out.append((video, rgb))
  return out


def link_by_mask_iou(frame_masks: List[List[np.ndarray]], iou_threshold: float = 0.3):
  """Per-frame lists of boolean masks -> per-frame lists of track ids (1, 2, ...)."""
  next_id, prev, prev_ids, ids_out = 1, [], [], []
  for masks in frame_masks:
    ids = [0] * len(masks)
    if prev and masks:
      a = [evaluation.encode_mask(m) for m in masks]
      b = [evaluation.encode_mask(m) for m in prev]
      iou = np.asarray(mask_utils.iou(a, b, [0] * len(b)))
      rows, cols = linear_sum_assignment(-iou)
      for r, c in zip(rows, cols):
        if iou[r, c] >= iou_threshold:
          ids[r] = prev_ids[c]
    for i in range(len(ids)):
      if not ids[i]:
        ids[i], next_id = next_id, next_id + 1
    prev, prev_ids = masks, ids
    ids_out.append(ids)
  return ids_out


def evaluate_predictor(predictor, preset: str, videos: int, frames: int, height: int,
                       width: int, seed: int, mots_score_threshold: float = 0.4) -> Dict:
  """Runs `predictor` over held-out synthetic videos; returns MOTS/HOTA and mask AP.

  Mask AP ranks every detection by score. Two MOTS figures: `mots` from the tracker
  (tracker.py, its default thresholds), `mots_iou_linking` from detections scoring at
  least `mots_score_threshold` linked by mask IoU (the tracker-free reference).
  """
  from hvisnet_jax.tracking import tracker as tracker_lib  # pylint: disable=g-import-not-at-top
  gts, preds, tracked = {}, {}, {}
  coco_gt = {'images': [], 'annotations': [], 'categories': [{'id': 1, 'name': 'person'}]}
  coco_res = []
  for video, rgb in heldout_videos(preset, videos, frames, height, width, seed):
    gt = video.ground_truth()
    frame_masks, frame_scores = [], []
    trk = tracker_lib.Tracker(tracking_config.for_model(predictor.config, fps=10.0))
    trk_seq = evaluation.Sequence.empty(video.name, frames, height, width)
    for t, img in enumerate(rgb):
      out = predictor.predict(img)
      assigned = trk.update(out['boxes'], out['scores'], out['embeddings'], out['valid'])
      id_map = masks_lib.track_id_map(out['label_map'], assigned)
      for tid in np.unique(id_map):
        if tid > 0:
          trk_seq.add(t, evaluation.mots_object_id(tid), id_map == tid)
      masks, scores = [], []
      for i in np.flatnonzero(out['valid']):
        m = out['label_map'] == i
        if m.any():
          masks.append(m)
          scores.append(float(out['scores'][i]))
      frame_masks.append(masks)
      frame_scores.append(scores)
      image_id = len(coco_gt['images']) + 1
      coco_gt['images'].append({'id': image_id, 'height': height, 'width': width})
      for rle in gt.masks[t]:
        coco_gt['annotations'].append({
            'id': len(coco_gt['annotations']) + 1, 'image_id': image_id, 'category_id': 1,
            'iscrowd': 0, 'area': float(mask_utils.area(rle)),
            'bbox': [float(x) for x in mask_utils.toBbox(rle)],
            'segmentation': {'size': [height, width], 'counts': rle['counts'].decode()}})
      for m, s in zip(masks, scores):
        rle = evaluation.encode_mask(m)
        coco_res.append({'image_id': image_id, 'category_id': 1, 'score': s,
                         'segmentation': {'size': [height, width],
                                          'counts': rle['counts'].decode()}})
    pred = evaluation.Sequence.empty(video.name, frames, height, width)
    kept = [[m for m, s in zip(ms, ss) if s >= mots_score_threshold]
            for ms, ss in zip(frame_masks, frame_scores)]
    for t, ids in enumerate(link_by_mask_iou(kept)):
      for obj, m in zip(ids, kept[t]):
        pred.add(t, evaluation.mots_object_id(obj), m)
    gts[video.name], preds[video.name], tracked[video.name] = gt, pred, trk_seq
  return {'mots': evaluation.evaluate_mots(gts, tracked),
          'mots_iou_linking': evaluation.evaluate_mots(gts, preds),
          'mask_ap': evaluation.evaluate_coco(coco_gt, coco_res)}
