"""Training entry point: python -m hvisnet_jax.main --config=configs/X.py --workdir=DIR.

Overrides use ml_collections' syntax, e.g. --config.train.steps=100.
"""
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from hvisnet_jax import evaluators
from hvisnet_jax import storage
from hvisnet_jax.training import preemption
from hvisnet_jax.training import trainer as train

_CONFIG = config_flags.DEFINE_config_file('config', None, 'experiment config file',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'directory for checkpoints and metrics')
_MULTIHOST = flags.DEFINE_bool('multihost', False, 'call jax.distributed.initialize() first '
                               '(Cloud TPU pods, multi-node GPU)')
_VERBOSE = flags.DEFINE_bool('verbose', False, 'every library\'s INFO logs (default: '
                             'hvisnet\'s own progress and the others\' warnings)')
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices', None, 'on a CPU, split the host into N XLA devices and train data-parallel '
    'over them (the batch must divide by N). XLA keeps one image\'s small convolutions on '
    'about one core: configs/hvisnet_mobile.py on 2 cores ran 0.42-0.46 steps/s with 2 '
    'devices, 0.36-0.38 with one. Default: one device. No effect on GPUs/TPUs', lower_bound=1)
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
    from hvisnet_jax.data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
    return pipeline.TfdsSource(d, config.train.batch_size)
  raise ValueError(f"data.source must be 'synthetic' or 'tfds', got {d.source!r}")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if _CPU_DEVICES.value is not None:     # before JAX starts: it fixes its devices then
    from hvisnet_jax.inference import devices  # pylint: disable=g-import-not-at-top
    devices.use_cpu_devices(_CPU_DEVICES.value)
  if _MULTIHOST.value:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.initialize()
  logging.set_verbosity(logging.INFO)
  # Quiet by default: hvisnet's own progress at INFO, only warnings from the libraries
  # under it (orbax logs every file it writes, jax every backend it tried); --verbose: all.
  if not _VERBOSE.value:
    # Records carry Python's levels (absl's own constants are -3..1): compare with those.
    import logging as py_logging  # pylint: disable=g-import-not-at-top
    logging.get_absl_handler().addFilter(
        lambda r: r.levelno >= py_logging.WARNING or
        os.sep + 'hvisnet_jax' + os.sep in r.pathname)
  config = _CONFIG.value
  storage.check_reachable(_WORKDIR.value, '--workdir')
  from hvisnet_jax.training import checkpoints  # pylint: disable=g-import-not-at-top
  checkpoints.check_workdir(_WORKDIR.value)       # before any data or model is built
  from hvisnet_jax.training import optimizer  # pylint: disable=g-import-not-at-top
  if any(st['weights'] for st in optimizer.stages(config.train)) and not config.data.get('recipe'):
    raise ValueError('train.stages[].weights name data.recipe parts, and this config has no '
                     'data.recipe (set data.tfds_weights for its datasets instead)')
  if config.data.get('recipe'):
    config = _prepare_recipe(config, _WORKDIR.value)
  try:
    state = train.train_and_evaluate(config, _WORKDIR.value, make_source(config),
                                     evaluators=evaluators.make(config))
  except preemption.Preempted as e:
    print(f'hvisnet train: {e}', file=sys.stderr)
    sys.exit(PREEMPTED_EXIT)
  workdir = storage.location(_WORKDIR.value)
  export = storage.join(workdir, 'export')
  print(f'trained to step {int(state.step)}; checkpoints and metrics.jsonl in {workdir}'
        + (f'; export in {export} (hvisnet track VIDEO --checkpoint {export})'
           if storage.isdir(export) else ''))


def _prepare_recipe(config, workdir):
  """`data.recipe`: labels and builds the config's data under WORKDIR/data (resumable) and
  points data.tfds_dir at it (data_pipelines/recipe.py)."""
  if storage.is_remote(workdir):
    raise app.UsageError('data.recipe prepares its data on local disk: give a local --workdir, '
                         'or build the datasets (hvisnet build-dataset) and set data.tfds_dir')
  from hvisnet_jax.data_pipelines import recipe  # pylint: disable=g-import-not-at-top
  stages = recipe.stage_weights(config.data, config.train)       # names checked first
  tfds_dir, weights = recipe.prepare(config.data, workdir,
                                     log=lambda m: logging.info('%s', m))
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.data.update(source='tfds', tfds_dir=tfds_dir, tfds_weights=weights,
                       tfds_stages=stages)
  return config


# What a process killed by SIGTERM reports (128 + 15): schedulers read it as "stopped".
PREEMPTED_EXIT = 143


def run():
  app.run(main)


if __name__ == '__main__':
  run()
