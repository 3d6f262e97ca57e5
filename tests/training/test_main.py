"""`hvisnet train` end to end: a few steps, and one last line that says what was written."""
import os
import subprocess
import sys

from conftest import REPO


def test_train_ends_saying_where_the_checkpoints_and_the_export_are(tmp_path):
  wd = tmp_path / 'wd'
  r = subprocess.run(
      [sys.executable, '-m', 'hvisnet_jax.cli', 'train', '--config', 'configs/hvisnet_tiny.py',
       '--workdir', str(wd), '--cpu-devices', '1', '--config.train.steps=2', '--config.train.batch_size=2',
       '--config.train.log_every=1', '--config.train.checkpoint_every=2',
       '--config.evals.synthetic.every=0', '--config.data.height=64', '--config.data.width=96',
       '--config.data.videos=2', '--config.data.frames=4', '--config.data.max_instances=4'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert r.returncode == 0, r.stderr[-2000:]
  last = r.stdout.strip().splitlines()[-1]
  assert last.startswith('trained to step 2;') and f'export in {wd / "export"}' in last
  assert (wd / 'export' / 'config.json').is_file()
  assert '2/2' in r.stderr and 'step/s' in r.stderr          # the progress bar
  # Quiet by default: no INFO line from the libraries under hvisnet (orbax, jax backends).
  noisy = [l for l in r.stderr.splitlines() if l.startswith('I') and 'hvisnet_jax' not in l
           and ('orbax' in l or 'xla_bridge' in l or 'checkpoint' in l)]
  assert not noisy, noisy[:5]


def test_train_help_lists_every_flag_in_the_dashed_style_and_bad_values_are_one_line(capsys):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import cli, main  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps.commands import train  # pylint: disable=g-import-not-at-top
  for flag in flags.FLAGS.get_flags_for_module(main):
    assert f'--{flag.name.replace("_", "-")}' in train.HELP, flag.name
  for asked in ('--help', '-h'):
    assert cli.main(['train', asked]) == 0
    assert capsys.readouterr().out == train.HELP
  assert cli.main(['train', '--config=configs/hvisnet_tiny.py', '--workdir=/nonexistent/wd',
                   '--config.train.lr=abc']) == 2
  err = capsys.readouterr().err
  assert err.strip() == ('hvisnet train: error: --config.train.lr=abc: expected a number '
                         '(the config has 0.002)')


def test_a_bad_stage_is_one_line_before_the_workdir_is_made(tmp_path):
  wd = tmp_path / 'wd'
  for stage, says in (("({'steps': 0, 'lr': 1e-4},)", 'train.stages[0].steps must be'),
                      ("({'steps': 1, 'lr': 1e-4, 'weights': {'ccp': 2.0}},)",
                       'this config has no data.recipe')):
    r = subprocess.run([sys.executable, '-m', 'hvisnet_jax.cli', 'train', '--config',
                        'configs/hvisnet_tiny.py', '--workdir', str(wd),
                        f'--config.train.stages={stage}'],
                       cwd=REPO, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, JAX_PLATFORMS='cpu'))
    err = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(err) == 1, r.stderr[-2000:]
    assert err[0].startswith('hvisnet train: error: ') and says in err[0]
    assert not wd.exists()
