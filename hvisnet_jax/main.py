"""Training entry point: python -m hvisnet_jax.main --config=configs/X.py --workdir=DIR.

Overrides use ml_collections' syntax, e.g. --config.train.steps=100.
"""
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from hvisnet_jax.training import trainer as train

_CONFIG = config_flags.DEFINE_config_file('config', None, 'experiment config file',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'directory for checkpoints and metrics')
_MULTIHOST = flags.DEFINE_bool('multihost', False, 'call jax.distributed.initialize() first '
                               '(Cloud TPU pods, multi-node GPU)')
flags.mark_flags_as_required(['config', 'workdir'])


def make_source(config):
  """The training source `config.data.source` names: 'synthetic' (NumPy, no tensorflow) or
  'tfds' (a dataset built by `hvisnet build-dataset`; the data pipelines need tensorflow).

  The one place the package reaches for data_pipelines, and only for 'tfds'.
  """
  d = config.data
  if d.source == 'synthetic':
    from hvisnet_jax.synthetic import source as synthetic_source  # pylint: disable=g-import-not-at-top
    return synthetic_source.SyntheticSource(d.preset, d.videos, d.frames, d.height, d.width,
                                            d.seed, d.max_instances)
  if d.source == 'tfds':
    from data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
    return pipeline.TfdsSource(d, config.train.batch_size)
  raise ValueError(f"data.source must be 'synthetic' or 'tfds', got {d.source!r}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if _MULTIHOST.value:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.initialize()
  logging.set_verbosity(logging.INFO)
  # orbax logs every file it writes at INFO; keep its warnings only.
  logging.get_absl_handler().addFilter(
      lambda r: 'orbax' not in r.pathname or r.levelno >= logging.WARNING)
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, make_source(_CONFIG.value))


def run():
  app.run(main)


if __name__ == '__main__':
  run()
