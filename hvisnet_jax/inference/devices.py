"""The CPU's XLA devices: a host split into N devices runs N frames (or N halves of a
training batch) side by side. Must be set before JAX starts."""
from __future__ import annotations

import logging
import os
from typing import Optional

import jax


def default_cpu_devices() -> int:
  """2 where the process may use 2+ cores: measured on 2 cores only (README, speed)."""
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:           # not on Linux
    cores = os.cpu_count() or 1
  return min(2, cores)


def use_cpu_devices(n: Optional[int] = None) -> None:
  """Splits the host CPU into n XLA devices (default: default_cpu_devices()).

  Must run before JAX executes anything (JAX fixes its devices then); the CLI calls it
  first thing. Accelerator backends are unaffected.
  """
  n = default_cpu_devices() if n is None else n
  if n < 1:
    raise ValueError(f'--cpu-devices must be at least 1, got {n}')
  try:
    jax.config.update('jax_num_cpu_devices', n)
  except RuntimeError as e:        # JAX already started: keep its devices, say so
    logging.warning('could not split the CPU into %d devices: %s', n, e)
