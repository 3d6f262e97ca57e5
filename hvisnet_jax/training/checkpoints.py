"""Checkpoints and the workdir: orbax save/restore on any mesh, the workdir's config
fingerprint (a workdir of another model config is refused) and the one-run-per-workdir
lock. The workdir may be local or an object store (gs://...; hvisnet_jax/storage.py)."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hvisnet_jax import atomic
from hvisnet_jax import storage


class ConfigMismatchError(ValueError):
  pass


def _model_fingerprint(config) -> str:
  return config.model.to_json(sort_keys=True)


# What `hvisnet train` writes in a workdir (and TensorBoard's events.out.tfevents.* files).
TRAIN_OUTPUTS = ('checkpoints', 'config.json', 'metrics.jsonl', 'export', 'data', 'RUNNING')


def _train_output(name: str) -> bool:
  return name in TRAIN_OUTPUTS or name.startswith('events.out.tfevents') or name.startswith('.')


def check_workdir(workdir: str) -> None:
  """A workdir is new, empty or one `hvisnet train` made; anything else is refused by name
  before the model is built (an export would be trained into, a user's folder filled)."""
  if not storage.exists(workdir):
    return
  if not storage.isdir(workdir):
    raise FileExistsError(f'--workdir {workdir}: exists and is not a folder')
  entries = storage.listdir(workdir)
  if 'variables' in entries and 'config.json' in entries:
    raise FileExistsError(f'--workdir {workdir}: is an hvisnet export (config.json + '
                          'variables/), not a training workdir; train into a new folder '
                          f'(--config.train.init_from={workdir} starts from its weights)')
  foreign = sorted(e for e in entries if not _train_output(e))
  if foreign:
    raise FileExistsError(f'--workdir {workdir}: holds files that hvisnet train did not write '
                          f'({", ".join(foreign[:5])}); a workdir is new, empty or one that '
                          'train made')
  if 'config.json' in entries:
    path = storage.join(workdir, 'config.json')
    try:
      saved = json.loads(storage.read_text(path))
    except ValueError:
      saved = None
    if not (isinstance(saved, dict) and isinstance(saved.get('model'), dict)
            and isinstance(saved.get('train'), dict)):
      raise ValueError(f'{path}: not the config hvisnet train writes (a JSON object with '
                       '"model" and "train"); a workdir is new, empty or one that train made')


def remove_unfinished_start(workdir: str, wrote_config: bool) -> None:
  """After a run that ended before its first checkpoint: what it wrote goes (config.json
  when this run wrote it, metrics, events, an empty checkpoints/), so nothing is left that
  looks like a started run."""
  if storage.is_remote(workdir) or not os.path.isdir(workdir):
    return
  ckpt = os.path.join(workdir, 'checkpoints')
  if os.path.isdir(ckpt) and any(e.isdigit() for e in os.listdir(ckpt)):
    return                                  # a checkpoint exists: the run resumes from it
  if os.path.isdir(ckpt):
    shutil.rmtree(ckpt, ignore_errors=True)
  for e in os.listdir(workdir):
    if (e == 'config.json' and wrote_config) or e == 'metrics.jsonl' or e.startswith(
        'events.out.tfevents'):
      os.remove(os.path.join(workdir, e))


def check_workdir_config(config, workdir, num_ids: int = None):
  """Refuses a workdir whose checkpoints were written for another model config; writes
  the config (with `num_ids`, the identity classifier's size, which restoring needs)."""
  path = storage.join(workdir, 'config.json')
  if storage.exists(path):
    saved = ml_collections.ConfigDict(json.loads(storage.read_text(path)))
    if saved.model.to_json(sort_keys=True) != _model_fingerprint(config):
      diffs = _diff(saved.model.to_dict(), config.model.to_dict())
      raise ConfigMismatchError(
          f'{workdir} holds checkpoints of another model config (differences: '
          f'{"; ".join(diffs[:6])}); use a new --workdir or the same config')
  storage.makedirs(workdir)
  if jax.process_index() == 0:          # one writer on a shared workdir (multi-host)
    saved = json.loads(config.to_json(sort_keys=True))
    if num_ids is not None:
      saved['num_ids'] = int(num_ids)
    storage.write_text(path, json.dumps(saved, indent=2, sort_keys=True))


WorkdirBusyError = atomic.FolderBusyError


@contextlib.contextmanager
def workdir_lock(workdir: str):
  """Holds the workdir for one training run; a second run on it stops at once.

  Local (and NFS) folders: WORKDIR/.lock, an flock the kernel releases however its holder
  ends (atomic.folder_lock). An object store has no lock: the run writes a marker object,
  WORKDIR/RUNNING, first and deletes it when it ends (preemption and Ctrl-C included); a
  run that finds one stops, naming its holder. Two runs started within the same second
  can both miss each other's marker (the store has no compare-and-set through this
  client); a run killed with SIGKILL leaves its marker, which the next run on the same
  host takes over when that process is gone, and elsewhere asks to delete. In a
  multi-process run process 0 holds it for all."""
  if jax.process_index() != 0:
    yield
    return
  if not storage.is_remote(workdir):
    with atomic.folder_lock(workdir, 'training run', '--workdir'):
      yield
    return
  import socket  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  marker = storage.join(workdir, RUNNING_MARKER)
  host = socket.gethostname()
  if storage.exists(marker):
    holder = storage.read_text(marker).strip()
    fields = dict(part.split('=', 1) for part in holder.split() if '=' in part)
    if not (fields.get('host') == host and not _pid_alive(fields.get('pid', ''))):
      raise WorkdirBusyError(
          f'{workdir} is in use by another training run ({holder}); wait for it to finish, '
          f'stop it, or choose another --workdir. If no run is using it (one killed '
          f'with SIGKILL on another machine), delete {marker}')
    logging.warning('%s: taking over the marker of a run that ended without removing it (%s)',
                    workdir, holder)
  storage.write_text(marker, f'pid={os.getpid()} host={host} '
                             f'since={time.strftime("%Y-%m-%dT%H:%M:%S")}\n')
  try:
    yield
  finally:
    storage.remove(marker)


RUNNING_MARKER = 'RUNNING'


def _pid_alive(pid: str) -> bool:
  try:
    os.kill(int(pid), 0)
  except (ValueError, ProcessLookupError):
    return False
  except PermissionError:
    return True
  return True


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
      storage.join(workdir, 'checkpoints'),
      options=ocp.CheckpointManagerOptions(max_to_keep=tcfg.keep_checkpoints, create=True))


def save_checkpoint(mngr, state):
  """Saves and waits. A save that fails (a full disk) leaves no temporary folder behind,
  and the error names the workdir and the step training can resume from."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  directory = str(mngr.directory)
  try:
    mngr.save(int(state.step), args=ocp.args.StandardSave(state))
    mngr.wait_until_finished()
  except (OSError, ValueError, RuntimeError) as e:
    if not storage.is_remote(directory) and os.path.isdir(directory):
      for entry in os.listdir(directory):
        if 'tmp' in entry and not entry.isdigit():        # orbax's unfinished save
          shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
    raise OSError(getattr(e, 'errno', None) or 0,
                  f'{directory}: the checkpoint of step {int(state.step)} could not be '
                  f'written ({getattr(e, "strerror", None) or e}); its partial files were '
                  f'removed. Free space or fix permissions, then run the same command to '
                  f'resume from step {mngr.latest_step() or 0}') from None


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
  """The checkpoint layout with an (always empty) `extra` field in TrainState, still read."""
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  extra: Any
  opt_state: Any
