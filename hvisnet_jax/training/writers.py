"""Metric writers: clu's (TensorBoard + console) and metrics.jsonl, which tests, notebooks
and the benchmarks read; a plain fallback where clu cannot import (no TensorFlow)."""
from __future__ import annotations

import json
import logging
import os

import jax


class _FallbackWriter:
  """Console + metrics.jsonl, for machines where clu's writers cannot import (no TF)."""

  def __init__(self, workdir):
    self.path = os.path.join(workdir, 'metrics.jsonl')

  def write_scalars(self, step, scalars):
    with open(self.path, 'a') as f:
      f.write(json.dumps({'step': int(step), **{k: float(v) for k, v in scalars.items()}}) + '\n')
    logging.info('step %d: %s', step, ', '.join(f'{k}={float(v):.4g}' for k, v in
                                                 sorted(scalars.items())))

  def write_hparams(self, hparams):
    pass

  def flush(self):
    pass

  def close(self):
    pass


def make_writer(workdir):
  try:
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    logging.warning('clu metric writers unavailable (%s); writing %s/metrics.jsonl', e, workdir)
    return _FallbackWriter(workdir)
  return metric_writers.MultiWriter([
      metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0),
      _FallbackWriter(workdir) if jax.process_index() == 0 else _NullWriter()])


class _NullWriter(_FallbackWriter):
  def __init__(self):  # pylint: disable=super-init-not-called
    pass

  def write_scalars(self, step, scalars):
    pass
