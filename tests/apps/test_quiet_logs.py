"""A good run shows hvisnet's own lines, not the libraries' notes to their developers;
`--verbose` (HVISNET_VERBOSE=1) brings them back."""
import os
import subprocess
import sys

from conftest import REPO
from hvisnet_jax.synthetic import synth


def _run(args, cwd, **env):
  r = subprocess.run([sys.executable, '-m', 'hvisnet_jax.cli', *args], cwd=cwd,
                     capture_output=True, text=True, timeout=600,
                     env=dict(os.environ, JAX_PLATFORMS='cpu', **env))
  assert r.returncode == 0, r.stderr[-3000:]
  return r.stdout + r.stderr


def test_build_dataset_says_nothing_of_downloads(tmp_path):
  synth.write_dataset(str(tmp_path / 'src'), videos=1, frames=3, height=64, width=96,
                      preset='easy', seed=3)
  base = ['build-dataset', '--format', 'ytvis', '--source', str(tmp_path / 'src')]
  out = _run(base + ['--out', str(tmp_path / 'a')], tmp_path)
  assert 'Downloading and preparing' not in out and 'dataset in ' in out
  assert not os.path.exists(tmp_path / 'a' / '.lock')
  out = _run(base + ['--out', str(tmp_path / 'b'), '--verbose'], tmp_path)
  assert 'Downloading and preparing' in out


def test_export_and_track_from_a_workdir_are_quiet(tmp_path):
  wd = tmp_path / 'wd'
  _run(['train', '--config', 'configs/hvisnet_tiny.py', '--workdir', str(wd),
        '--config.train.steps=1', '--config.train.batch_size=2', '--config.data.height=64',
        '--config.data.width=96', '--config.data.videos=1', '--config.data.frames=3',
        '--config.data.max_instances=2'], REPO)
  out = _run(['export', str(wd), '--out', str(tmp_path / 'ex')], tmp_path)
  assert 'exported step 1' in out and 'WARNING' not in out, out[-2000:]
  synth.write_dataset(str(tmp_path / 'clip'), videos=1, frames=2, height=64, width=96,
                      preset='easy', seed=4)
  frames = tmp_path / 'clip' / 'JPEGImages' / os.listdir(tmp_path / 'clip' / 'JPEGImages')[0]
  out = _run(['track', str(frames), '--out', str(tmp_path / 't'), '--checkpoint', str(wd),
              '--quiet'], tmp_path)
  assert 'WARNING' not in out and 'Metadata file' not in out, out[-2000:]


def test_the_tflite_delegate_note_is_silenced(yolo_files):
  code = ('from hvisnet_jax.data_pipelines import teacher\n'
          f'teacher._tflite_interpreter({yolo_files["segmenter"]!r}, 1)\n'
          'import sys; print("python stderr still works", file=sys.stderr)\n')
  quiet = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env=dict(os.environ, HVISNET_VERBOSE=''))
  loud = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                        env=dict(os.environ, HVISNET_VERBOSE='1'))
  assert 'XNNPACK' not in quiet.stderr and 'python stderr still works' in quiet.stderr
  assert 'XNNPACK' in loud.stderr
