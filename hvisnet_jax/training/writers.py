"""Metric writers: clu's (TensorBoard + console) and metrics.jsonl, which tests, notebooks
and the benchmarks read; a plain fallback where clu cannot import (no TensorFlow).

On an object-store workdir (gs://...) both reach the store through hvisnet_jax/storage.py:
metrics.jsonl is rewritten whole at each log step (an object cannot be appended to), and
clu's TensorBoard events are written to a local staging folder whose files are uploaded
whole at each flush. TensorFlow's own GCS client, which clu's writer would otherwise use,
cannot be pointed at anything but Google's endpoint, so this is also the path the tests
run against a GCS emulator.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import jax

from hvisnet_jax import storage


class _FallbackWriter:
  """Console + metrics.jsonl, for machines where clu's writers cannot import (no TF)."""

  def __init__(self, workdir):
    self.path = storage.join(workdir, 'metrics.jsonl')
    self._remote = storage.is_remote(self.path)
    if self._remote:                       # what a resumed run appends to
      self._lines = (storage.read_text(self.path).splitlines(keepends=True)
                     if storage.exists(self.path) else [])

  def write_scalars(self, step, scalars):
    line = json.dumps({'step': int(step), **{k: float(v) for k, v in scalars.items()}}) + '\n'
    if self._remote:
      self._lines.append(line)
      storage.write_text(self.path, ''.join(self._lines))
    else:
      with open(self.path, 'a') as f:
        f.write(line)
    logging.info('step %d: %s', step, ', '.join(f'{k}={float(v):.4g}' for k, v in
                                                 sorted(scalars.items())))

  def write_hparams(self, hparams):
    pass

  def flush(self):
    pass

  def close(self):
    pass


class _UploadingWriter:
  """A clu writer on a local staging folder whose files are copied to `remote` on flush."""

  def __init__(self, make, remote):
    self._staging = tempfile.mkdtemp(prefix='hvisnet-events-')
    self._remote = remote
    self._writer = make(self._staging)

  def write_scalars(self, step, scalars):
    self._writer.write_scalars(step, scalars)
    self.flush()                           # TensorBoard on the bucket follows the run

  def write_hparams(self, hparams):
    self._writer.write_hparams(hparams)

  def flush(self):
    self._writer.flush()
    storage.upload_tree(self._staging, self._remote, last=())

  def close(self):
    try:
      self.flush()
      self._writer.close()
    finally:
      shutil.rmtree(self._staging, ignore_errors=True)


def make_writer(workdir):
  try:
    from hvisnet_jax import logs  # pylint: disable=g-import-not-at-top
    logs.import_tensorflow_quietly()
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    logging.warning('clu metric writers unavailable (%s); writing %s/metrics.jsonl', e, workdir)
    return _FallbackWriter(workdir)
  if jax.process_index() > 0:
    return metric_writers.create_default_writer(workdir, just_logging=True)
  if storage.is_remote(workdir):
    events = _UploadingWriter(metric_writers.create_default_writer, storage.location(workdir))
  else:
    events = metric_writers.create_default_writer(workdir)
  return metric_writers.MultiWriter([events, _FallbackWriter(workdir)])
