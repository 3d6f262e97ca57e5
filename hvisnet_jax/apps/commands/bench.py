"""`hvisnet bench`: latency and throughput, JAX against PyTorch, training, tracker, pipeline."""
from __future__ import annotations

import json
import os

from hvisnet_jax import atomic
from hvisnet_jax.apps.commands import common


def add_parsers(sub) -> None:
  b = sub.add_parser('bench', help='latency/throughput: JAX vs PyTorch, training, tracker')
  b.add_argument('--what', choices=['inference', 'train', 'tracker', 'pipeline'],
                 default='inference', help='inference: the network alone, latency and '
                 'throughput; train: training steps per second; tracker: the tracker alone '
                 'at growing crowd sizes; pipeline: hvisnet track end to end on --source '
                 '(default: inference)')
  b.add_argument('--framework', choices=['jax', 'torch', 'both'], default='jax',
                 help='--what inference/train: our JAX model, the same network in PyTorch, '
                 'or both in one run; torch and both need PyTorch, which hvisnet does not '
                 'install (pip install torch==2.13.0) (default: jax)')
  b.add_argument('--batch', type=common.positive_int, default=1,
                 help='images per step (default 1)')
  b.add_argument('--dtype', choices=['float32', 'bfloat16'], default='float32',
                 help='compute dtype of the network (default float32)')
  b.add_argument('--size', type=common.whole(64), default=None,
                 help='short side of the network input (inference/train: default 512; '
                 'pipeline: the model\'s own)')
  b.add_argument('--config', default=common.DEFAULT_CONFIG,
                 help='--what inference/train: the model config timed (default: '
                 f'{common.DEFAULT_CONFIG}, the paper\'s DLA-34)')
  b.add_argument('--warmup', type=common.natural_int, default=3,
                 help='untimed runs first, compilation included (default 3)')
  b.add_argument('--runs', type=common.positive_int, default=10,
                 help='timed runs; the median and spread are reported (default 10)')
  b.add_argument('--source', nargs='+', default=None, metavar='VIDEO',
                 help='--what pipeline: one or more videos, timed in one run')
  b.add_argument('--repeats', type=common.positive_int, default=1,
                 help='--what pipeline: rounds of predictor alone then the whole pipeline, '
                 'back to back; medians reported (default 1)')
  b.add_argument('--model', default=None, help='--what pipeline: an export dir, a built-in '
                 'model name (default: real), or a config file (its network untrained: speed '
                 'only, e.g. configs/hvisnet_dla34.py)')
  b.add_argument('--frames', type=common.positive_int, default=200,
                 help='--what pipeline: frames of --source to time (default 200)')
  b.add_argument('--null-network', action='store_true', help='--what pipeline: time only the '
                 'host\'s stages, replaying stored network outputs on one core')
  b.add_argument('--no-torch-compile', action='store_true',
                 help='time PyTorch eagerly instead of through torch.compile')
  b.add_argument('--cpu-devices', type=common.positive_int, default=None, metavar='N',
                 dest='pipeline_cpu_devices', help='--what pipeline on a CPU: N XLA devices, '
                 'as `hvisnet track` uses (default: 2 where 2+ cores are free)')
  b.add_argument('--json', default=None, metavar='FILE',
                 help='also write the results here (checked before the benchmark runs)')
  b.set_defaults(func=run)


def run(args) -> int:
  import importlib.util  # pylint: disable=g-import-not-at-top
  if (args.framework != 'jax' and args.what in ('inference', 'train')
      and importlib.util.find_spec('torch') is None):
    raise ValueError(f'--framework {args.framework} needs PyTorch, which hvisnet does not '
                     'install: pip install torch==2.13.0 (CPU) or a CUDA build from '
                     'pytorch.org; or --framework jax')
  if args.json:
    common.check_writable_file(args.json, '--json')
  if args.what == 'pipeline':           # the devices `hvisnet track` runs on
    from hvisnet_jax.inference import devices  # pylint: disable=g-import-not-at-top
    devices.use_cpu_devices(args.pipeline_cpu_devices)
  from hvisnet_jax.apps import bench  # pylint: disable=g-import-not-at-top
  res = bench.run(args.what, args.framework, args.batch, args.dtype, args.size, args.config,
                  args.warmup, args.runs, source=args.source,
                  compile_torch=not args.no_torch_compile, model=args.model,
                  frames=args.frames, null_network=args.null_network, repeats=args.repeats)
  text = json.dumps(res, indent=2)
  print(text)
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    atomic.write_text(args.json, text)
  return 0
