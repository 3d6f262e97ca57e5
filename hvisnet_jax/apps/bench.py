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
from typing import Dict, List, Optional

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


PIPELINE_STAGES = ('decode', 'dispatch', 'network', 'readback', 'paste', 'tracker', 'id_map',
                   'rle', 'write')


def _decode_frames(source: str, count: int):
  from hvisnet_jax import video  # pylint: disable=g-import-not-at-top
  reader = video.FrameReader(source, count=count)
  t0 = time.perf_counter()
  try:
    frames = [f for _, f in reader if f is not None]
  finally:
    reader.close()
  return frames, (time.perf_counter() - t0) / max(len(frames), 1)


def _one_core():
  """Pins this process (every thread) to one core for a host-only measurement."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import threadpoolctl  # pylint: disable=g-import-not-at-top

  @contextlib.contextmanager
  def pinned():
    cores = os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else None
    if cores:
      os.sched_setaffinity(0, {min(cores)})
    try:
      with threadpoolctl.threadpool_limits(1):
        yield
    finally:
      if cores:
        os.sched_setaffinity(0, cores)
  return pinned()


def host_stages(pred, raw_outputs, frame_hw, out_dir: str) -> Dict:
  """The host's work per frame after the network, on stored network outputs (a replay:
  no device): mask paste, tracker, identity map, RLE and result files, ms per frame each."""
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.evaluation import results  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.tracking import tracker as tracker_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.tracking import config as tracking_config  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.tracking import masks as masks_lib  # pylint: disable=g-import-not-at-top
  trk = tracker_lib.Tracker(tracking_config.for_model(pred.config))
  files = results.RunFiles(out_dir, 'replay', *frame_hw)
  spent = dict(paste=0.0, tracker=0.0, id_map=0.0, rle=0.0, write=0.0)
  clock = time.perf_counter
  t_all = clock()
  for t, raw in enumerate(raw_outputs):
    t0 = clock()
    out = {k: v[0] for k, v in pred.paste(raw, frame_hw).items()}
    t1 = clock()
    assigned = trk.update(out['boxes'], out['scores'], out['embeddings'], out['valid'])
    t2 = clock()
    masks = app.track_masks(out['label_map'], assigned)    # as track_source does
    t3 = clock()
    files.add(t, masks, {}, {tid: float(out['scores'][d]) for d, tid in assigned.items()})
    t4 = clock()
    masks_lib.track_id_map(out['label_map'], assigned)      # timed alone: --save-video
    t5 = clock()
    for k, a, b in (('paste', t0, t1), ('tracker', t1, t2), ('rle', t2, t3), ('write', t3, t4),
                    ('id_map', t4, t5)):
      spent[k] += b - a
  files.close()
  n = len(raw_outputs)
  wall = clock() - t_all - spent['id_map']    # not part of a frame's work without rendering
  ms = {k: round(1e3 * v / n, 3) for k, v in spent.items()}
  return dict(frames=n, ms=ms, fps=n / wall, people_per_frame=float(np.mean(
      [r['valid'][0].sum() for r in raw_outputs])))


def bench_pipeline(pred, source: str, frames: int, null_network: bool, warmup: int,
                   repeats: int = 1) -> Dict:
  """`hvisnet track`'s stages on the first `frames` frames of a source, ms per frame each,
  beside the end-to-end rate of the real pipeline (track_to_dir, threads and all) and the
  predictor's own rate (resize, network, readback, mask paste; all devices busy).

  repeats: rounds of (predictor alone, then the whole pipeline), back to back; the rates
  are the rounds' medians and the ratio the median of the rounds' own ratios, so a machine
  whose speed drifts between minutes (a shared CPU: 15 to 19 frames/s between two runs
  here) compares the two under the same conditions.
  null_network: only the host's stages, replaying stored network outputs on one core: the
  rate the host could sustain behind an infinitely fast network.
  """
  import tempfile  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  decoded, decode_s = _decode_frames(source, frames)
  hw = decoded[0].shape[:2]
  b = pred.batch_size
  chunks = [np.stack(decoded[i:i + b]) for i in range(0, len(decoded) - b + 1, b)]
  for c in chunks[:max(warmup, 1)]:
    pred.collect(pred.dispatch(c))
  clock = time.perf_counter
  spent = dict(dispatch=0.0, network=0.0, readback=0.0)
  raw = []
  for c in chunks:                              # one chunk at a time: each stage alone
    t0 = clock()
    pending = pred.dispatch(c)
    t1 = clock()
    jax.block_until_ready(pending.outputs)
    t2 = clock()
    out = pred.readback(pending)
    t3 = clock()
    spent['dispatch'] += t1 - t0
    spent['network'] += t2 - t1
    spent['readback'] += t3 - t2
    raw.extend({k: v[i:i + 1] for k, v in out.items()} for i in range(len(c)))
  n = len(raw)
  row = dict(source=source, frames=n, frame_hw=list(hw), devices=b,
             people_per_frame=None, null_network=null_network)
  with tempfile.TemporaryDirectory() as tmp:
    with _one_core():
      host = host_stages(pred, raw, hw, tmp)
  row['people_per_frame'] = host['people_per_frame']
  row['host_only_fps_one_core'] = host['fps']
  ms = dict(decode=1e3 * decode_s, **{k: 1e3 * v / n for k, v in spent.items()}, **host['ms'])
  row['ms_per_frame'] = {k: round(ms[k], 3) for k in PIPELINE_STAGES}
  if null_network:
    return row
  rounds = []
  for _ in range(repeats):
    t0 = clock()
    for c in chunks:
      pred.collect(pred.dispatch(c))
    predictor_fps = n / (clock() - t0)
    with tempfile.TemporaryDirectory() as tmp:
      stats = app.track_to_dir(source, pred, os.path.join(tmp, 'out'), progress=False,
                               max_frames=frames)
    rounds.append(dict(predictor_fps=predictor_fps, end_to_end_fps=stats['fps'],
                       ratio=stats['fps'] / predictor_fps))
  row['predictor_fps'] = float(np.median([r['predictor_fps'] for r in rounds]))
  row['end_to_end_fps'] = float(np.median([r['end_to_end_fps'] for r in rounds]))
  row['end_to_end_over_predictor'] = float(np.median([r['ratio'] for r in rounds]))
  row['rounds'] = rounds
  return row


def run(what: str, framework: str, batch: int, dtype: str, size: int, config_spec: str,
        warmup: int, runs: int, source: str = None, compile_torch: bool = True,
        model: Optional[str] = None, frames: int = 200, null_network: bool = False,
        repeats: int = 1) -> Dict:
  """One benchmark; `source` (--what pipeline) is a video or a list of them, timed one
  after another with the same compiled model."""
  import jax  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
  if size is None and what != 'pipeline':
    size = 512
  dev = jax.devices()[0]
  if what == 'pipeline':                 # the model's own config, not --config
    config_spec = model if model and model.split(':')[0].endswith('.py') else None
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
    from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
    if not source:
      raise ValueError('--what pipeline needs --source VIDEO')
    if model and model.split(':')[0].endswith('.py'):   # a config: its network, untrained
      pred = predictor.Predictor.from_files(model)
    else:
      pred = predictor.Predictor.from_export(model)
    if size:
      pred.config.inference.update(min_size=size, max_size=size * 2)
    for src in ([source] if isinstance(source, str) else source):
      results.append(dict(framework='jax', model=model or 'real', **bench_pipeline(
          pred, src, frames, null_network, warmup, repeats)))
  else:
    raise ValueError(f'--what must be inference, train, tracker or pipeline; got {what!r}')
  return dict(meta, results=results)
