"""Network cost and speed at one frame size: parameters, XLA FLOPs, compile time, latency.

  python benchmarks/model_benchmark.py --config configs/hvisnet_dla34.py --size 512 \
      --batch 1 --dtype float32 --out benchmarks/results/model_cpu_512.json

Latency is the median of --runs timed calls after --warmup calls, each waited on with
block_until_ready. Two functions are timed: the network alone (`network`) and the full
per-frame predictor with post-processing and pasting (`predictor`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from hvisnet_jax import config_defaults, model, predictor


def _time(fn, args, warmup, runs):
  for _ in range(warmup):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(runs):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return times


def _flops(compiled):
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get('flops', float('nan')))


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--config', default='configs/hvisnet_dla34.py')
  p.add_argument('--size', type=int, default=512)
  p.add_argument('--batch', type=int, default=1)
  p.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  p.add_argument('--warmup', type=int, default=3)
  p.add_argument('--runs', type=int, default=10)
  p.add_argument('--out', required=True)
  a = p.parse_args()

  cfg = config_defaults.load_config(a.config)
  cfg.model.dtype = a.dtype
  cfg.inference.update(min_size=a.size, max_size=a.size)
  variables = model.init_variables(cfg.model, jax.random.PRNGKey(0))
  n_params = sum(x.size for x in jax.tree.leaves(variables['params']))
  images = jnp.asarray(np.random.default_rng(0).integers(
      0, 256, (a.batch, a.size, a.size, 3)).astype(np.float32))
  net = jax.jit(model.HVISNet(cfg.model).apply)

  t = time.perf_counter()
  compiled = net.lower(variables, images).compile()
  net_compile_s = time.perf_counter() - t
  net_times = _time(compiled, (variables, images), a.warmup, a.runs)

  # The predictor on the same frame size, threshold 0 so NMS, blender and paste do full work.
  cfg.inference.score_thresh = 0.0
  pred = predictor.Predictor(cfg, variables)
  frames = jnp.asarray(images.astype(jnp.uint8))
  t = time.perf_counter()
  pred_compiled = pred._run.lower(pred, variables, frames).compile()  # pylint: disable=protected-access
  pred_compile_s = time.perf_counter() - t
  pred_times = _time(pred_compiled, (variables, frames), a.warmup, a.runs)

  dev = jax.devices()[0]
  ms = lambda ts: 1e3 * float(np.median(ts))
  result = dict(
      config=a.config, size=a.size, batch=a.batch, dtype=a.dtype,
      device=dev.device_kind, platform=dev.platform, cpu_count=os.cpu_count(),
      host=platform.processor() or platform.machine(),
      versions=dict(jax=jax.__version__, python=platform.python_version()),
      parameters=int(n_params),
      network=dict(flops_per_frame=_flops(compiled) / a.batch, compile_s=net_compile_s,
                   median_ms=ms(net_times), frames_per_s=a.batch / np.median(net_times),
                   runs=a.runs, warmup=a.warmup),
      predictor=dict(flops_per_frame=_flops(pred_compiled) / a.batch,
                     compile_s=pred_compile_s, median_ms=ms(pred_times),
                     frames_per_s=a.batch / np.median(pred_times),
                     max_detections=cfg.inference.max_detections))
  os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
  tmp = a.out + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(result, f, indent=2)
  os.replace(tmp, a.out)
  print(json.dumps(result, indent=2))


if __name__ == '__main__':
  main()
