"""Where a segmenter loses COCO's large people: not found, the box, or the mask's shape?

  python benchmarks/large_people.py --models real 'yolov5s-seg:yolo@384' \
      --json benchmarks/results/large_people_cpu.json --sheet large_people_real.png

On coco_mini val2017's large people (area >= 96^2, not crowd; people_benchmark.py's
large_median_iou), for each person the prediction (scored >= --min-score) whose mask
overlaps it most:
- iou: mask IoU (the benchmark's figure is the median of these);
- box_iou: that prediction's mask box against the true mask's box (found the person's
  extent?);
- iou_in_box: mask IoU with the prediction cut to the true box (the shape inside the
  person's extent, whatever spills outside);
- missed: people whose best IoU is under 0.3 (not found, or found as part of another).
--sheet writes a PNG per model: each person cropped, the true outline in green, the
matched mask in red, worst first, labelled iou / box_iou / iou_in_box.
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import people_benchmark  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position
from hvisnet_jax import evaluation, provenance  # pylint: disable=wrong-import-position

MISSED_BELOW = 0.3
TILE = 240


def _box_iou(a, b) -> float:
  ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
  iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = ix * iy
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def person_rows(true_masks, pred):
  """One dict per true mask: iou, box_iou, iou_in_box of its best-overlapping prediction
  (zeros where none overlaps), and that prediction's index (-1: none)."""
  best, arg = people_benchmark._best_ious(true_masks, pred)  # pylint: disable=protected-access
  rows = []
  for g, iou, j in zip(true_masks, best, arg):
    row = dict(iou=float(iou), box_iou=0.0, iou_in_box=0.0, pred=-1)
    if iou > 0:
      m = pred[j][1]
      gb = people_benchmark._box_of(g)  # pylint: disable=protected-access
      inside = np.zeros_like(m)
      inside[gb[1]:gb[3], gb[0]:gb[2]] = True
      cut = m & inside
      row.update(box_iou=_box_iou(gb, people_benchmark._box_of(m)),  # pylint: disable=protected-access
                 iou_in_box=float((cut & g).sum() / (cut | g).sum()), pred=int(j))
    rows.append(row)
  return rows


def _tile(rgb, g, m, row):
  x1, y1, x2, y2 = people_benchmark._box_of(g)  # pylint: disable=protected-access
  pad = 20
  x1, y1 = max(0, x1 - pad), max(0, y1 - pad)
  x2, y2 = min(rgb.shape[1], x2 + pad), min(rgb.shape[0], y2 + pad)
  vis = rgb.copy()
  if m is not None:
    vis[m] = (0.5 * vis[m] + [127, 0, 0]).astype(np.uint8)
  contours, _ = cv2.findContours(g.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
  cv2.drawContours(vis, contours, -1, (0, 255, 0), 2)
  crop = vis[y1:y2, x1:x2]
  s = TILE / max(crop.shape[:2])
  crop = cv2.resize(crop, (max(1, int(crop.shape[1] * s)), max(1, int(crop.shape[0] * s))))
  tile = np.zeros((TILE + 20, TILE, 3), np.uint8)
  tile[:crop.shape[0], :crop.shape[1]] = crop
  cv2.putText(tile, f'{row["iou"]:.2f} / {row["box_iou"]:.2f} / {row["iou_in_box"]:.2f}',
              (2, TILE + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
  return tile


def run(shared, spec, min_score, sheet=None):
  root = os.path.join(shared, people_benchmark.REAL, 'coco_mini')
  gt = evaluation.load_json(os.path.join(root, 'annotations/instances_val2017.json'))
  from pycocotools.coco import COCO  # pylint: disable=g-import-not-at-top
  coco = COCO()
  coco.dataset = gt
  coco.createIndex()
  person = [c['id'] for c in gt['categories'] if c['name'] == 'person'][0]
  seg = people_benchmark.make_segmenter(spec)
  rows, tiles = [], []
  for im in gt['images']:
    anns = [a for a in coco.imgToAnns[im['id']] if a['category_id'] == person
            and not a['iscrowd'] and a['area'] >= 96 ** 2]
    if not anns:
      continue
    rgb = people_benchmark._rgb(os.path.join(root, 'val2017', im['file_name']))  # pylint: disable=protected-access
    pred = people_benchmark._instances(*seg(rgb), min_score)  # pylint: disable=protected-access
    true_masks = [coco.annToMask(a) > 0 for a in anns]
    for g, a, row in zip(true_masks, anns, person_rows(true_masks, pred)):
      rows.append(dict(row, image=im['file_name'], annotation=a['id']))
      if sheet:
        tiles.append((row['iou'], _tile(rgb, g, pred[row['pred']][1] if row['pred'] >= 0
                                        else None, row)))
  if sheet and tiles:
    tiles = [t for _, t in sorted(tiles, key=lambda x: x[0])]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 6)
    grid = np.vstack([np.hstack(tiles[i:i + 6]) for i in range(0, len(tiles), 6)])
    os.makedirs(os.path.dirname(os.path.abspath(sheet)), exist_ok=True)
    tmp = f'{sheet[:-4]}.partial.png'                     # whole or not at all
    if not cv2.imwrite(tmp, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
      raise SystemExit(f'{sheet}: could not write an image there')
    os.replace(tmp, sheet)
  ious = np.array([r['iou'] for r in rows])
  found = ious >= MISSED_BELOW
  return dict(people=len(rows), median_iou=float(np.median(ious)),
              missed=int((~found).sum()),
              median_box_iou_found=float(np.median([r['box_iou'] for r, f in zip(rows, found)
                                                    if f])) if found.any() else 0.0,
              median_iou_in_box_found=float(np.median(
                  [r['iou_in_box'] for r, f in zip(rows, found) if f])) if found.any() else 0.0,
              median_iou_found=float(np.median(ious[found])) if found.any() else 0.0,
              min_score=min_score, people_rows=rows)


def main(argv=None):
  argv = sys.argv if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--models', nargs='+', default=['real'], help='as in people_benchmark.py')
  p.add_argument('--min-score', type=float, default=0.25)
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--json', default=None, help='merge the results into this file')
  p.add_argument('--sheet', default=None,
                 help='PNG path; with several models each gets its own (NAME_1.png, ...)')
  a = p.parse_args(argv[1:])
  if a.sheet and not a.sheet.endswith('.png'):
    p.error(f'--sheet must name a .png file, got {a.sheet!r}')
  ann = os.path.join(a.shared, people_benchmark.REAL, 'coco_mini/annotations/instances_val2017.json')
  if not os.path.isfile(ann):
    p.error(f'{ann}: not found (--shared {a.shared})')
  out = provenance.load_rows(a.json)
  for i, spec in enumerate(a.models):
    sheet = a.sheet
    if sheet and len(a.models) > 1:
      sheet = f'{sheet[:-4]}_{i + 1}.png'
    res = run(a.shared, spec, a.min_score, sheet)
    out['models'][spec] = dict(res, provenance=provenance.record(argv))
    print(spec, {k: v for k, v in res.items() if k != 'people_rows'}, flush=True)
    provenance.save_rows(a.json, out, argv)
  return 0


if __name__ == '__main__':
  sys.exit(main())
