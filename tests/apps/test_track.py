"""The video application end to end with the committed default model."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from hvisnet_jax import cli, evaluation
from hvisnet_jax.apps import track as app
from hvisnet_jax.evaluation import results
from hvisnet_jax.inference import predictor
from hvisnet_jax.synthetic import synth
from hvisnet_jax import video
from hvisnet_jax.tracking import config as tracking_config


@pytest.fixture(scope='module')
def default_predictor():
  return predictor.Predictor.from_export('synthetic')   # the clips here are synthetic


@pytest.fixture(scope='module')
def clip_dir(tmp_path_factory):
  """A synthetic clip as an image folder, with its ground truth."""
  d = tmp_path_factory.mktemp('clip')
  v = synth.render_video(7, 0, 12, 240, 320, 'easy')
  for t, img in enumerate(v.frames):
    cv2.imwrite(str(d / f'{t:05d}.jpg'), img)
  return d, v


def test_demo_writes_everything_and_scores(tmp_path, capsys):
  assert cli.main(['demo', '--out', str(tmp_path), '--frames', '16', '--quiet']) == 0
  real = tmp_path / 'real'
  for f in ('tracks.txt', 'results.json', 'render.mp4'):
    assert (real / f).is_file(), f
  # The real clip (two basketball players, 90 frames): the real model tracks them.
  seq = list(evaluation.read_mots(str(real / 'tracks.txt')).values())[0]
  frames_with_two = sum(len(ids) >= 2 for ids in seq.ids)
  assert frames_with_two > 0.5 * 90, frames_with_two
  assert not evaluation.find_overlaps(seq)
  out = capsys.readouterr().out
  assert 'real clip (basketball_gym.mp4, model real)' in out
  tmp_path = tmp_path / 'synthetic'
  for f in ('input.mp4', 'render.mp4', 'metrics.json'):
    assert (tmp_path / f).is_file(), f
  gt = list((tmp_path / 'gt').glob('*.txt'))
  pred = list((tmp_path / 'pred').glob('*.txt'))
  assert len(gt) == len(pred) == 1 and gt[0].name == pred[0].name
  metrics = json.loads((tmp_path / 'metrics.json').read_text())
  assert set(metrics) == {'combined', 'per_sequence'}
  # The default model must find people: most ground-truth masks are matched.
  c = metrics['combined']
  assert c['TP'] > 0.5 * (c['TP'] + c['FN']), c
  again = evaluation.evaluate_mots(evaluation.read_mots(str(tmp_path / 'gt')),
                                   evaluation.read_mots(str(tmp_path / 'pred')))
  assert again['combined']['sMOTSA'] == pytest.approx(c['sMOTSA'])
  assert 'COMBINED' in out
  cap = cv2.VideoCapture(str(tmp_path / 'render.mp4'))
  assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 16
  # What browsers play (benchmarks/browser_playback.py plays it in Chromium): H.264 in
  # yuv420p, its index before the media data so that playback starts before the download ends.
  import av  # pylint: disable=g-import-not-at-top
  for render in (real / 'render.mp4', tmp_path / 'render.mp4'):
    with av.open(str(render)) as c:
      ctx = c.streams.video[0].codec_context
      assert (ctx.name, ctx.pix_fmt) == ('h264', 'yuv420p')
    head = render.read_bytes()
    assert 0 <= head.find(b'moov') < head.find(b'mdat'), render


def test_track_folder_with_a_corrupt_frame(tmp_path, clip_dir, default_predictor):
  src, v = clip_dir
  folder = tmp_path / 'frames'
  shutil.copytree(src, folder)
  (folder / '00005.jpg').write_bytes(b'not a jpeg')
  out = tmp_path / 'out'
  res = app.track_to_dir(str(folder), default_predictor, str(out), save_video=True,
                         save_masks=True, progress=False)
  assert res['failed_frames'] == [5] and res['frames'] == 11
  lines = (out / 'tracks.txt').read_text().splitlines()
  frames = {int(l.split()[0]) for l in lines}
  assert 6 not in frames and frames <= set(range(1, 13))      # frame 6 (1-based) is skipped
  seq = evaluation.read_mots_txt(str(out / 'tracks.txt'))
  assert not evaluation.find_overlaps(seq)
  results = json.loads((out / 'results.json').read_text())
  assert all(len(r['segmentations']) == 12 for r in results)
  assert all(r['segmentations'][5] is None for r in results)
  assert (out / 'render.mp4').is_file() and (out / 'masks').is_dir()
  assert not [p for p in os.listdir(out) if p.startswith('.partial')]


def test_bad_sources(tmp_path, default_predictor):
  with pytest.raises(FileNotFoundError, match='no such video file'):
    app.track_to_dir(str(tmp_path / 'missing.mp4'), default_predictor, str(tmp_path / 'o'))
  empty = tmp_path / 'empty.mp4'
  empty.write_bytes(b'')
  with pytest.raises(video.VideoSourceError, match='empty file'):
    app.track_to_dir(str(empty), default_predictor, str(tmp_path / 'o'))
  junk = tmp_path / 'junk.mp4'
  junk.write_bytes(os.urandom(2048))
  with pytest.raises(video.VideoSourceError):
    app.track_to_dir(str(junk), default_predictor, str(tmp_path / 'o'))
  folder = tmp_path / 'nothing'
  folder.mkdir()
  with pytest.raises(video.VideoSourceError, match='holds no images'):
    app.track_to_dir(str(folder), default_predictor, str(tmp_path / 'o'))
  assert not (tmp_path / 'o' / 'tracks.txt').exists()


def test_cli_track_reports_errors(tmp_path, capsys):
  assert cli.main(['track', str(tmp_path / 'nope.avi'), '--out', str(tmp_path / 'o'),
                   '--quiet']) == 2
  assert 'nope.avi: no such video file' in capsys.readouterr().err


def _track_3_frames(clip, out, *options):
  """`hvisnet track` of 3 frames with the synthetic model -> its stats.json."""
  assert cli.main(['track', str(clip), '--out', str(out), '--model', 'synthetic', '--frames',
                   '3', '--quiet', *options]) == 0
  return json.loads((out / 'stats.json').read_text())


def test_cli_track_at_other_input_sizes(tmp_path, clip_dir, capsys):
  d, _ = clip_dir
  out = tmp_path / 'o'
  stats = _track_3_frames(d, out, '--input-size', '160,224', '--max-detections', '5')
  assert (stats['frames'], stats['input_size'], stats['max_detections']) == (3, 160, 5)
  assert stats['input_sizes'] == [160, 224]
  assert len(open(out / 'tracks.txt').readlines()) > 0
  for bad, says in (('0', '>= 64'), ('224,160', 'ascending')):
    with pytest.raises(SystemExit):
      cli.main(['track', str(d), '--out', str(tmp_path / 'p'), '--input-size', bad])
    err = capsys.readouterr().err
    assert '--input-size' in err and says in err


def test_cli_track_with_a_crowd_pass_records_it(tmp_path, clip_dir, capsys, monkeypatch):
  from hvisnet_jax.inference import predictor
  d, _ = clip_dir
  stats = _track_3_frames(d, tmp_path / 'o', '--input-size', '160', '--crowd-size', '224')
  assert stats['input_sizes'] == [160] and stats['crowd_size'] == 224
  assert 0 <= stats['crowd_pass_frames'] <= 3
  # Every frame a crowd: the pass runs through track's pipeline and the run says so.
  monkeypatch.setattr(predictor.Predictor, 'crowd_frames_of',
                      lambda self, out, hw: np.ones(len(out['valid']), bool))
  capsys.readouterr()
  stats = _track_3_frames(d, tmp_path / 'all', '--input-size', '160', '--crowd-size', '224')
  assert stats['crowd_pass_frames'] == 3 and stats['frames'] == 3
  assert 'crowd pass (short side 224) ran on 3 frames' in capsys.readouterr().out
  monkeypatch.undo()
  assert cli.main(['track', str(d), '--out', str(tmp_path / 'p'), '--model', 'synthetic',
                   '--input-size', '160', '--crowd-size', '128', '--quiet']) == 2
  assert 'crowd size (128) must exceed the input size (160)' in capsys.readouterr().err
  assert not (tmp_path / 'p' / 'stats.json').exists()


def test_extract_person_cli_on_synthetic(tmp_path):
  synth.write_dataset(str(tmp_path / 'd'), 1, 12, 240, 320, 'easy', seed=7)
  name = os.listdir(tmp_path / 'd' / 'JPEGImages')[0]
  rows = np.loadtxt(tmp_path / 'd' / 'trajectories' / f'{name}.txt')
  pid = int(rows[0, 1])
  out = tmp_path / 'person'
  assert cli.main(['extract-person', str(tmp_path / 'd' / 'JPEGImages' / name),
                   '--trajectories', str(tmp_path / 'd' / 'trajectories' / f'{name}.txt'),
                   '--homography', str(tmp_path / 'd' / 'trajectories' / 'H.txt'),
                   '--pid', str(pid), '--out', str(out), '--model', 'synthetic', '--quiet']) == 0
  summary = json.loads((out / 'summary.json').read_text())
  assert summary['pid'] == pid and summary['frames_with_mask'] > 0
  assert len(list((out / 'masks').glob('*.png'))) == summary['frames_with_mask']
  assert cli.main(['extract-person', str(tmp_path / 'd' / 'JPEGImages' / name),
                   '--trajectories', str(tmp_path / 'd' / 'trajectories' / f'{name}.txt'),
                   '--homography', str(tmp_path / 'd' / 'trajectories' / 'H.txt'),
                   '--pid', '999', '--out', str(tmp_path / 'p2'), '--model', 'synthetic', '--quiet']) == 2


def test_carry_masks_bridges_a_frame_where_nobody_is_detected(tmp_path, clip_dir,
                                                              default_predictor):
  src, _ = clip_dir
  folder = tmp_path / 'frames'
  shutil.copytree(src, folder)
  cv2.imwrite(str(folder / '00006.jpg'), np.full((240, 320, 3), 128, np.uint8))   # nobody
  plain, _ = app.track_source(str(folder), default_predictor, progress=False)
  carried, _ = app.track_source(str(folder), default_predictor, progress=False,
                                carry_masks=True)
  assert not plain.frames[6] and set(plain.frames[5])
  assert set(carried.frames[6]) and set(carried.frames[6]) <= set(carried.frames[5])
  seq = carried.sequence('clip')
  assert not evaluation.find_overlaps(seq)
  for tid in carried.frames[6]:                   # the mask sits where it was a frame before
    a = mask_utils.decode(carried.frames[5][tid]['rle'])
    b = mask_utils.decode(carried.frames[6][tid]['rle'])
    assert (a & b).sum() / max(b.sum(), 1) > 0.5


def test_the_model_config_tracker_section_sets_the_tracker(clip_dir, default_predictor):
  """Score thresholds belong to the model: its config's `tracker` section overrides the
  tracker's defaults in track_source; a new-track threshold above every score gives no
  tracks, and an unknown setting is named."""
  import copy
  from hvisnet_jax.tracking import tracker as tracker_lib
  src, _ = clip_dir
  assert tracking_config.for_model(default_predictor.config) == tracker_lib.TrackerConfig()
  real = predictor.Predictor.from_export('real')
  assert tracking_config.for_model(real.config, fps=25.0).new_track_thresh == 0.6
  assert tracking_config.for_model(real.config, fps=25.0).fps == 25.0
  cfg = copy.deepcopy(default_predictor.config)
  cfg.tracker = dict(new_track_thresh=1.01)
  strict = predictor.Predictor(cfg, default_predictor.variables)
  found, _ = app.track_source(str(src), default_predictor, progress=False, max_frames=4)
  none, _ = app.track_source(str(src), strict, progress=False, max_frames=4)
  assert any(found.frames) and not any(none.frames)
  cfg.tracker = dict(new_track_tresh=0.6)
  with pytest.raises(ValueError, match="tracker section: unknown tracker setting "
                     "'new_track_tresh'; expected one of .*new_track_thresh"):
    tracking_config.for_model(predictor.Predictor(cfg, default_predictor.variables).config)


@pytest.mark.parametrize('in_flight', [1, 3])
def test_streamed_files_are_byte_identical_to_the_in_memory_result(tmp_path, clip_dir,
                                                                   default_predictor, in_flight):
  """`hvisnet track` streams tracks.txt and results.json from an output thread while later
  frames are on the device; the bytes equal those written from the whole in-memory result."""
  src, _ = clip_dir
  result, _ = app.track_source(str(src), default_predictor, progress=False)
  evaluation.write_mots_txt(str(tmp_path / 'tracks.txt'), result.sequence('clip'))
  (tmp_path / 'results.json').write_text(json.dumps(result.ytvis_results()))
  assert result.ytvis_results() and any(result.frames)
  out = tmp_path / 'out'
  stats = app.track_to_dir(str(src), default_predictor, str(out), progress=False,
                           in_flight=in_flight)
  for f in ('tracks.txt', 'results.json'):
    assert (out / f).read_bytes() == (tmp_path / f).read_bytes(), f
  assert stats['identities'] == len(result.ytvis_results())
  assert sorted(p for p in os.listdir(out) if not p.startswith('.')) == ['results.json', 'stats.json', 'tracks.txt']


def test_in_flight_depth_does_not_change_the_result(clip_dir, default_predictor):
  src, _ = clip_dir
  one, _ = app.track_source(str(src), default_predictor, progress=False, in_flight=1)
  three, _ = app.track_source(str(src), default_predictor, progress=False, in_flight=3)
  assert one.ytvis_results() == three.ytvis_results()


def test_a_part_of_the_source_start_count_stride(tmp_path, clip_dir, default_predictor):
  """--start 2 --frames 4 --stride 2: source frames 2, 4, 6, 8 as output frames 0-3."""
  src, _ = clip_dir
  whole, _ = app.track_source(str(src), default_predictor, progress=False)
  part, stats = app.track_source(str(src), default_predictor, progress=False, start=2,
                                 max_frames=4, stride=2)
  assert len(part.frames) == 4 and stats['frames'] == 4
  assert (stats['start'], stats['stride']) == (2, 2)
  for t, s in enumerate((2, 4, 6, 8)):     # each output frame holds its source frame's masks
    got = [int(mask_utils.area(d['rle'])) for d in part.frames[t].values()]
    want = [int(mask_utils.area(d['rle'])) for d in whole.frames[s].values()]
    assert got and set(got) <= set(want), (t, got, want)
  with pytest.raises(video.VideoSourceError, match='start 12 is past its last frame'):
    app.track_source(str(src), default_predictor, progress=False, start=12)
  with pytest.raises(ValueError, match='stride is 0'):
    app.track_source(str(src), default_predictor, progress=False, stride=0)


def _threads():
  import threading  # pylint: disable=g-import-not-at-top
  return {t for t in threading.enumerate() if t.name == 'hvisnet-output' or 'Thread-' in t.name}


@pytest.mark.parametrize('fault', ['full_disk', 'interrupt_in_output', 'interrupt_on_device'])
def test_a_fault_in_any_stage_stops_every_thread_and_keeps_the_earlier_run(
    tmp_path, clip_dir, default_predictor, monkeypatch, fault):
  src, _ = clip_dir
  out = tmp_path / 'out'
  app.track_to_dir(str(src), default_predictor, str(out), progress=False)
  before = {f: (out / f).read_bytes() for f in ('tracks.txt', 'results.json')}
  threads = _threads()
  calls = {'n': 0}
  if fault == 'interrupt_on_device':
    collect = default_predictor.collect

    def failing(pending):
      calls['n'] += 1
      if calls['n'] == 4:
        raise KeyboardInterrupt
      return collect(pending)
    monkeypatch.setattr(default_predictor, 'collect', failing)
  else:
    add = results.RunFiles.add

    def failing(self, *a):
      calls['n'] += 1
      if calls['n'] == 4:
        if fault == 'full_disk':
          raise OSError(28, 'No space left on device')
        raise KeyboardInterrupt
      return add(self, *a)
    monkeypatch.setattr(results.RunFiles, 'add', failing)
  expected = OSError if fault == 'full_disk' else KeyboardInterrupt
  with pytest.raises(expected) as e:
    app.track_to_dir(str(src), default_predictor, str(out), progress=False, overwrite=True,
                     save_video=True)
  if fault == 'full_disk':
    assert str(out) in str(e.value) and 'No space left' in str(e.value)
  assert _threads() <= threads                     # the output and reader threads are gone
  assert sorted(p for p in os.listdir(out) if not p.startswith('.')) == ['results.json', 'stats.json', 'tracks.txt']
  for f, data in before.items():
    assert (out / f).read_bytes() == data


def test_camera_motion_compensation_runs_in_the_pipeline(clip_dir, default_predictor):
  """--camera-motion on: the tracker gets each frame's estimated camera motion (the
  synthetic clip's camera is still, so the identities are those of a run without it)."""
  src, _ = clip_dir
  plain, _ = app.track_source(str(src), default_predictor, progress=False)
  moved, _ = app.track_source(str(src), default_predictor, progress=False, camera_motion=True)
  assert {t for f in moved.frames for t in f} == {t for f in plain.frames for t in f}


def test_overwrite_replaces_an_earlier_run_whole_even_through_a_symlink(tmp_path, clip_dir,
                                                                        default_predictor):
  """An earlier run's `masks` is a symlink to the user's folder: --overwrite replaces the
  run (the link goes, the folder it pointed to is untouched); not fail half way,
  the old run deleted and the new one discarded."""
  src, _ = clip_dir
  out = tmp_path / 'run'
  app.track_to_dir(str(src), default_predictor, str(out), progress=False)
  mine = tmp_path / 'mine'
  mine.mkdir()
  (mine / 'keep.png').write_bytes(b'user data')
  os.symlink(mine, out / 'masks')
  app.track_to_dir(str(src), default_predictor, str(out), progress=False, overwrite=True,
                   save_masks=True)
  assert (mine / 'keep.png').read_bytes() == b'user data'
  assert (out / 'masks').is_dir() and not (out / 'masks').is_symlink()
  assert (out / 'tracks.txt').is_file()
  assert not [p for p in os.listdir(out) if p.startswith('.partial')]


def test_a_second_run_into_the_same_out_stops_at_once_naming_the_first(tmp_path, clip_dir,
                                                                       default_predictor):
  from hvisnet_jax import atomic  # pylint: disable=g-import-not-at-top
  src, _ = clip_dir
  out = tmp_path / 'run'
  app.track_to_dir(str(src), default_predictor, str(out), progress=False)
  before = (out / 'tracks.txt').read_bytes()
  with atomic.folder_lock(str(out), 'hvisnet run writing there', '--out'):
    with pytest.raises(atomic.FolderBusyError, match=f'pid {os.getpid()}'):
      app.track_to_dir(str(src), default_predictor, str(out), progress=False, overwrite=True)
  assert (out / 'tracks.txt').read_bytes() == before
  new = tmp_path / 'new'
  with atomic.folder_lock(str(new), 'hvisnet run writing there', '--out'):
    with pytest.raises(atomic.FolderBusyError):
      app.track_to_dir(str(src), default_predictor, str(new), progress=False)


class _SlowCamera:
  """A cv2.VideoCapture stand-in delivering `frames` synthetic frames at `fps`, recording
  when each was read: a camera that does not wait for its reader."""

  def __init__(self, frames, fps):
    import time  # pylint: disable=g-import-not-at-top
    self._time = time
    self.video = synth.render_video(3, 0, frames, 240, 320, 'easy')
    self.fps, self.read_at = fps, []

  def read(self):
    k = len(self.read_at)
    if k >= len(self.video.frames):
      return False, None
    self._time.sleep(1.0 / self.fps)
    self.read_at.append(self._time.perf_counter())
    return True, self.video.frames[k]

  def grab(self):
    return self.read()[0]

  def get(self, prop):
    return float(self.fps) if prop == cv2.CAP_PROP_FPS else 0.0

  def release(self):
    pass


def test_compiled_before_the_first_frame_and_a_live_camera_never_waits(monkeypatch):
  import time  # pylint: disable=g-import-not-at-top
  pred = predictor.Predictor.from_export('synthetic')     # its own: methods patched below
  events, stall = [], {'left': 1}
  compile_for, collect = predictor.Predictor.compile_for, predictor.Predictor.collect

  def recording_compile(self, batch, h, w):
    events.append(('compile', h, w))
    return compile_for(self, batch, h, w)

  def slow_collect(self, pending):           # one chunk as slow as a crowd pass on a CPU
    events.append(('collect',))
    if stall['left']:
      stall['left'] -= 1
      time.sleep(1.0)
    return collect(self, pending)

  monkeypatch.setattr(predictor.Predictor, 'compile_for', recording_compile)
  monkeypatch.setattr(predictor.Predictor, 'collect', slow_collect)
  camera = _SlowCamera(frames=80, fps=40)
  _, stats = app.track_source(camera, pred, progress=False)
  assert events[0] == ('compile', 240, 320) and events.count(('compile', 240, 320)) == 1
  gaps = np.diff(camera.read_at)
  # Never held up by the 1 s stall (a held-up camera shows a gap of 1 s); tracing the
  # first frame's shape holds the GIL for up to a few tenths of a second on a busy CPU.
  assert len(camera.read_at) == 80 and gaps.max() < 0.5, gaps.max()
  assert stats['dropped_frames'] > 0, (stats, events[:6], gaps.max())
  assert stats['frames'] + stats['dropped_frames'] == 80
  assert stats['startup_s'] > 0 and stats['steady_fps'] > 0
