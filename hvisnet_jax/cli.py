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
