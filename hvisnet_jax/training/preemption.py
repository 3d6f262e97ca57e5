"""Preemption: a spot or preemptible VM gets SIGTERM shortly before it stops.

One process: SIGTERM sets a flag that the training loop reads after each step. Several
processes (jax.distributed): JAX's preemption service has its own SIGTERM notifier; the
notice of any one host reaches all of them, and `reached_preemption_sync_point(step)`
turns true on every host at the same step, so they save one checkpoint together. Either
way the trainer saves at that step and raises `Preempted`; the next launch resumes there.
"""
from __future__ import annotations

import signal
import threading

import jax


class Preempted(RuntimeError):
  """Training stopped on a preemption notice after saving a checkpoint at `step`."""

  def __init__(self, step: int, directory: str):
    super().__init__(f'preempted (SIGTERM) at step {step}: checkpoint saved in {directory}; '
                     'run the same command again to resume from it')
    self.step = step


class Watcher:
  """Context manager; `reached(step)` after each step says whether to save and stop."""

  def __init__(self):
    self._notice = threading.Event()
    self._old = None

  def __enter__(self):
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._old = signal.signal(signal.SIGTERM, lambda *_: self._notice.set())
    return self

  def __exit__(self, *exc):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)
    return False

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return bool(multihost_utils.reached_preemption_sync_point(step))
    return self._notice.is_set()
