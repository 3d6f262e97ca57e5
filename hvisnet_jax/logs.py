"""What the libraries under hvisnet may print on a good run: their warnings about the
user's data, not their notes to their own developers. `--verbose` (HVISNET_VERBOSE=1)
shows everything."""
from __future__ import annotations

import contextlib
import logging
import os

# Library lines that describe their own internals on a run that went well.
_NOISE = (
    'Metadata file does not exist',      # orbax, reading a checkpoint saved without it
    'Using custom data configuration',   # TFDS, for every builder config it was given
    'Variant folder',                    # TFDS, looking for a dataset before building it
    '`TensorInfo.dtype` is deprecated', # TFDS's own code, reading a dataset
)


def verbose() -> bool:
  return os.environ.get('HVISNET_VERBOSE', '') not in ('', '0')


def set_verbose(on: bool) -> None:
  """Called once by the CLI; the data pipelines and subprocesses read the same switch."""
  if on:
    os.environ['HVISNET_VERBOSE'] = '1'
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')     # TensorFlow's C++ start-up notes
  absl_logger = logging.getLogger('absl')
  if not any(isinstance(f, _DropNoise) for f in absl_logger.filters):
    absl_logger.addFilter(_DropNoise())


class _DropNoise(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return verbose() or not str(record.msg).startswith(_NOISE)


@contextlib.contextmanager
def native_stderr_quiet():
  """Silences what C++ code writes straight to file descriptor 2 (TensorFlow Lite's
  "Created TensorFlow Lite XNNPACK delegate"), unless verbose. Python's own sys.stderr
  is flushed first and is the same descriptor afterwards."""
  if verbose():
    yield
    return
  import sys  # pylint: disable=g-import-not-at-top
  sys.stderr.flush()
  saved = os.dup(2)
  try:
    with open(os.devnull, 'w') as null:
      os.dup2(null.fileno(), 2)
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)


def import_tensorflow_quietly() -> None:
  """Imports TensorFlow with its C++ start-up notes (oneDNN, CPU features) silenced: TF
  2.21 prints them through abseil whatever TF_CPP_MIN_LOG_LEVEL says. Later imports find
  it loaded. An ImportError still reaches the caller."""
  import sys  # pylint: disable=g-import-not-at-top
  if 'tensorflow' in sys.modules:
    return
  with native_stderr_quiet():
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
