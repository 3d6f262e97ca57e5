"""Tracking and segmentation metrics exactly as the field computes them.

MOTS metrics (sMOTSA, MOTSA, MOTSP, ...), HOTA and IDF1 come from the `trackeval`
package: our sequences are handed to its own MOTSChallenge preprocessing (ignore
regions, Hungarian matching at mask IoU 0.5) and its metric classes, so the numbers are
trackeval's, computed without temporary files. COCO mask and box AP come from pycocotools.
"""
from __future__ import annotations

import copy
from typing import Dict, Optional

import numpy as np
from pycocotools import mask as mask_utils

from hvisnet_jax.evaluation.formats import (IGNORE, PEDESTRIAN, EvalInputError, Sequence,
                                            find_overlaps, load_json, resolve_overlaps,
                                            segmentation_rle)

METRIC_KEYS = ('sMOTSA', 'MOTSA', 'MOTSP', 'TP', 'FP', 'FN', 'IDSW', 'HOTA', 'DetA', 'AssA',
               'IDF1')
COUNT_KEYS = ('TP', 'FP', 'FN', 'IDSW')


# --------------------------------------------------------------------------- MOTS metrics

def _trackeval_dataset(gt: Dict[str, Sequence], pred: Dict[str, Sequence]):
  from trackeval.datasets import MOTSChallenge  # pylint: disable=g-import-not-at-top
  from trackeval.datasets._base_dataset import _BaseDataset  # pylint: disable=g-import-not-at-top

  class InMemoryMOTS(MOTSChallenge):
    """trackeval's MOTSChallenge with raw data from memory instead of its folder layout."""

    def __init__(self):  # pylint: disable=super-init-not-called
      _BaseDataset.__init__(self)
      self.class_name_to_class_id = {'pedestrian': str(PEDESTRIAN), 'ignore': str(IGNORE)}

    def _load_raw_file(self, tracker, seq, is_gt):
      s = (gt if is_gt else pred)[seq]
      n = max(gt[seq].num_frames, pred[seq].num_frames)
      s = s.resized(n)
      raw = {'num_timesteps': n, 'seq': seq}
      prefix = 'gt' if is_gt else 'tracker'
      ids, classes, dets, ignore = [], [], [], []
      for t in range(n):
        keep = s.classes[t] != IGNORE if is_gt else np.ones(len(s.ids[t]), bool)
        ids.append(s.ids[t][keep].astype(int))
        classes.append(s.classes[t][keep].astype(int))
        dets.append([m for m, k in zip(s.masks[t], keep) if k])
        ign = [m for m, k in zip(s.masks[t], keep) if not k]
        ignore.append(mask_utils.merge(ign, intersect=False))
      raw[f'{prefix}_ids'], raw[f'{prefix}_classes'], raw[f'{prefix}_dets'] = ids, classes, dets
      if is_gt:
        raw['gt_ignore_region'] = ignore
      return raw

  return InMemoryMOTS()


def _summarise(res: dict) -> Dict[str, float]:
  clear, hota, ident = res['CLEAR'], res['HOTA'], res['Identity']
  out = dict(sMOTSA=clear['sMOTA'], MOTSA=clear['MOTA'], MOTSP=clear['MOTP'],
             TP=clear['CLR_TP'], FP=clear['CLR_FP'], FN=clear['CLR_FN'], IDSW=clear['IDSW'],
             HOTA=np.mean(hota['HOTA']), DetA=np.mean(hota['DetA']),
             AssA=np.mean(hota['AssA']), IDF1=ident['IDF1'])
  return {k: int(v) if k in COUNT_KEYS else float(v) for k, v in out.items()}


def evaluate_mots(gt: Dict[str, Sequence], pred: Dict[str, Sequence],
                  resolve: Optional[str] = None) -> Dict[str, dict]:
  """trackeval's HOTA, CLEAR (as MOTS metrics) and Identity over matching sequences.

  Returns {'combined': {metric: value}, 'per_sequence': {name: {metric: value}}}, combined
  with trackeval's own combine_sequences. `resolve` ('score' or 'order') fixes overlapping
  predicted masks; without it overlaps are an error naming the frame and ids.
  """
  from trackeval import metrics as te_metrics  # pylint: disable=g-import-not-at-top
  only_gt, only_pred = sorted(set(gt) - set(pred)), sorted(set(pred) - set(gt))
  if only_gt or only_pred:
    raise EvalInputError('sequences must match by name: ' + '; '.join(
        x for x in (f'only in ground truth: {", ".join(only_gt)}' if only_gt else '',
                    f'only in predictions: {", ".join(only_pred)}' if only_pred else '') if x))
  if not gt:
    raise EvalInputError('no sequences to evaluate')
  pred = dict(pred)
  for name in sorted(gt):
    g, p = gt[name], pred[name]
    if (g.height, g.width) != (p.height, p.width):
      raise EvalInputError(f'sequence {name}: image size {p.height}x{p.width} in {p.source} '
                           f'differs from {g.height}x{g.width} in {g.source}')
    if resolve:
      pred[name] = resolve_overlaps(p, resolve)
    else:
      clash = find_overlaps(p)
      if clash:
        t, a, b = clash[0]
        raise EvalInputError(
            f'{p.source}: predicted masks overlap in sequence {name}, frame {t + 1} (ids {a} '
            f'and {b}); {len(clash)} overlapping pair(s) in all. MOTS needs disjoint masks: '
            'pass --resolve-overlaps to keep the higher-scoring (or earlier-listed) instance')
    clash = find_overlaps(g)
    if clash:
      t, a, b = clash[0]
      raise EvalInputError(f'{g.source}: ground-truth masks overlap in sequence {name}, '
                           f'frame {t + 1} (ids {a} and {b})')
  dataset = _trackeval_dataset(gt, pred)
  metric_objs = [te_metrics.HOTA(), te_metrics.CLEAR({'PRINT_CONFIG': False}),
                 te_metrics.Identity({'PRINT_CONFIG': False}), te_metrics.Count()]
  per_seq_raw = {}
  for name in sorted(gt):
    raw = dataset.get_raw_seq_data('pred', name)
    data = dataset.get_preprocessed_seq_data(raw, 'pedestrian')
    per_seq_raw[name] = {m.get_name(): m.eval_sequence(data) for m in metric_objs}
  combined = {m.get_name(): m.combine_sequences({s: r[m.get_name()] for s, r in
                                                 per_seq_raw.items()}) for m in metric_objs}
  return {'combined': _summarise(combined),
          'per_sequence': {s: _summarise(r) for s, r in per_seq_raw.items()}}


# --------------------------------------------------------------------------- box tracks

def evaluate_box_tracks(gt: Dict[str, list], pred: Dict[str, list]) -> Dict[str, dict]:
  """HOTA, CLEAR (MOTA, MOTP) and Identity (IDF1) of box trajectories, by trackeval.

  gt and pred map a sequence name to a list, per frame, of (ids (N,), boxes (N, 4) x1 y1
  x2 y2). Similarity is box IoU (pycocotools); trackeval's metric classes do the rest
  (a CLEAR match needs IoU >= 0.5), on data laid out as its preprocessing would leave it
  (no distractor classes: every box is a person).
  """
  from trackeval import metrics as te_metrics  # pylint: disable=g-import-not-at-top
  if set(gt) != set(pred) or not gt:
    raise EvalInputError(f'sequences must match by name: {sorted(gt)} vs {sorted(pred)}')
  metric_objs = [te_metrics.HOTA(), te_metrics.CLEAR({'PRINT_CONFIG': False}),
                 te_metrics.Identity({'PRINT_CONFIG': False})]
  per_seq = {}
  for name in sorted(gt):
    data = _box_sequence_data(gt[name], pred[name], name)
    per_seq[name] = {m.get_name(): m.eval_sequence(data) for m in metric_objs}
  combined = {m.get_name(): m.combine_sequences({s: r[m.get_name()] for s, r in
                                                 per_seq.items()}) for m in metric_objs}
  return {'combined': _summarise_boxes(combined),
          'per_sequence': {s: _summarise_boxes(r) for s, r in per_seq.items()}}


def _box_sequence_data(gt_frames, pred_frames, name) -> dict:
  if len(gt_frames) != len(pred_frames):
    raise EvalInputError(f'sequence {name}: {len(pred_frames)} predicted frames for '
                         f'{len(gt_frames)} ground-truth frames')
  def xywh(b):
    b = np.asarray(b, float).reshape(-1, 4)
    return np.c_[b[:, :2], b[:, 2:] - b[:, :2]]
  # trackeval wants ids 0..n-1 per sequence.
  gt_map, tr_map = {}, {}
  data = dict(gt_ids=[], tracker_ids=[], similarity_scores=[], num_timesteps=len(gt_frames))
  n_gt = n_tr = 0
  for (gi, gb), (ti, tb) in zip(gt_frames, pred_frames):
    gi, ti = np.asarray(gi).reshape(-1), np.asarray(ti).reshape(-1)
    if len(set(ti.tolist())) != len(ti):
      raise EvalInputError(f'sequence {name}: a track id appears twice in one frame')
    data['gt_ids'].append(np.array([gt_map.setdefault(int(i), len(gt_map)) for i in gi], int))
    data['tracker_ids'].append(np.array([tr_map.setdefault(int(i), len(tr_map)) for i in ti],
                                        int))
    sim = (mask_utils.iou(xywh(gb).tolist(), xywh(tb).tolist(), [0] * len(ti))
           if len(gi) and len(ti) else np.zeros((len(gi), len(ti))))
    data['similarity_scores'].append(np.asarray(sim, float).reshape(len(gi), len(ti)))
    n_gt, n_tr = n_gt + len(gi), n_tr + len(ti)
  data.update(num_gt_ids=len(gt_map), num_tracker_ids=len(tr_map), num_gt_dets=n_gt,
              num_tracker_dets=n_tr, seq=name)
  return data


def _summarise_boxes(res: dict) -> Dict[str, float]:
  clear, hota, ident = res['CLEAR'], res['HOTA'], res['Identity']
  out = dict(HOTA=np.mean(hota['HOTA']), DetA=np.mean(hota['DetA']),
             AssA=np.mean(hota['AssA']), MOTA=clear['MOTA'], MOTP=clear['MOTP'],
             IDF1=ident['IDF1'], IDSW=clear['IDSW'], TP=clear['CLR_TP'], FP=clear['CLR_FP'],
             FN=clear['CLR_FN'], Frag=clear['Frag'])
  return {k: int(v) if k in COUNT_KEYS + ('Frag',) else float(v) for k, v in out.items()}


# --------------------------------------------------------------------------- COCO mask AP

def evaluate_coco(gt_path, results, category: str = 'person',
                  iou_type: str = 'segm') -> Dict[str, float]:
  """COCO mask (iou_type 'segm') or box ('bbox') AP/AP50/AP75 (and by size) for one
  category, via pycocotools' COCOeval.

  `gt_path` is a ground-truth JSON path or an in-memory COCO dict; `results` a results-JSON
  path or an in-memory list of result dicts.
  """
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  from pycocotools.coco import COCO  # pylint: disable=g-import-not-at-top
  from pycocotools.cocoeval import COCOeval  # pylint: disable=g-import-not-at-top
  gt_json = load_json(gt_path) if isinstance(gt_path, str) else gt_path
  gt_path = gt_path if isinstance(gt_path, str) else '<ground truth>'
  if not isinstance(gt_json, dict) or 'annotations' not in gt_json or 'images' not in gt_json:
    raise EvalInputError(f'{gt_path}: expected COCO ground truth with "images" and '
                         '"annotations"')
  res = load_json(results) if isinstance(results, str) else results
  where = results if isinstance(results, str) else '<results>'
  if not isinstance(res, list):
    raise EvalInputError(f'{where}: expected a COCO results list')
  cat_ids = [c['id'] for c in gt_json.get('categories', []) if c.get('name') == category]
  if not cat_ids:
    raise EvalInputError(f'{gt_path}: no category named {category!r}')
  sizes = {im['id']: (im.get('height'), im.get('width')) for im in gt_json['images']}
  res = copy.deepcopy(res)         # loadRes adds fields; masks become RLE: the caller's stay
  for i, r in enumerate(res):
    field = 'segmentation' if iou_type == 'segm' else 'bbox'
    if not isinstance(r, dict) or field not in r or 'score' not in r or 'image_id' not in r:
      raise EvalInputError(f'{where}: [{i}] needs image_id, {field} and score')
    if r['image_id'] not in sizes:
      raise EvalInputError(f'{where}: [{i}] image_id {r["image_id"]} is not in {gt_path}')
    s = r['score']
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not np.isfinite(s):
      raise EvalInputError(f'{where}: [{i}] "score" must be a number, got {s!r}')
    if field == 'segmentation':      # right size, runs that add up: else AP would be made up
      h, w = sizes[r['image_id']]
      if not (isinstance(h, int) and isinstance(w, int)):
        raise EvalInputError(f'{gt_path}: image {r["image_id"]} lacks an integer height/width')
      # Polygons (the results format asks for RLE, some tools write polygons) become RLE.
      rle = segmentation_rle(r['segmentation'], h, w, f'{where}: [{i}] segmentation')
      r['segmentation'] = {'size': list(rle['size']), 'counts': rle['counts'].decode()
                           if isinstance(rle['counts'], bytes) else rle['counts']}
    elif not (isinstance(r['bbox'], list) and len(r['bbox']) == 4 and
              all(isinstance(v, (int, float)) for v in r['bbox'])):
      raise EvalInputError(f'{where}: [{i}] "bbox" must be [x, y, width, height] numbers')
  with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO()
    coco.dataset = copy.deepcopy(gt_json)
    coco.createIndex()
    dets = coco.loadRes(res) if res else COCO()
    ev = COCOeval(coco, dets, iou_type)
    ev.params.catIds = cat_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
  names = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
  return {n: float(v) for n, v in zip(names, ev.stats[:6])}


# --------------------------------------------------------------------------- reporting

def format_table(result: Dict[str, dict]) -> str:
  """Per-sequence rows and the combined row, percentages for fractions."""
  head = f'{"sequence":<24}' + ''.join(f'{k:>8}' for k in METRIC_KEYS)
  fmt = lambda k, v: f'{v:>8d}' if k in COUNT_KEYS else f'{100 * v:>8.2f}'
  row = lambda name, r: f'{name[:24]:<24}' + ''.join(fmt(k, r[k]) for k in METRIC_KEYS)
  lines = [head, '-' * len(head)]
  lines += [row(n, r) for n, r in sorted(result['per_sequence'].items())]
  lines += ['-' * len(head), row('COMBINED', result['combined'])]
  return '\n'.join(lines)
