"""Careless-user input: every case fails fast with one line, or the run says what
it changed; no run leaves output that its own `eval` rejects, and runs never mix."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from hvisnet_jax import cli, evaluation
from hvisnet_jax import video
from hvisnet_jax.apps import extract
from hvisnet_jax.apps.commands import common as command_common
from hvisnet_jax.apps.commands import track as track_command
from hvisnet_jax.apps import track as app
from hvisnet_jax.inference import export as export_lib
from hvisnet_jax.inference import loading, predictor
from hvisnet_jax.synthetic import synth
from hvisnet_jax.training import trainer
from hvisnet_jax.training import checkpoints

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def synthetic_predictor():
  return predictor.Predictor.from_export('synthetic')


@pytest.fixture(scope='module')
def frames():
  return synth.render_video(7, 0, 8, 240, 320, 'easy').frames      # RGB uint8


@pytest.fixture
def folder(tmp_path, frames):
  d = tmp_path / 'frames'
  d.mkdir()
  for t, img in enumerate(frames):
    cv2.imwrite(str(d / f'{t:05d}.jpg'), img[..., ::-1])
  return d


@pytest.fixture
def no_model(monkeypatch):
  """Fails the test if a command builds a model: bad input must be caught before."""
  def build(*_):
    raise AssertionError('the model was built before the input was checked')
  monkeypatch.setattr(command_common, 'predictor', build)


def test_frame_of_another_size_is_resized_and_the_output_evaluates(tmp_path, folder,
                                                                      synthetic_predictor):
  img = cv2.imread(str(folder / '00002.jpg'))
  cv2.imwrite(str(folder / '00002.jpg'), img[:230, :310])
  out = tmp_path / 'out'
  res = app.track_to_dir(str(folder), synthetic_predictor, str(out), save_video=True,
                         progress=False)
  assert res['resized_frames'] == [2] and res['frames'] == 8 and not res['failed_frames']
  seq = evaluation.read_mots_txt(str(out / 'tracks.txt'))    # raises on an RLE of another size
  assert (seq.height, seq.width) == (240, 320)
  cap = cv2.VideoCapture(str(out / 'render.mp4'))
  assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
  cap.release()


def test_truncated_jpeg_is_a_failed_frame(tmp_path, folder):
  data = (folder / '00003.jpg').read_bytes()
  (folder / '00003.jpg').write_bytes(data[:len(data) // 2])
  assert video.read_image(str(folder / '00003.jpg')) is None
  assert video.read_image(str(folder / '00004.jpg')) is not None
  reader = video.FrameReader(str(folder))
  got = [i for i, f in reader if f is not None]
  assert reader.failed == [3] and got == [0, 1, 2, 4, 5, 6, 7]


def test_truncated_video_says_how_far_it_read(tmp_path, shared_data, capsys):
  cut = tmp_path / 'vtest_cut.avi'
  with open(os.path.join(shared_data, 'videos', 'vtest.avi'), 'rb') as f:
    cut.write_bytes(f.read(300_000))
  reader = video.FrameReader(str(cut))
  n = sum(1 for _ in reader)
  assert reader.stopped_early and reader.frame_count == 795 and reader.frames_seen == n < 100
  track_command.report_source_problems(str(cut), dict(
      stopped_early=True, frames_declared=reader.frame_count, frames_read=reader.frames_seen,
      failed_frames=reader.failed, resized_frames=[]))
  err = capsys.readouterr().err
  assert f'declares 795 frames but reading stopped after {n}' in err


def test_rerun_into_an_earlier_run_refuses_or_replaces_it_whole(tmp_path, folder,
                                                                  synthetic_predictor):
  out = tmp_path / 'out'
  app.track_to_dir(str(folder), synthetic_predictor, str(out), save_video=True,
                   save_masks=True, progress=False)
  assert (out / 'render.mp4').exists() and (out / 'masks').is_dir()
  with pytest.raises(FileExistsError, match='earlier run.*--overwrite'):
    app.track_to_dir(str(folder), synthetic_predictor, str(out), progress=False)
  app.track_to_dir(str(folder), synthetic_predictor, str(out), progress=False, overwrite=True)
  assert sorted(e for e in os.listdir(out) if not e.startswith('.')) == [
      'results.json', 'stats.json', 'tracks.txt']
  (out / 'notes.txt').write_text('mine')                 # never deleted, even by --overwrite
  with pytest.raises(FileExistsError, match='not an hvisnet run \\(notes.txt\\)'):
    app.track_to_dir(str(folder), synthetic_predictor, str(out), overwrite=True)
  assert (out / 'notes.txt').read_text() == 'mine'


def test_stale_partial_folders_of_killed_runs_are_removed(tmp_path, folder,
                                                           synthetic_predictor):
  out = tmp_path / 'out'
  (out / '.partial-999999999-abc').mkdir(parents=True)      # no such process
  live = out / f'.partial-{os.getpid()}-live'               # a live run's: kept
  live.mkdir()
  app.track_to_dir(str(folder), synthetic_predictor, str(out), progress=False)
  assert sorted(e for e in os.listdir(out) if e.startswith('.partial')) == [live.name]


@pytest.mark.parametrize('case', ['missing', 'empty_folder', 'text_as_video'])
def test_track_checks_the_source_before_the_model(tmp_path, no_model, capsys, case):
  src = tmp_path / 'src'
  if case == 'empty_folder':
    src.mkdir()
  elif case == 'text_as_video':
    src = tmp_path / 'notes.mp4'
    src.write_text('not a video')
  t0 = time.perf_counter()
  assert cli.main(['track', str(src), '--out', str(tmp_path / 'o'), '--quiet']) == 2
  assert time.perf_counter() - t0 < 10                   # generous: it is far under a second
  err = capsys.readouterr().err.strip()
  assert err.startswith('hvisnet track: error: ' + str(src)) and '\n' not in err
  assert not (tmp_path / 'o').exists()                    # no empty --out left behind


def test_unwritable_out_is_one_line(tmp_path, folder, no_model, capsys):
  assert cli.main(['track', str(folder), '--out', '/sys/hvisnet_out', '--quiet']) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith('hvisnet track: error: /sys/hvisnet_out: cannot be written')


def test_extract_person_checks_files_and_frame_range_before_the_model(tmp_path, folder,
                                                                      no_model, capsys):
  traj = tmp_path / 'obsmat.txt'
  traj.write_text(''.join(f'{f} 3 1.0 0 {0.1 * f} 0 0 0\n' for f in range(780, 800, 6)))
  hfile = tmp_path / 'H.txt'
  np.savetxt(hfile, np.diag([0.02, 0.02, 1.0]))
  args = ['extract-person', str(folder), '--trajectories', str(traj), '--homography',
          str(hfile), '--pid', '3', '--out', str(tmp_path / 'o'), '--quiet']
  assert cli.main(args) == 2
  err = capsys.readouterr().err
  assert 'obsmat frames 780..798' in err and '8 frames; set --frame-offset' in err
  traj.write_text('1 3 1.0 0\n')
  assert cli.main(args) == 2
  assert 'obsmat.txt:1: expected 8 columns' in capsys.readouterr().err
  assert not (tmp_path / 'o').exists()


def test_homography_scale_does_not_matter(tmp_path):
  h = np.array([[0.02, 0.001, -3.0], [0.0005, 0.025, -4.0], [0.0001, 0.0002, 1.0]])
  for scale, name in ((1.0, 'a'), (1e-4, 'b')):
    np.savetxt(tmp_path / f'{name}.txt', h * scale)
  a, b = (extract.read_homography(str(tmp_path / f'{n}.txt')) for n in 'ab')
  xy = np.array([[1.0, 2.0], [5.0, -1.0]])
  np.testing.assert_allclose(extract.world_to_image(a, xy), extract.world_to_image(b, xy))
  np.savetxt(tmp_path / 'c.txt', np.array([[1, 2, 3], [2, 4, 6], [0, 0, 1.0]]))
  with pytest.raises(extract.TrajectoryError, match='singular'):
    extract.read_homography(str(tmp_path / 'c.txt'))


def test_float_frames_in_unit_range_are_scaled(frames, synthetic_predictor):
  a = synthetic_predictor.predict(frames[0])
  b = synthetic_predictor.predict(frames[0].astype(np.float32) / 255.0)
  assert a['valid'].sum() > 0
  np.testing.assert_array_equal(a['valid'], b['valid'])
  np.testing.assert_allclose(a['boxes'][a['valid']], b['boxes'][b['valid']], atol=1.0)


@pytest.mark.parametrize('damage', ['metadata', 'data'])
def test_damaged_export_is_one_message_naming_the_folder(tmp_path, capfd, damage):
  exp = tmp_path / 'export'
  shutil.copytree(loading.model_dir('synthetic'), exp)
  if damage == 'metadata':
    path = exp / 'variables' / '_METADATA'
  else:
    path = max((p for p in (exp / 'variables').rglob('*') if p.is_file()),
               key=lambda p: p.stat().st_size)
  path.write_bytes(path.read_bytes()[:100])
  with pytest.raises(export_lib.DamagedCheckpointError, match=str(exp / 'variables')):
    predictor.Predictor.from_export(str(exp))
  time.sleep(0.3)
  assert 'Event loop is closed' not in capfd.readouterr().err


def test_ytvis_ground_truth_without_required_fields(tmp_path):
  base = {'videos': [{'id': 1, 'height': 4, 'width': 4, 'length': 1,
                      'file_names': ['v/0.jpg']}],
          'categories': [{'id': 1, 'name': 'person'}],
          'annotations': [{'id': 5, 'video_id': 1, 'category_id': 1, 'iscrowd': 0,
                           'segmentations': [None]}]}
  (tmp_path / 'pred.json').write_text('[]')
  cases = [(lambda g: g['videos'][0].pop('height'), r'videos\[0\] \(id 1\).*"height"'),
           (lambda g: (g['videos'][0].pop('file_names'), g['videos'][0].pop('length')),
            r'videos\[0\] \(id 1\): needs "file_names"'),
           (lambda g: g['annotations'][0].pop('id'), r'annotations\[0\]: expected an integer')]
  for i, (damage, message) in enumerate(cases):
    gt = json.loads(json.dumps(base))
    damage(gt)
    path = tmp_path / f'gt{i}.json'
    path.write_text(json.dumps(gt))
    with pytest.raises(evaluation.EvalInputError, match=message):
      evaluation.read_ytvis(str(path), str(tmp_path / 'pred.json'))


def test_mots_file_with_non_ascii_bytes_names_file_and_line(tmp_path):
  p = tmp_path / 'seq.txt'
  p.write_bytes(b'1 2003 2 4 4 \xff\xfe\n')
  with pytest.raises(evaluation.EvalInputError, match=r'seq\.txt:1: byte 0xff at column 14'):
    evaluation.read_mots_txt(str(p))


@pytest.mark.parametrize('flag,message', [
    ('--config.train.nosuch=1', "config.train has no field 'nosuch'"),
    ('--config.trian.steps=1', "did you mean 'train'"),
])
def test_unknown_config_key_is_one_line(tmp_path, capsys, flag, message):
  assert cli.main(['train', '--config=configs/hvisnet_tiny.py', flag,
                   f'--workdir={tmp_path / "w"}']) == 2
  err = capsys.readouterr().err.strip()
  assert message in err and '\n' not in err and 'Traceback' not in err


def test_workdir_lock_names_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
  wd = str(tmp_path / 'wd')
  with checkpoints.workdir_lock(wd):
    with pytest.raises(checkpoints.WorkdirBusyError, match=f'pid {os.getpid()} on host'):
      with checkpoints.workdir_lock(wd):
        pass
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time; from hvisnet_jax.training import checkpoints\n'
       'with checkpoints.workdir_lock(sys.argv[1]):\n  print("held", flush=True); time.sleep(600)',
       wd], stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(checkpoints.WorkdirBusyError, match=f'pid {holder.pid} '):
      with checkpoints.workdir_lock(wd):
        pass
  finally:
    holder.kill()                           # kill -9: its lock file stays behind, stale
    holder.wait()
  with checkpoints.workdir_lock(wd):            # taken over
    assert f'pid {os.getpid()} ' in open(os.path.join(wd, '.lock')).read()
  assert not os.path.exists(os.path.join(wd, '.lock'))      # removed by its holder at the end


def test_sigterm_cleans_up_like_ctrl_c(tmp_path, frames):
  # Long enough to be still running when the signal comes (8 frames took about a second
  # after the output folder appeared, and a run could finish first).
  folder = tmp_path / 'long'
  folder.mkdir()
  for t in range(400):
    cv2.imwrite(str(folder / f'{t:05d}.jpg'), frames[t % len(frames)][..., ::-1])
  out = tmp_path / 'out'
  proc = subprocess.Popen([sys.executable, '-m', 'hvisnet_jax.cli', 'track', str(folder),
                           '--out', str(out), '--model', 'synthetic', '--save-video'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while time.time() < deadline and not (out.is_dir() and any(
      e.startswith('.partial-') for e in os.listdir(out))):
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 130, err[-2000:]
  assert 'interrupted' in err
  assert not out.exists() or not os.listdir(out)


def test_cpu_devices_below_one_is_one_line(folder, no_model, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:                  # refused when parsed
    cli.main(['track', str(folder), '--out', str(tmp_path / 'o'), '--quiet',
              '--cpu-devices', '0'])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert err == ('hvisnet track: error: argument --cpu-devices: expected a whole number >= 1, '
                 'got 0')
  assert not (tmp_path / 'o').exists()


@pytest.mark.parametrize('argv', [
    ['demo', '--frames', '0'],
    ['bench', '--batch', '0'],
    ['synth', '--out', 'never_written', '--videos', '-1'],
    ['pseudo-label', 'x.mp4', '--out', 'never_written', '--every', '0'],
    ['train', '--config=configs/hvisnet_tiny.py', '--workdir=never_written',
     '--config.train.batch_size=0'],
    ['train', '--config=configs/hvisnet_tiny.py', '--workdir=never_written',
     '--config.train.steps=-5'],
], ids=lambda a: ' '.join(a[:1] + a[-1:]))
def test_counts_below_one_are_refused_in_one_line(argv, tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(REPO)
  try:
    rc = cli.main(argv)
  except SystemExit as e:                    # argparse's own error exit
    rc = e.code
  err = capsys.readouterr().err
  assert rc == 2 and 'expected a whole number >= 1' in err and 'Traceback' not in err
  assert not os.path.exists(os.path.join(REPO, 'never_written'))


def test_a_built_in_name_that_is_also_a_folder_is_refused(tmp_path, folder, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'synthetic').mkdir()
  assert cli.main(['track', str(folder), '--out', 'o', '--checkpoint', 'synthetic']) == 2
  assert "both a built-in model and a folder here; pass ./synthetic" in capsys.readouterr().err


def test_bench_with_torch_missing_names_the_install_command(monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, 'torch', None)           # import torch -> ImportError
  assert cli.main(['bench', '--framework', 'torch', '--config', 'hvisnet_tiny.py',
                   '--size', '64', '--runs', '1', '--warmup', '0']) == 2
  assert 'pip install torch==2.13.0' in capsys.readouterr().err


def test_a_yolo_input_size_off_the_32_grid_is_refused_before_anything_is_written(
    tmp_path, capsys):
  out = tmp_path / 'pl'
  with pytest.raises(SystemExit) as e:
    cli.main(['pseudo-label', str(tmp_path), '--out', str(out), '--teacher-size', '600'])
  assert e.value.code == 2 and 'expected a multiple of 32' in capsys.readouterr().err
  assert not out.exists()
