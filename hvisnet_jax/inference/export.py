"""Variables on disk: an orbax checkpoint directory (what exports and `convert-torch` write)."""
from __future__ import annotations

import os
from typing import Any, Dict

import jax
import numpy as np


def save_variables(path: str, variables: Dict[str, Any]) -> None:
  """Writes variables as an orbax checkpoint directory (written to a temp dir, then renamed)."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, jax.tree.map(np.asarray, variables), force=True)
    ckptr.wait_until_finished()


def load_variables(path: str) -> Dict[str, Any]:
  """Reads variables written by `save_variables`."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f'{path}: no such checkpoint directory')
  with ocp.StandardCheckpointer() as ckptr:
    return ckptr.restore(path)
