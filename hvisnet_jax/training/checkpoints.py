"""Checkpoints and the workdir: orbax save/restore on any mesh, the workdir's config
fingerprint (a workdir of another model config is refused) and the one-run-per-workdir
lock."""
from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hvisnet_jax import atomic


class ConfigMismatchError(ValueError):
  pass


def _model_fingerprint(config) -> str:
  return config.model.to_json(sort_keys=True)


def check_workdir_config(config, workdir):
  """Refuses a workdir whose checkpoints were written for another model config."""
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    with open(path) as f:
      saved = ml_collections.ConfigDict(json.load(f))
    if saved.model.to_json(sort_keys=True) != _model_fingerprint(config):
      diffs = _diff(saved.model.to_dict(), config.model.to_dict())
      raise ConfigMismatchError(
          f'{workdir} holds checkpoints of another model config (differences: '
          f'{"; ".join(diffs[:6])}); use a new --workdir or the same config')
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:          # one writer on a shared workdir (multi-host)
    atomic.write_text(path, config.to_json(indent=2, sort_keys=True))


WorkdirBusyError = atomic.FolderBusyError


@contextlib.contextmanager
def workdir_lock(workdir: str):
  """Holds WORKDIR/.lock for one training run; a second run on the workdir stops at once
  (atomic.folder_lock). Local and NFS file systems only; on an object store (gs://...)
  there is no lock and a warning says so. In a multi-process run process 0 holds it for
  all."""
  if '://' in workdir or jax.process_index() != 0:
    if '://' in workdir:
      logging.warning('%s: no workdir lock on an object store; do not start two runs on it',
                      workdir)
    yield
    return
  with atomic.folder_lock(workdir, 'training run', '--workdir'):
    yield


def _diff(a, b, prefix='model'):
  out = []
  for k in sorted(set(a) | set(b)):
    if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
      out += _diff(a[k], b[k], f'{prefix}.{k}')
    elif _norm(a.get(k)) != _norm(b.get(k)):
      out.append(f'{prefix}.{k}: saved {a.get(k)!r}, now {b.get(k)!r}')
  return out


def _norm(v):
  return list(v) if isinstance(v, (list, tuple)) else v


def checkpoint_manager(workdir, tcfg):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), 'checkpoints'),
      options=ocp.CheckpointManagerOptions(max_to_keep=tcfg.keep_checkpoints, create=True))


def save_checkpoint(mngr, state):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  mngr.save(int(state.step), args=ocp.args.StandardSave(state))
  mngr.wait_until_finished()


def restore_checkpoint(mngr, state, sharding=None):
  """Latest checkpoint into `state`'s structure, placed with `sharding` (any mesh size)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  step = mngr.latest_step()
  if step is None:
    return state
  def spec(x):
    sh = sharding if sharding is not None else getattr(x, 'sharding', None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sh)
  abstract = jax.tree.map(spec, state)
  try:
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
  except (ValueError, KeyError) as e:
    try:                                  # written before TrainState lost its empty `extra`
      legacy = _LegacyTrainState(extra={}, **{f: getattr(abstract, f) for f in (
          'step', 'params', 'batch_stats', 'opt_state')})
      old = mngr.restore(step, args=ocp.args.StandardRestore(legacy))
      return type(state)(step=old.step, params=old.params, batch_stats=old.batch_stats,
                         opt_state=old.opt_state)
    except (ValueError, KeyError):
      pass
    raise ConfigMismatchError(f'checkpoint at step {step} in {mngr.directory} does not fit this '
                              f'config: {e}') from e


@flax.struct.dataclass
class _LegacyTrainState:
  """The checkpoint layout up to 2026-11: TrainState with an (always empty) `extra`."""
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  extra: Any
  opt_state: Any
