"""Variables on disk: an orbax checkpoint directory (what exports and `convert-torch` write)."""
from __future__ import annotations

import os
from typing import Any, Dict

import jax
import numpy as np


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
