"""The `hvisnet` command: one sub-command per job, each a thin wrapper over a module."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _convert_torch(args) -> int:
  from hvisnet_jax import config_defaults, convert_torch  # pylint: disable=g-import-not-at-top
  cfg = config_defaults.load_config(args.config).model
  sd = convert_torch.load_state_dict(args.state_dict)
  try:
    backbone = convert_torch.backbone_variables(sd, cfg.backbone.levels, cfg.backbone.channels)
  except convert_torch.ConversionError as e:
    raise convert_torch.ConversionError(f'{args.state_dict}: {e}') from None
  variables = {col: {'backbone': backbone[col]} for col in ('params', 'batch_stats')}
  convert_torch.save_variables(args.out, variables)
  n = sum(v.size for v in _leaves(backbone['params']))
  print(f'wrote {n:,} backbone parameters from {args.state_dict} to {os.path.abspath(args.out)}')
  return 0


def _leaves(tree):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.leaves(tree)


def _demo(args) -> int:
  """Smoke run of the network on generated frames: compile time, latency, output shapes."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import config_defaults, model, predictor  # pylint: disable=g-import-not-at-top
  cfg = config_defaults.load_config(args.config)
  t0 = time.perf_counter()
  variables = model.init_variables(cfg.model, jax.random.PRNGKey(args.seed))
  pred = predictor.Predictor(cfg, variables)
  rng = np.random.default_rng(args.seed)
  frames = rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8)
  t1 = time.perf_counter()
  pred.compile_for(1, args.height, args.width)
  t2 = time.perf_counter()
  times = []
  for f in frames:
    s = time.perf_counter()
    out = pred.predict(f)
    times.append(time.perf_counter() - s)
  report = dict(config=args.config, device=str(jax.devices()[0]), init_s=t1 - t0,
                compile_s=t2 - t1, median_latency_ms=1e3 * float(np.median(times)),
                frame_hw=[args.height, args.width],
                outputs={k: [list(v.shape), str(v.dtype)] for k, v in out.items()},
                note='untrained weights: shapes and speed only, detections are meaningless')
  text = json.dumps(report, indent=2)
  print(text)
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    _write_atomic(os.path.join(args.out, 'demo.json'), text)
  return 0


def _eval(args) -> int:
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
      gt, pred = evaluation.read_mots(args.gt, args.kitti), evaluation.read_mots(args.pred, args.kitti)
      if len(gt) == 1 and len(pred) == 1 and os.path.isfile(args.gt) and os.path.isfile(args.pred):
        (name, g), (_, p) = next(iter(gt.items())), next(iter(pred.items()))
        pred = {name: p}        # two single files pair up whatever their names
    result = evaluation.evaluate_mots(gt, pred, resolve=args.resolve_overlaps)
    print(evaluation.format_table(result))
  if args.json:
    _write_atomic(args.json, json.dumps(result, indent=2))
  return 0


def _is_coco(path: str) -> bool:
  with open(path) as f:
    head = f.read(1 << 16)
  return '"images"' in head and '"videos"' not in head


def _write_atomic(path: str, text: str) -> None:
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  default_cfg = os.path.join(here, 'configs', 'hvisnet_dla34.py')
  p = argparse.ArgumentParser(prog='hvisnet', description=__doc__)
  sub = p.add_subparsers(dest='command', required=True)

  c = sub.add_parser('convert-torch', help='import a PyTorch DLA-34 state_dict as Flax params')
  c.add_argument('state_dict', help='.pth/.pt (needs torch) or .npz state_dict, ucbdrive/timm '
                 'dla34 naming')
  c.add_argument('--out', required=True, help='output orbax checkpoint directory')
  c.add_argument('--config', default=default_cfg, help='config file[:arg] giving the backbone')
  c.set_defaults(func=_convert_torch)

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
  e.set_defaults(func=_eval)

  d = sub.add_parser('demo', help='smoke-run the network on generated frames')
  d.add_argument('--out', default=None, help='directory for demo.json')
  d.add_argument('--config', default=os.path.join(here, 'configs', 'hvisnet_tiny.py'))
  d.add_argument('--frames', type=int, default=10)
  d.add_argument('--height', type=int, default=360)
  d.add_argument('--width', type=int, default=480)
  d.add_argument('--seed', type=int, default=0)
  d.set_defaults(func=_demo)
  return p


def main(argv=None) -> int:
  args = build_parser().parse_args(argv)
  try:
    return args.func(args)
  except (FileNotFoundError, ValueError) as e:
    print(f'hvisnet {args.command}: error: {e}', file=sys.stderr)
    return 2


if __name__ == '__main__':
  sys.exit(main())
