"""`hvisnet eval`: MOTS / HOTA (trackeval), YouTube-VIS, COCO mask AP (pycocotools)."""
from __future__ import annotations

import json
import os

from hvisnet_jax import atomic
from hvisnet_jax.apps.commands import common


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
  if args.json:
    _check_json_is_not_an_input(args)
    common.check_writable_file(args.json, '--json')
  fmt = args.format or ('coco' if args.gt.endswith('.json') and _is_coco(args.gt) else
                        'ytvis' if args.gt.endswith('.json') else 'mots')
  if fmt == 'coco':
    result = {'combined': evaluation.evaluate_coco(args.gt, args.pred), 'per_sequence': {}}
    print('  '.join(f'{k} {100 * v:.2f}' for k, v in result['combined'].items()))
  else:
    if fmt == 'ytvis':
      gt, pred = evaluation.read_ytvis(args.gt, args.pred)
    else:
      gt, pred = evaluation.read_mots_pair(args.gt, args.pred, args.kitti)
    result = evaluation.evaluate_mots(gt, pred, resolve=args.resolve_overlaps)
    print(evaluation.format_table(result))
  if args.json:
    atomic.write_text(args.json, json.dumps(result, indent=2))
  return 0


def _check_json_is_not_an_input(args) -> None:
  """--json never lands on the ground truth or the predictions (or inside their folders)."""
  out = os.path.realpath(args.json)
  for option, path in (('--gt', args.gt), ('--pred', args.pred)):
    real = os.path.realpath(path)
    if out == real or (os.path.isdir(real) and out.startswith(real + os.sep)):
      raise ValueError(f'--json {args.json}: would write over {option} {path}; metrics go '
                       'to a file of their own')
  if os.path.isfile(out):
    with open(out, 'rb') as f:
      head = f.read(4096).lstrip()
    if not head.startswith(b'{') or (b'"combined"' not in head and b'"per_sequence"' not in head):
      raise FileExistsError(f'--json {args.json}: exists and is not an hvisnet eval result; '
                            'choose a new file (an earlier eval result is replaced)')


def _is_coco(path: str) -> bool:
  with open(path) as f:
    head = f.read(1 << 16)
  return '"images"' in head and '"videos"' not in head
