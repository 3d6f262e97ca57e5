"""The model, inference, tracker, trainer and benchmarks import without tensorflow (GPU machines
have none); only data_pipelines needs it."""
import subprocess
import sys

from conftest import REPO

_BLOCK_TF = ("import sys\n"
             "sys.modules['tensorflow'] = None          # any import of it now fails\n"
             "sys.modules['tensorflow_datasets'] = None\n")


def test_everything_but_the_data_pipelines_imports_without_tensorflow():
  code = _BLOCK_TF + (
      'import hvisnet_jax.model.hvisnet, hvisnet_jax.inference.predictor, hvisnet_jax.tracking.tracker, hvisnet_jax.apps.track\n'
      'import hvisnet_jax.apps.bench, hvisnet_jax.training.trainer, hvisnet_jax.evaluation, hvisnet_jax.cli\n'
      'import hvisnet_jax.apps.extract, hvisnet_jax.synthetic.source, hvisnet_jax.interop.torch_model\n'
      'from hvisnet_jax.training import writers\n'
      'print(type(writers.make_writer("/tmp")).__name__)\n')
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == '_FallbackWriter'      # clu's writers need TF: JSONL instead
  # The data pipelines do need it, and say so by failing to import.
  code = _BLOCK_TF + 'import hvisnet_jax.data_pipelines.pipeline\n'
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
  assert out.returncode != 0 and 'tensorflow' in out.stderr


def test_every_commands_help_describes_every_option_without_loading_jax():
  """`hvisnet CMD --help` parses only: no jax, no model (it answers at once)."""
  import argparse  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import cli  # pylint: disable=g-import-not-at-top
  sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
  bare = {name: [a.dest for a in sp._actions if not a.help]
          for name, sp in sub.choices.items() if name != 'train'}
  assert not any(bare.values()), bare
  code = ('import sys\nfrom hvisnet_jax import cli\nloaded = {}\n'
          f'for c in {sorted(sub.choices)!r}:\n'
          '  try:\n    cli.main([c, "--help"])\n  except SystemExit:\n    pass\n'
          '  loaded[c] = [m for m in ("jax", "tensorflow", "torch") if m in sys.modules]\n'
          'print(loaded)\n')
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  loaded = eval(out.stdout.strip().splitlines()[-1])  # pylint: disable=eval-used
  assert not any(loaded.values()), loaded
