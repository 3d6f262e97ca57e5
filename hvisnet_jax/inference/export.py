"""Models on disk: variables as an orbax checkpoint directory (what exports and
`convert-torch` write), and the export folder (config.json + variables/) a Predictor
writes and loading.py reads back; "export" means that folder everywhere."""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np

from hvisnet_jax import atomic
from hvisnet_jax import storage


def save_variables(path: str, variables: Dict[str, Any]) -> None:
  """Writes variables as an orbax checkpoint directory (written to a temp dir, then renamed).

  `path` must be new, empty or an earlier orbax checkpoint (replaced); anything else is
  refused rather than deleted.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  if os.path.lexists(path) and not (
      os.path.isdir(path) and not os.path.islink(path) and
      (not os.listdir(path) or {'_CHECKPOINT_METADATA', '_METADATA'} & set(os.listdir(path)))):
    raise FileExistsError(f'{path}: exists and is not an orbax checkpoint; choose another '
                          'output path or empty this one')
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, jax.tree.map(np.asarray, variables), force=True)
    ckptr.wait_until_finished()


def load_variables(path: str) -> Dict[str, Any]:
  """Reads variables written by `save_variables`."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f'{path}: no such checkpoint directory')
  try:
    with ocp.StandardCheckpointer() as ckptr:
      return ckptr.restore(path)
  except Exception as e:  # pylint: disable=broad-except
    _drain_late_reads()
    first = str(e).strip().splitlines()[0] if str(e).strip() else ''
    raise DamagedCheckpointError(
        f'{path}: cannot read this checkpoint ({type(e).__name__}: {first[:300]}); its files '
        'are damaged or incomplete. Export it again (hvisnet export WORKDIR --out DIR).'
    ) from None


class DamagedCheckpointError(ValueError):
  pass


def _drain_late_reads(quiet_s: float = 0.2, max_s: float = 3.0) -> None:
  """Holds back the aftermath of a failed orbax restore.

  The failed read aborts orbax's event loop while its other reads are in flight; each of
  them then prints an 'Event loop is closed' traceback to sys.stderr (or the unraisable
  hook) as it completes (hundreds for one damaged file). They say nothing about the cause, so they are caught
  here until the stream has been quiet for `quiet_s`.
  """
  import io  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  old, sys.stderr = sys.stderr, io.StringIO()
  old_hook, sys.unraisablehook = sys.unraisablehook, lambda _: None
  try:
    start = last_change = time.monotonic()
    seen = 0
    while time.monotonic() - last_change < quiet_s and time.monotonic() - start < max_s:
      time.sleep(0.05)
      if sys.stderr.tell() != seen:
        seen, last_change = sys.stderr.tell(), time.monotonic()
  finally:
    sys.stderr, sys.unraisablehook = old, old_hook


# ------------------------------------------------------------ an export folder

def _replaceable_export(path: str) -> bool:
  """An empty folder, or one an export wrote (config.json + variables/ [+ train_log.jsonl])."""
  if storage.is_remote(path):
    entries = {f.split('/')[0] for f in storage.walk(path)}
  elif not os.path.isdir(path) or os.path.islink(path):
    return False
  else:
    entries = set(os.listdir(path))
  return not entries or ('config.json' in entries and
                         entries <= {'config.json', 'variables', 'train_log.jsonl'})


def write_export(predictor, directory: str, train_log: str = None,
                 dtype: str = 'float32') -> None:
  """Writes config.json + variables/ (what from_export reads), whole or not at all.

  dtype 'bfloat16' halves the files (from_export casts back to float32). `directory`
  must be new, empty or an earlier export, which is replaced whole; a folder holding
  anything else is refused, and nothing this call did not write is deleted.

  A remote `directory` (gs://...) is written locally, then uploaded with config.json last;
  an earlier export there loses its config.json first, so no half-replaced export loads.
  """
  directory = storage.location(directory)
  if storage.exists(directory) and not _replaceable_export(directory):
    raise FileExistsError(
        f'{directory}: exists and is not an hvisnet export (an export holds only config.json, '
        'variables/ and train_log.jsonl); choose another output folder or empty this one')
  if storage.is_remote(directory) or (train_log and storage.is_remote(train_log)):
    with tempfile.TemporaryDirectory(prefix='hvisnet-export-') as tmp:
      log = None
      if train_log and storage.exists(train_log):
        log = os.path.join(tmp, 'train_log.jsonl')
        with open(log, 'w') as f:
          f.write(storage.read_text(train_log))
      local = directory if not storage.is_remote(directory) else os.path.join(tmp, 'export')
      write_export(predictor, local, train_log=log, dtype=dtype)
      if storage.is_remote(directory):
        earlier = storage.walk(directory)
        storage.remove_files(directory, [f for f in earlier if f == 'config.json'])
        storage.remove_files(directory, [f for f in earlier if f != 'config.json'])
        storage.upload_tree(local, directory)
    return
  parent, name = os.path.split(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = atomic.staging_dir(parent, f'.{name}.partial-')
  try:
    with atomic.errors_name(directory):
      _write_export(predictor, tmp, directory, parent, name, train_log, dtype)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise

def _write_export(predictor, tmp, directory, parent, name, train_log, dtype):
  """Fills the staging folder `tmp`, then swaps it in for `directory` (an earlier export
  is set aside first and removed once the new one is in place)."""
  variables = predictor.variables
  if dtype != 'float32':
    variables = jax.tree.map(lambda x: np.asarray(x).astype(jnp.dtype(dtype))
                             if jnp.issubdtype(x.dtype, jnp.floating) else x, variables)
  save_variables(os.path.join(tmp, 'variables'), variables)
  with open(os.path.join(tmp, 'config.json'), 'w') as f:
    f.write(predictor.config.to_json(indent=2, sort_keys=True))
  if train_log:
    shutil.copy(train_log, os.path.join(tmp, 'train_log.jsonl'))
  old = None
  if os.path.lexists(directory):       # an earlier export (checked above): set it aside
    old = tempfile.mkdtemp(dir=parent, prefix=f'.{name}.old-')
    os.replace(directory, os.path.join(old, name))
  os.replace(tmp, directory)
  if old:
    shutil.rmtree(old, ignore_errors=True)
