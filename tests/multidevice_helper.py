"""Run in a subprocess by test_sharding.py (device count must be set before jax starts).

  python tests/multidevice_helper.py step OUT.npz          # one step: 1 device vs the mesh
  python tests/multidevice_helper.py train WORKDIR STEPS [STOP_AFTER]
  python tests/multidevice_helper.py dump WORKDIR OUT.npz  # latest checkpoint's params
  python tests/multidevice_helper.py train_dump WORKDIR STEPS OUT.npz
  python tests/multidevice_helper.py predict FRAMES_DIR OUT.npz  # all devices vs the first
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top,wrong-import-position
from hvisnet_jax.training import sharding
from hvisnet_jax.synthetic import source as synthetic_source
from hvisnet_jax.training import trainer as train
from hvisnet_jax.training import checkpoints
from hvisnet_jax.training import preemption
from hvisnet_jax.model import hvisnet as model_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config(steps=4):
  cfg = config_defaults.load_config(os.path.join(REPO, 'configs', 'hvisnet_tiny.py'))
  cfg.data.update(height=64, width=96, videos=2, frames=6, max_instances=6)
  cfg.loss.update(mask_samples=4, id_negatives=4)
  cfg.train.update(steps=steps, batch_size=8, optimizer='sgd', lr=0.01, warmup_steps=1,
                   warmup_factor=1.0, log_every=2, checkpoint_every=2, grad_clip=0.0)
  return cfg


def source(cfg):
  d = cfg.data
  return synthetic_source.SyntheticSource(d.preset, d.videos, d.frames, d.height, d.width,
                                          d.seed, d.max_instances)


def flat(tree):
  return {jax.tree_util.keystr(k): np.asarray(v)
          for k, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def one_step(out):
  cfg = config()
  src = source(cfg)
  batch_np = src.batch(0, 8, 0)
  state0 = train.create_train_state(cfg, jax.random.PRNGKey(0), src.num_ids, src.padded)
  step = jax.jit(train.make_train_step(cfg))
  key = jax.random.PRNGKey(5)
  # Single device: everything on device 0.
  dev0 = jax.devices()[0]
  s1, m1 = step(jax.device_put(state0, dev0), jax.device_put(batch_np, dev0), key)
  # Mesh of all devices: replicated state, batch split along `data`.
  mesh = sharding.make_mesh(-1)
  s8, m8 = step(jax.device_put(state0, sharding.replicated(mesh)),
                sharding.global_batch_array(batch_np, mesh),
                jax.device_put(key, sharding.replicated(mesh)))
  a, b = flat(s1.params), flat(s8.params)
  bs_a, bs_b = flat(s1.batch_stats), flat(s8.batch_stats)
  p0 = flat(state0.params)
  np.savez(out, devices=len(jax.devices()), loss1=float(m1['loss']), loss8=float(m8['loss']),
           **{'p0' + k: v for k, v in p0.items()},
           **{'p1' + k: v for k, v in a.items()}, **{'p8' + k: v for k, v in b.items()},
           **{'b1' + k: v for k, v in bs_a.items()}, **{'b8' + k: v for k, v in bs_b.items()},
           batch_sharded=len(sharding.global_batch_array(batch_np, mesh)['images'].sharding
                             .device_set))


def run_train(workdir, steps, stop_after=None):
  cfg = config(steps)
  train.train_and_evaluate(cfg, workdir, source=source(cfg),
                           stop_after=None if stop_after is None else int(stop_after))


def dump(workdir, out):
  cfg = config()
  src = source(cfg)
  state = train.create_train_state(cfg, jax.random.PRNGKey(0), src.num_ids, src.padded)
  mesh = sharding.make_mesh(-1)
  state = checkpoints.restore_checkpoint(checkpoints.checkpoint_manager(workdir, cfg.train),
                                   jax.device_put(state, sharding.replicated(mesh)),
                                   sharding.replicated(mesh))
  np.savez(out, step=int(state.step), devices=len(jax.devices()), **flat(state.params))


def multihost(coordinator, num_processes, process_id, workdir, steps, out, late_s='0'):
  """One of several processes of a multi-host run on this machine (CPU, gloo collectives).

  `late_s` delays this process before training, as a slow host would be.
  """
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator, int(num_processes), int(process_id))
  assert jax.process_count() == int(num_processes)
  time.sleep(float(late_s))
  try:
    run_train(workdir, int(steps))
  except preemption.Preempted as e:      # as `hvisnet train` does: one line, exit 143
    print(f'process {process_id}: {e}', file=sys.stderr)
    sys.exit(143)
  cfg = config()
  src = source(cfg)
  mesh = sharding.make_mesh(-1)
  init = train.create_train_state(cfg, jax.random.PRNGKey(0), src.num_ids, src.padded)
  state = checkpoints.restore_checkpoint(checkpoints.checkpoint_manager(workdir, cfg.train),
                                   jax.device_put(init, sharding.replicated(mesh)),
                                   sharding.replicated(mesh))
  params = flat(jax.tree.map(lambda x: x.addressable_data(0), state.params))
  np.savez(out, step=int(state.step), devices=len(jax.devices()),
           local_devices=len(jax.local_devices()), **params,
           **{'init' + k: v for k, v in flat(init.params).items()})


def predict(frames_dir, out):
  """The tiny detecting predictor on every device vs on the first one: a batch of 3 (padded
  to the device count) and `track_source` over a folder of frames."""
  import cv2  # pylint: disable=g-import-not-at-top
  import conftest  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.tracking import tracker as tracker_lib  # pylint: disable=g-import-not-at-top
  cfg = conftest.tiny_config(score_thresh=0.0, min_visible_fraction=0.0)
  variables = conftest.detecting_variables(
      model_lib.init_variables(cfg.model, jax.random.PRNGKey(0)))
  preds = {'all': predictor.Predictor(cfg, variables),
           'one': predictor.Predictor(cfg, variables, devices=jax.devices()[:1])}
  frames = np.stack([cv2.cvtColor(cv2.imread(os.path.join(frames_dir, f)), cv2.COLOR_BGR2RGB)
                     for f in sorted(os.listdir(frames_dir))[:3]])
  res = dict(devices=len(jax.devices()), batch_size=preds['all'].batch_size)
  for name, p in preds.items():
    for k, v in p.predict_batch(frames).items():
      res[f'{name}/{k}'] = v
    tracker = tracker_lib.TrackerConfig(det_thresh=0.0, new_track_thresh=0.0)  # tiny scores
    result, stats = app.track_source(frames_dir, p, tracker, progress=False)
    res[f'{name}/tracks'] = json.dumps(result.ytvis_results())
    res[f'{name}/frames'] = stats['frames']
  np.savez(out, **res)


if __name__ == '__main__':
  cmd = sys.argv[1]
  if cmd == 'step':
    one_step(sys.argv[2])
  elif cmd == 'train':
    run_train(sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
  elif cmd == 'dump':
    dump(sys.argv[2], sys.argv[3])
  elif cmd == 'multihost':               # COORDINATOR NPROC PID WORKDIR STEPS OUT [LATE_S]
    multihost(*sys.argv[2:9])
  elif cmd == 'train_dump':                  # WORKDIR STEPS OUT: train, then dump, one process
    run_train(sys.argv[2], int(sys.argv[3]))
    dump(sys.argv[2], sys.argv[4])
  elif cmd == 'predict':
    predict(sys.argv[2], sys.argv[3])
