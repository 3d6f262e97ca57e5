"""`hvisnet eval`: MOTS / HOTA (trackeval), YouTube-VIS, COCO mask AP (pycocotools)."""
from __future__ import annotations

import json
import os

from hvisnet_jax import atomic


def add_parsers(sub) -> None:
  e = sub.add_parser('eval', help='MOTS/HOTA (trackeval) or COCO mask AP (pycocotools)')
  e.add_argument('--gt', required=True, help='MOTS txt file or directory of <sequence>.txt; '
                 'YouTube-VIS or COCO ground-truth JSON')
  e.add_argument('--pred', required=True, help='predictions in the matching format')
  e.add_argument('--format', choices=['mots', 'ytvis', 'coco'], default=None,
                 help='default: from the ground truth file')
  e.add_argument('--kitti', action='store_true', help='MOTS frames numbered from 0 (KITTI-MOTS)')
  e.add_argument('--resolve-overlaps', nargs='?', const='score', choices=['score', 'order'],
                 default=None, help='make overlapping predicted masks disjoint, keeping the '
                 'higher-scoring (YouTube-VIS) or earlier-listed instance')
  e.add_argument('--json', default=None, help='write {"combined", "per_sequence"} here')
  e.set_defaults(func=run)


def run(args) -> int:
  from hvisnet_jax import evaluation  # pylint: disable=g-import-not-at-top
  fmt = args.format or ('coco' if args.gt.endswith('.json') and _is_coco(args.gt) else
                        'ytvis' if args.gt.endswith('.json') else 'mots')
  if fmt == 'coco':
    result = {'combined': evaluation.evaluate_coco(args.gt, args.pred), 'per_sequence': {}}
    print('  '.join(f'{k} {100 * v:.2f}' for k, v in result['combined'].items()))
  else:
    if fmt == 'ytvis':
      gt, pred = evaluation.read_ytvis(args.gt, args.pred)
    else:
      gt = evaluation.read_mots(args.gt, args.kitti)
      pred = evaluation.read_mots(args.pred, args.kitti, like=gt)
      if len(gt) == 1 and len(pred) == 1 and os.path.isfile(args.gt) and os.path.isfile(args.pred):
        name, p = next(iter(gt)), next(iter(pred.values()))
        pred = {name: p}        # two single files pair up whatever their names
    result = evaluation.evaluate_mots(gt, pred, resolve=args.resolve_overlaps)
    print(evaluation.format_table(result))
  if args.json:
    atomic.write_text(args.json, json.dumps(result, indent=2))
  return 0


def _is_coco(path: str) -> bool:
  with open(path) as f:
    head = f.read(1 << 16)
  return '"images"' in head and '"videos"' not in head
