"""How well a person segmenter finds people and traces them, on real masks and crowds.

  python benchmarks/people_benchmark.py --models real yolov5s-seg:yolo \
      --json benchmarks/results/people_benchmark_cpu.json [--sets coco ccp mall shtech]

MODEL is a built-in student name or export folder ('real', 'synthetic', DIR), optionally
'@[SIZE][xN][cCROWD]': the short side it runs at, the detections it keeps and the crowd
pass's short side (default: the model's; `hvisnet track --input-size S --max-detections N
--crowd-size CROWD`; 'real@800x300'; several sizes as 'real@352+800x300', `--input-size
352,800`; no crowd pass as 'real@c0'), or a teacher: 'ssdlite' (SSDLite boxes + BlazePose
masks) or 'YOLO[:MASKS][@SIZE]' with YOLO in
yolov5s-seg / yolov7-seg, MASKS in yolo / blazepose / max and SIZE the letterbox long side
(default 640). Sets (all in ../shared/data/real, none trained on):
- coco: coco_mini val2017 persons: mask AP, AP50, box AP (pycocotools), and the median best
  mask IoU of large people (area >= 96^2);
- ccp: ccp_fullbody val (50 full-body photos): median best IoU, share of people at IoU >= 0.9,
  mean extent offsets of the best mask's box against the true mask's box, in pixels
  (top/bottom/left/right, prediction minus truth: top > 0 or bottom < 0 means short);
- mall / shtech: crowd_mall (120 frames, 3,897 heads) and crowd_shtech_b (64 photos, 8,135
  heads): head recall. Each predicted person (its mask's box) may claim one annotated head
  point that lies in the top 35% of its box, matched one to one (Hungarian on the distance
  to the point 12% below the box top on its centre line); recall = heads claimed / heads;
  predictions per head counts every prediction.
Only predictions scored >= --min-score count (both AP and the rest).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hvisnet_jax import evaluation, provenance  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position

REAL = 'real'


# --------------------------------------------------------------------------- segmenters

class StudentSegmenter:
  """An HVISNet export: rgb -> (boxes, scores, label map of kept instances)."""

  def __init__(self, spec: str):
    from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
    self.pred = predictor_lib.Predictor.from_spec(spec)

  def __call__(self, rgb):
    h, w = rgb.shape[:2]
    # Padded bottom/right onto a few canvases: the jitted predictor compiles per shape.
    ch, cw = next(((a, b) for a, b in ((480, 640), (640, 480), (640, 640), (832, 640),
                                       (768, 1024)) if h <= a and w <= b), (h, w))
    padded = np.zeros((ch, cw, 3), np.uint8)
    padded[:h, :w] = rgb
    out = self.pred.predict(padded)
    keep = np.flatnonzero(out['valid'])
    remap = np.full(len(out['valid']) + 1, -1)
    remap[keep] = np.arange(len(keep))
    label = out['label_map'][:h, :w]
    return out['boxes'][keep], out['scores'][keep], remap[np.where(label >= 0, label, -1)]


class TeacherSegmenter:

  def __init__(self, spec: str):
    from hvisnet_jax.data_pipelines import yolo_teacher  # pylint: disable=g-import-not-at-top
    kind, _, size = spec.partition('@')
    kind, _, masks = kind.partition(':')
    if kind == 'ssdlite':
      self.teacher = yolo_teacher.make('ssdlite')
    else:
      self.teacher = yolo_teacher.make(kind, mask_source=masks or 'yolo', size=int(size or 640))

  def __call__(self, rgb):
    det, label = self.teacher(rgb)
    return det.boxes, det.scores, label


def make_segmenter(spec: str):
  base = spec.partition('@')[0].partition(':')[0]
  if base in ('ssdlite', 'yolov5s-seg', 'yolov7-seg'):
    return TeacherSegmenter(spec)
  return StudentSegmenter(spec)


def _instances(boxes, scores, label, min_score):
  """[(score, binary mask)] of the instances scored >= min_score with a non-empty mask."""
  out = []
  for i, s in enumerate(scores):
    if s < min_score:
      continue
    m = label == i
    if m.any():
      out.append((float(s), m))
  return out


def _box_of(mask):
  ys, xs = np.nonzero(mask)
  return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _rgb(path):
  bgr = cv2.imread(path)
  if bgr is None:
    raise FileNotFoundError(f'{path}: not a readable image')
  return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _best_ious(gt_masks, pred):
  if not pred or not gt_masks:
    return np.zeros(len(gt_masks)), np.full(len(gt_masks), -1)
  g = mask_utils.encode(np.asfortranarray(np.stack(gt_masks, -1).astype(np.uint8)))
  p = mask_utils.encode(np.asfortranarray(np.stack([m for _, m in pred], -1).astype(np.uint8)))
  iou = mask_utils.iou(p, g, [0] * len(gt_masks))            # (pred, gt)
  return iou.max(0), iou.argmax(0)


# --------------------------------------------------------------------------- sets

def coco_set(shared, seg, min_score):
  root = os.path.join(shared, REAL, 'coco_mini')
  gt = evaluation.load_json(os.path.join(root, 'annotations/instances_val2017.json'))
  person = [c['id'] for c in gt['categories'] if c['name'] == 'person'][0]
  anns = {}
  for a in gt['annotations']:
    anns.setdefault(a['image_id'], []).append(a)
  results, large_ious, t = [], [], 0.0
  from pycocotools.coco import COCO  # pylint: disable=g-import-not-at-top
  coco = COCO()
  coco.dataset = gt
  coco.createIndex()
  for im in gt['images']:
    rgb = _rgb(os.path.join(root, 'val2017', im['file_name']))
    t0 = time.perf_counter()
    boxes, scores, label = seg(rgb)
    t += time.perf_counter() - t0
    pred = _instances(boxes, scores, label, min_score)
    for s, m in pred:
      rle = evaluation.encode_mask(m)
      rle['counts'] = rle['counts'].decode()
      x1, y1, x2, y2 = _box_of(m)
      results.append(dict(image_id=im['id'], category_id=person, segmentation=rle, score=s,
                          bbox=[float(x1), float(y1), float(x2 - x1), float(y2 - y1)]))
    large = [coco.annToMask(a) > 0 for a in anns.get(im['id'], [])
             if a['category_id'] == person and not a['iscrowd'] and a['area'] >= 96 ** 2]
    large_ious += list(_best_ious(large, pred)[0])
  segm = evaluation.evaluate_coco(gt, results) if results else {}
  box = evaluation.evaluate_coco(gt, results, iou_type='bbox') if results else {}
  return dict(images=len(gt['images']), mask_AP=segm.get('AP', 0.0),
              mask_AP50=segm.get('AP50', 0.0), box_AP=box.get('AP', 0.0),
              large_people=len(large_ious),
              large_median_iou=float(np.median(large_ious)) if large_ious else 0.0,
              s_per_image=t / len(gt['images']))


def ccp_set(shared, seg, min_score):
  root = os.path.join(shared, REAL, 'ccp_fullbody')
  gt = evaluation.load_json(os.path.join(root, 'instances_val.json'))
  by_image = {im['id']: im for im in gt['images']}
  ious, offsets, t = [], [], 0.0
  for a in gt['annotations']:
    im = by_image[a['image_id']]
    rgb = _rgb(os.path.join(root, 'images', im['file_name']))
    rle = a['segmentation']
    if isinstance(rle['counts'], list):
      rle = mask_utils.frPyObjects(rle, rle['size'][0], rle['size'][1])
    gmask = mask_utils.decode(rle) > 0
    t0 = time.perf_counter()
    boxes, scores, label = seg(rgb)
    t += time.perf_counter() - t0
    pred = _instances(boxes, scores, label, min_score)
    best, arg = _best_ious([gmask], pred)
    ious.append(float(best[0]))
    if pred and best[0] > 0:
      offsets.append(np.subtract(_box_of(pred[arg[0]][1]), _box_of(gmask))[[1, 3, 0, 2]])
  off = np.mean(offsets, 0) if offsets else np.full(4, np.nan)
  return dict(people=len(ious), median_iou=float(np.median(ious)),
              share_iou_ge_0_9=float(np.mean(np.asarray(ious) >= 0.9)),
              extent_offset_px=dict(zip(('top', 'bottom', 'left', 'right'),
                                        [round(float(v), 1) for v in off])),
              s_per_image=t / len(ious))


def head_recall(boxes, heads):
  """Heads claimed one to one by boxes (x1 y1 x2 y2) whose top 35% holds the head point."""
  if not len(boxes) or not len(heads):
    return 0
  b = np.asarray(boxes, float)[:, None]
  h = np.asarray(heads, float)[None]
  bh = b[..., 3] - b[..., 1]
  inside = ((h[..., 0] >= b[..., 0]) & (h[..., 0] <= b[..., 2]) & (h[..., 1] >= b[..., 1])
            & (h[..., 1] <= b[..., 1] + 0.35 * bh))
  anchor = np.stack([(b[..., 0] + b[..., 2]) / 2, b[..., 1] + 0.12 * bh], -1)
  cost = np.where(inside, np.linalg.norm(anchor - h, axis=-1), 1e9)
  r, c = linear_sum_assignment(cost)
  return int((cost[r, c] < 1e9).sum())


def crowd_set(shared, name, seg, min_score):
  root = os.path.join(shared, REAL, name)
  with open(os.path.join(root, 'heads.json')) as f:
    heads = json.load(f)
  claimed = total = preds = 0
  t = 0.0
  for file_name in sorted(heads):
    rgb = _rgb(os.path.join(root, 'images', file_name))
    t0 = time.perf_counter()
    boxes, scores, label = seg(rgb)
    t += time.perf_counter() - t0
    pred = _instances(boxes, scores, label, min_score)
    mboxes = [_box_of(m) for _, m in pred]
    claimed += head_recall(mboxes, heads[file_name])
    total += len(heads[file_name])
    preds += len(pred)
  return dict(images=len(heads), heads=total, head_recall=claimed / max(total, 1),
              predictions_per_head=preds / max(total, 1), s_per_image=t / len(heads))


SETS = {'coco': coco_set, 'ccp': ccp_set,
        'mall': lambda sh, seg, ms: crowd_set(sh, 'crowd_mall', seg, ms),
        'shtech': lambda sh, seg, ms: crowd_set(sh, 'crowd_shtech_b', seg, ms)}


def main(argv=None):
  argv = sys.argv if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--models', nargs='+', default=['real'])
  p.add_argument('--sets', nargs='+', default=list(SETS), choices=list(SETS))
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--min-score', type=float, default=0.25)
  p.add_argument('--json', default=None, help='merge the results into this file')
  a = p.parse_args(argv[1:])
  out = provenance.load_rows(a.json)
  for spec in a.models:
    seg = make_segmenter(spec)
    res = out['models'].setdefault(spec, {})
    for s in a.sets:
      res[s] = SETS[s](a.shared, seg, a.min_score)
      # Rows of one file may come from several runs: each set records its own.
      res[s].update(min_score=a.min_score, provenance=provenance.record(argv))
      print(spec, s, json.dumps({k: v for k, v in res[s].items() if k != 'provenance'}),
            flush=True)
      provenance.save_rows(a.json, out, argv)
  return 0


if __name__ == '__main__':
  sys.exit(main())
