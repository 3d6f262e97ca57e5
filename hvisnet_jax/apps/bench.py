"""`hvisnet bench`: latency and throughput of inference, training, tracker and pipeline.

Every figure is the median of --runs timed calls after --warmup calls, waited on
(block_until_ready / torch.cuda.synchronize). The JSON records the device, versions and
settings, and for the network the FLOPs from XLA's cost analysis divided by the time,
against a matmul rate measured on the same device (the practical ceiling).
"""
from __future__ import annotations

import os
import platform
import time
from typing import Dict, List

import numpy as np

from hvisnet_jax import provenance


def _median_time(fn, warmup: int, runs: int, sync=lambda x: x) -> List[float]:
  for _ in range(warmup):
    sync(fn())
  out = []
  for _ in range(runs):
    t = time.perf_counter()
    sync(fn())
    out.append(time.perf_counter() - t)
  return out


def _summary(times, batch):
  med = float(np.median(times))
  return dict(median_ms=1e3 * med, p90_ms=1e3 * float(np.percentile(times, 90)),
              images_per_s=batch / med, runs=len(times))


def jax_matmul_rate(dtype: str, n: int = 0) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  # 2048 keeps a CPU busy; a GPU needs 8192 to come near its rate.
  n = n or (2048 if jax.devices()[0].platform == 'cpu' else 8192)
  dt = jnp.bfloat16 if dtype == 'bfloat16' else jnp.float32
  a = jnp.ones((n, n), dt)
  f = jax.jit(lambda x: x @ x)
  times = _median_time(lambda: f(a), 2, 5, jax.block_until_ready)
  return 2 * n ** 3 / float(np.median(times))


def _flops_of(stage) -> float:
  cost = stage.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float((cost or {}).get('flops', float('nan')))


def _program_flops(fn, *args) -> float:
  """FLOPs of `fn` as written (multiply-add = 2), counted by XLA for the CPU.

  Compiled for a GPU, convolutions become cuDNN calls that XLA's cost analysis no longer
  counts (DLA-34 at 512x512 reads 0.7 G instead of 125 G), and a GPU's lowered module has
  no cost analysis at all; the count does not depend on the device, so the CPU's is used.
  """
  import jax  # pylint: disable=g-import-not-at-top
  cpu = jax.devices('cpu')[0]
  lowered = jax.jit(fn).lower(*jax.device_put(args, cpu))
  flops = _flops_of(lowered)
  return flops if np.isfinite(flops) else _flops_of(lowered.compile())


def bench_jax_inference(config, batch, size, dtype, warmup, runs) -> Dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.model import hvisnet as model  # pylint: disable=g-import-not-at-top
  cfg = config.model
  cfg.dtype = dtype
  variables = model.init_variables(cfg, jax.random.PRNGKey(0))
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)), jnp.float32)
  t = time.perf_counter()
  fn = jax.jit(model.HVISNet(cfg).apply).lower(variables, x).compile()
  compile_s = time.perf_counter() - t
  flops = _program_flops(model.HVISNet(cfg).apply, variables, x)
  times = _median_time(lambda: fn(variables, x), warmup, runs, jax.block_until_ready)
  res = dict(framework='jax', compile_s=compile_s, flops_per_call=flops,
             parameters=int(sum(v.size for v in jax.tree.leaves(variables['params']))),
             **_summary(times, batch))
  rate = jax_matmul_rate(dtype)
  res.update(achieved_flops_per_s=flops / (res['median_ms'] / 1e3), matmul_flops_per_s=rate)
  res['fraction_of_matmul_rate'] = res['achieved_flops_per_s'] / rate
  return res


def bench_torch_inference(config, batch, size, dtype, warmup, runs, compiled: bool) -> Dict:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ValueError('--framework torch needs PyTorch, which hvisnet does not install: '
                     'pip install torch==2.13.0 (CPU) or a CUDA build from pytorch.org') from None
  from hvisnet_jax.interop import torch_model  # pylint: disable=g-import-not-at-top
  dev = 'cuda' if torch.cuda.is_available() else 'cpu'
  tdt = torch.bfloat16 if dtype == 'bfloat16' else torch.float32
  net = torch_model.HVISNet(config.model).eval().to(dev)
  x = torch.rand(batch, 3, size, size, device=dev) * 255
  sync = (lambda r: torch.cuda.synchronize()) if dev == 'cuda' else (lambda r: r)
  fn = net
  compile_s = 0.0
  if compiled:
    fn = torch.compile(net)
  def call():
    with torch.inference_mode(), torch.autocast(dev, dtype=tdt, enabled=tdt != torch.float32):
      return fn(x)
  if compiled:
    t = time.perf_counter()
    sync(call())
    compile_s = time.perf_counter() - t
  times = _median_time(call, warmup, runs, sync)
  return dict(framework='torch.compile' if compiled else 'torch-eager', compile_s=compile_s,
              torch=torch.__version__, threads=torch.get_num_threads(), **_summary(times, batch))


def bench_jax_train(config, batch, dtype, warmup, runs) -> Dict:
  import jax  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.training import sharding  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.training import trainer as train
  config.model.dtype = dtype
  config.train.batch_size = batch
  from hvisnet_jax import main  # pylint: disable=g-import-not-at-top
  src = main.make_source(config)
  mesh = sharding.make_mesh(config.train.mesh_data)
  sharding.check_batch(batch, mesh)
  state = jax.device_put(train.create_train_state(config, jax.random.PRNGKey(0), src.num_ids,
                                                  src.padded), sharding.replicated(mesh))
  step = jax.jit(train.make_train_step(config), donate_argnums=(0,))
  b = sharding.global_batch_array(src.batch(0, batch, 0), mesh)
  key = jax.random.PRNGKey(0)
  holder = {'s': state}
  def call():
    holder['s'], m = step(holder['s'], b, key)
    return m['loss']
  t = time.perf_counter()
  jax.block_until_ready(call())
  compile_s = time.perf_counter() - t
  times = _median_time(call, warmup, runs, jax.block_until_ready)
  return dict(framework='jax', compile_s=compile_s, image_hw=list(src.padded),
              devices=int(mesh.devices.size), **_summary(times, batch))


def bench_tracker(n_people: int, frames: int, warmup: int, seed: int = 0, dim: int = 256):
  """Tracker.update cost with n_people walking (256-d embeddings, 10% missed each frame)."""
  from hvisnet_jax.tracking import tracker as tracker_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  pos = rng.uniform(0, 2000, (n_people, 2))
  vel = rng.uniform(-3, 3, (n_people, 2))
  size = rng.uniform(30, 120, (n_people, 1)) * np.array([[0.4, 1.0]])
  emb = rng.normal(size=(n_people, dim))
  emb /= np.linalg.norm(emb, axis=1, keepdims=True)
  trk = tracker_lib.Tracker()
  times = []
  for t in range(warmup + frames):
    p = pos + vel * t
    boxes = np.c_[p, p + size] + rng.normal(0, 1, (n_people, 4))
    keep = rng.uniform(size=n_people) > 0.1
    e = emb[keep] + 0.05 * rng.normal(size=(keep.sum(), dim))
    start = time.perf_counter()
    trk.update(boxes[keep], np.full(keep.sum(), 0.9), e)
    if t >= warmup:
      times.append(time.perf_counter() - start)
  return dict(people=n_people, median_ms=1e3 * float(np.median(times)),
              p95_ms=1e3 * float(np.percentile(times, 95)), frames=frames)


def predictor_share(pred, source: str, fps: float, warmup: int, runs: int) -> Dict:
  """The predictor's time per frame (resize, network, mask pasting; all devices busy) on
  the video's first frame, and its share of the end-to-end time: the rest is decoding,
  tracking and the loop around them."""
  import cv2  # pylint: disable=g-import-not-at-top
  cap = cv2.VideoCapture(source)
  ok, bgr = cap.read()
  cap.release()
  if not ok:
    raise ValueError(f'{source}: cannot read its first frame')
  batch = np.stack([cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)] * pred.batch_size)
  times = _median_time(lambda: pred.predict_batch(batch), warmup, runs)
  net_s = float(np.median(times)) / pred.batch_size
  return dict(predict_ms=1e3 * net_s, predict_share=min(1.0, net_s * fps),
              devices=pred.batch_size)


def run(what: str, framework: str, batch: int, dtype: str, size: int, config_spec: str,
        warmup: int, runs: int, source: str = None, compile_torch: bool = True) -> Dict:
  import jax  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
  dev = jax.devices()[0]
  meta = dict(what=what, batch=batch, dtype=dtype, size=size, config=config_spec,
              device=dev.device_kind, platform=dev.platform, devices=len(jax.devices()),
              cpu_count=os.cpu_count(), host=platform.machine(),
              versions=dict(jax=jax.__version__, python=platform.python_version()),
              time=time.strftime('%Y-%m-%dT%H:%M:%S'))
  meta = provenance.stamp(meta)
  results = []
  if what == 'inference':
    if framework in ('jax', 'both'):
      results.append(bench_jax_inference(config_defaults.load_config(config_spec), batch, size,
                                         dtype, warmup, runs))
    if framework in ('torch', 'both'):
      results.append(bench_torch_inference(config_defaults.load_config(config_spec), batch,
                                           size, dtype, warmup, runs, compiled=False))
      if compile_torch:
        results.append(bench_torch_inference(config_defaults.load_config(config_spec), batch,
                                             size, dtype, warmup, runs, compiled=True))
  elif what == 'train':
    if framework not in ('jax', 'both'):
      raise ValueError('training is benchmarked for jax only')
    results.append(bench_jax_train(config_defaults.load_config(config_spec), batch, dtype,
                                   warmup, runs))
  elif what == 'tracker':
    results = [bench_tracker(n, runs, warmup) for n in (10, 50, 200)]
  elif what == 'pipeline':
    from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
    from hvisnet_jax.inference import predictor
    if not source:
      raise ValueError('--what pipeline needs --source VIDEO')
    pred = predictor.Predictor.from_export()
    pred.config.inference.update(min_size=size, max_size=size * 2)
    _, stats = app.track_source(source, pred, progress=False)
    row = dict(framework='jax', source=source,
               **{k: v for k, v in stats.items() if k != 'failed_frames'})
    row.update(predictor_share(pred, source, stats['fps'], warmup, runs))
    results.append(row)
  else:
    raise ValueError(f'--what must be inference, train, tracker or pipeline; got {what!r}')
  return dict(meta, results=results)
