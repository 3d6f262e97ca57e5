"""Where a student's masks lose a person's extent: the box, or the mask inside the box?

  python benchmarks/extent_diagnosis.py --model real \
      --json benchmarks/results/extent_diagnosis_cpu.json

On ccp_fullbody val (50 full-body photos with exact masks), for the instance that overlaps
the true mask most, in pixels (prediction minus truth; top > 0 or bottom < 0 = short):
- box_vs_truth: the predicted box's edges against the true mask's extent. Masks are pasted
  only inside the predicted box, so a short box caps the mask;
- mask_vs_box: the pasted mask's extent against its own box (how much of the box the
  28x28 mask fills at the paste threshold);
- mask_vs_truth: the two together;
- edge_prob: the mask probability in the box's first and last rows (mean of the row's
  maximum): high means the mask runs into the box's edge (the box cut it);
plus the same box and mask offsets for the teacher's labels of the same photos when
--teacher is given (what the student was taught).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import people_benchmark  # pylint: disable=wrong-import-position
from hvisnet_jax import atomic, evaluation, provenance  # pylint: disable=wrong-import-position
from pycocotools import mask as mask_utils  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position

EDGES = ('top', 'bottom', 'left', 'right')


def _extent(mask):
  ys, xs = np.nonzero(mask)
  return np.array([ys.min(), ys.max() + 1, xs.min(), xs.max() + 1], float)


def _box_tblr(box):
  x1, y1, x2, y2 = box
  return np.array([y1, y2, x1, x2], float)


def diagnose(shared, pred):
  root = os.path.join(shared, 'real', 'ccp_fullbody')
  gt = evaluation.load_json(os.path.join(root, 'instances_val.json'))
  by_image = {im['id']: im for im in gt['images']}
  rows = {k: [] for k in ('box_vs_truth', 'mask_vs_box', 'mask_vs_truth')}
  edge = []
  for a in gt['annotations']:
    im = by_image[a['image_id']]
    rgb = people_benchmark._rgb(os.path.join(root, 'images', im['file_name']))  # pylint: disable=protected-access
    rle = a['segmentation']
    if isinstance(rle['counts'], list):
      rle = mask_utils.frPyObjects(rle, *rle['size'])
    truth = mask_utils.decode(rle) > 0
    out = pred.predict(rgb)
    best, best_iou = -1, 0.0
    for i in np.flatnonzero(out['valid']):
      m = out['label_map'] == i
      iou = np.logical_and(m, truth).sum() / max(np.logical_or(m, truth).sum(), 1)
      if iou > best_iou:
        best, best_iou = i, iou
    if best < 0:
      continue
    m = out['label_map'] == best
    t, b, mk = _extent(truth), _box_tblr(out['boxes'][best]), _extent(m)
    rows['box_vs_truth'].append(b - t)
    rows['mask_vs_box'].append(mk - b)
    rows['mask_vs_truth'].append(mk - t)
    prob = 1 / (1 + np.exp(-np.asarray(out['mask_logits'][best], np.float32)))
    edge.append([prob[0].max(), prob[-1].max()])
  res = {k: dict(zip(EDGES, [round(float(x), 1) for x in np.mean(v, 0)])) for k, v in rows.items()}
  res['edge_prob'] = dict(zip(('top_row', 'bottom_row'), [round(float(x), 3) for x in np.mean(edge, 0)]))
  res['people'] = len(gt['annotations'])
  res['matched'] = len(edge)
  return res


def main(argv=None):
  argv = sys.argv if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--model', default='real',
                 help="as in people_benchmark.py: 'real', an export folder, 'real@256' (the "
                      'short side it runs at)')
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--json', default=None, help='merge the result into this file, by model')
  a = p.parse_args(argv[1:])
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  res = diagnose(a.shared, predictor_lib.Predictor.from_spec(a.model))
  print(json.dumps(res, indent=1))
  if a.json:
    out = evaluation.load_json(a.json) if os.path.exists(a.json) else {}
    out.setdefault('models', {})[a.model] = res
    out.update(provenance.record(argv))
    atomic.write_json(a.json, out, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
