"""The video application: predictor + tracker over a source, with MOTS/YouTube-VIS outputs.

Decoding (reader thread), inference (asynchronous dispatch: the next chunk of frames, one
per device, is sent before the last chunk's results are read back) and tracking (host)
overlap, so the devices do not wait for the CPU. Outputs are written under a temporary directory
inside --out and moved into place only when the run completes.
"""
from __future__ import annotations

import array
import collections
import contextlib
import dataclasses
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np

from hvisnet_jax import atomic
from hvisnet_jax import evaluation
from hvisnet_jax.tracking import camera_motion as camera_motion_lib
from hvisnet_jax.tracking import tracker as tracker_lib
from hvisnet_jax import video as video_lib


# What hvisnet runs write into --out: an earlier run is exactly these entries.
RUN_OUTPUTS = ('tracks.txt', 'results.json', 'stats.json', 'render.mp4', 'masks', 'real',
               'synthetic', 'summary.json')
_PARTIAL = '.partial-'


def _is_run_output(name: str) -> bool:
  return name in RUN_OUTPUTS or (name.startswith('person') and name.endswith('.txt'))


def run_kind(entries) -> Optional[str]:
  """Which command wrote a folder of run outputs: 'track', 'demo' or 'extract-person'."""
  entries = set(entries)
  if entries and entries <= {'real', 'synthetic'}:
    return 'demo'
  if 'summary.json' in entries:
    return 'extract-person'
  if entries & {'tracks.txt', 'stats.json', 'results.json'}:
    return 'track'
  return None


def check_output_dir(out_dir: str, overwrite: bool = False, kind: str = 'track') -> None:
  """Before any slow work: --out can be written, and holds no earlier run unless `overwrite`
  (then that run is replaced whole) and that run is this command's own (`kind`). Files
  that no hvisnet run writes, and other commands' outputs, are never replaced."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise FileExistsError(f'{out_dir}: exists and is not a folder; choose another --out')
  if os.path.isdir(out_dir):
    entries = sorted(e for e in os.listdir(out_dir) if not e.startswith('.'))
    foreign = [e for e in entries if not _is_run_output(e)]
    if foreign:
      raise FileExistsError(f'{out_dir}: holds files that are not an hvisnet run '
                            f'({", ".join(foreign[:5])}); choose a new or empty --out')
    other = run_kind(entries)
    if entries and other != kind:
      raise FileExistsError(f'{out_dir}: holds the output of hvisnet {other or "runs"} '
                            f'({", ".join(entries[:5])}); hvisnet {kind} writes only into a '
                            f'new or empty folder or its own earlier output: choose another '
                            '--out')
    if entries and not overwrite:
      raise FileExistsError(f'{out_dir}: holds an earlier run ({", ".join(entries)}); pass '
                            '--overwrite to replace it, or choose another --out')
    probe = out_dir
  else:
    probe = os.path.dirname(os.path.abspath(out_dir))
    while not os.path.exists(probe):
      probe = os.path.dirname(probe)
  try:                      # a real write: permission bits say nothing to root or on a
    os.rmdir(tempfile.mkdtemp(prefix=_PARTIAL, dir=probe))   # read-only mount
  except OSError as e:
    raise PermissionError(f'{out_dir}: cannot be written ({probe}: {e.strerror})') from None


def _remove_stale_partials(out_dir: str) -> None:
  """Removes .partial-PID-* folders of runs that were killed (their PID is gone)."""
  if not os.path.isdir(out_dir):
    return
  for e in os.listdir(out_dir):
    if not e.startswith(_PARTIAL):
      continue
    pid = e[len(_PARTIAL):].split('-')[0]
    if pid.isdigit() and _alive(int(pid)):
      continue
    shutil.rmtree(os.path.join(out_dir, e), ignore_errors=True)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:                 # someone else's process
    pass
  return True


@contextlib.contextmanager
def staged_output(out_dir: str, overwrite: bool = False, kind: str = 'track'):
  """Yields a temporary folder inside out_dir; only if the block completes does the run in
  it replace out_dir's earlier run, whole (no file of an older run is left beside the new
  ones). An interrupted or failed run leaves no complete-looking files behind, and no
  out_dir it had to create."""
  check_output_dir(out_dir, overwrite, kind)
  created = not os.path.isdir(out_dir)
  try:
    # One run at a time per --out: a second one stops at once (two runs finishing would
    # replace each other's results silently).
    with atomic.folder_lock(out_dir, 'hvisnet run writing there', '--out'):
      check_output_dir(out_dir, overwrite, kind)    # as it is now that we hold it
      _remove_stale_partials(out_dir)
      tmp = tempfile.mkdtemp(prefix=f'{_PARTIAL}{os.getpid()}-', dir=out_dir)
      try:
        yield tmp
        _swap_in(out_dir, tmp)
      finally:
        shutil.rmtree(tmp, ignore_errors=True)
  except BaseException:
    if created and os.path.isdir(out_dir) and set(os.listdir(out_dir)) <= {'.lock'}:
      shutil.rmtree(out_dir, ignore_errors=True)
    raise


def _swap_in(out_dir: str, tmp: str) -> None:
  """Replaces out_dir's earlier run by tmp's entries, whole: the old entries are renamed
  aside first (a symlink moves as a link, nothing it points to is touched), then the new
  ones in; if that fails the old ones go back."""
  aside = tempfile.mkdtemp(prefix=f'{_PARTIAL}{os.getpid()}-old-', dir=out_dir)
  moved, placed = [], []
  try:
    for entry in os.listdir(out_dir):
      if _is_run_output(entry):
        os.replace(os.path.join(out_dir, entry), os.path.join(aside, entry))
        moved.append(entry)
    for entry in os.listdir(tmp):
      os.replace(os.path.join(tmp, entry), os.path.join(out_dir, entry))
      placed.append(entry)
  except BaseException:
    for entry in placed:
      os.replace(os.path.join(out_dir, entry), os.path.join(tmp, entry))
    for entry in moved:
      os.replace(os.path.join(aside, entry), os.path.join(out_dir, entry))
    os.rmdir(aside)
    raise
  shutil.rmtree(aside, ignore_errors=True)     # unlinks symlinks, never follows them


def _ytvis_record(video_id, track_id, height, width, segments, scores) -> dict:
  """One YouTube-VIS result: segments per frame (RLE counts bytes, or None where absent)."""
  segs = [None if c is None else {'size': [height, width], 'counts': c.decode()}
          for c in segments]
  return {'video_id': video_id, 'category_id': 1, 'score': float(np.mean(scores)),
          'segmentations': segs, 'track_id': track_id}


class TrackResult:
  """Per-frame identities of one video, kept in memory as RLE masks (for the API; `hvisnet
  track` streams them to disk with RunFiles instead)."""

  def __init__(self, height: int, width: int):
    self.height, self.width = height, width
    self.frames: List[Dict[int, dict]] = []     # frame -> {track id: {rle, box, score}}

  def add(self, frame_index: int, masks: Dict[int, bytes], boxes, scores):
    """masks: track id -> COCO RLE counts (evaluation.encode_id_map)."""
    while len(self.frames) <= frame_index:
      self.frames.append({})
    for tid, counts in masks.items():
      self.frames[frame_index][tid] = dict(
          rle={'size': [self.height, self.width], 'counts': counts},
          box=boxes.get(tid), score=scores.get(tid, 1.0))

  def add_id_map(self, frame_index: int, id_map: np.ndarray, boxes, scores):
    """add() with the masks of an (H, W) track-id map (0 = nobody)."""
    self.add(frame_index, evaluation.encode_id_map(id_map), boxes, scores)

  def sequence(self, name: str, num_frames: Optional[int] = None) -> evaluation.Sequence:
    n = max(len(self.frames), num_frames or 0)
    seq = evaluation.Sequence.empty(name, n, self.height, self.width)
    for t, dets in enumerate(self.frames):
      for tid, d in sorted(dets.items()):
        seq.add(t, evaluation.mots_object_id(tid), d['rle'])
    return seq

  def ytvis_results(self, video_id: int = 1) -> List[dict]:
    ids = sorted({tid for f in self.frames for tid in f})
    return [_ytvis_record(video_id, tid, self.height, self.width,
                          [f[tid]['rle']['counts'] if tid in f else None for f in self.frames],
                          [f[tid]['score'] for f in self.frames if tid in f])
            for tid in ids]


class RunFiles:
  """`hvisnet track`'s result files, written as frames come, in constant memory.

  tracks.txt (MOTS) gets each frame's lines at once. results.json (YouTube-VIS) needs every
  frame of a track together, so each mask's RLE goes to a spill file and only its frame,
  offset, length and score stay in memory (32 bytes a mask); close() composes
  results.json one track at a time and removes the spill. The files are byte for byte
  what TrackResult + write_mots_txt + json.dump give.
  """

  def __init__(self, directory: str, name: str, height: int, width: int):
    self.dir, self.name = directory, name
    self.height, self.width = height, width
    self.num_frames = 0
    self._mots = open(os.path.join(directory, 'tracks.txt.partial'), 'w')
    self._spill_path = os.path.join(directory, '.segments.spill')
    self._spill = open(self._spill_path, 'wb')
    self._offset = 0
    self._tracks: Dict[int, tuple] = {}       # id -> (frames, offsets, lengths, scores)

  def add(self, frame_index: int, masks: Dict[int, bytes], boxes, scores):
    """masks: track id -> COCO RLE counts (evaluation.encode_id_map)."""
    del boxes
    self.num_frames = max(self.num_frames, frame_index + 1)
    lines = []
    for tid, counts in sorted(masks.items()):
      lines.append(f'{frame_index + 1} {evaluation.mots_object_id(tid)} '
                   f'{evaluation.PEDESTRIAN} {self.height} {self.width} {counts.decode()}\n')
      rec = self._tracks.get(tid)
      if rec is None:
        rec = self._tracks[tid] = (array.array('q'), array.array('q'), array.array('q'),
                                   array.array('d'))
      for column, v in zip(rec, (frame_index, self._offset, len(counts), scores.get(tid, 1.0))):
        column.append(v)
      self._spill.write(counts)
      self._offset += len(counts)
    self._mots.write(''.join(lines))

  @property
  def identities(self) -> int:
    return len(self._tracks)

  def close(self, video_id: int = 1) -> None:
    """Finishes tracks.txt and writes results.json (call once, after the last frame)."""
    self._mots.close()
    os.replace(os.path.join(self.dir, 'tracks.txt.partial'), os.path.join(self.dir, 'tracks.txt'))
    self._spill.close()
    tmp = os.path.join(self.dir, 'results.json.partial')
    with open(self._spill_path, 'rb') as spill, open(tmp, 'w') as f:
      f.write('[')
      for k, tid in enumerate(sorted(self._tracks)):
        frames, offsets, lengths, scores = self._tracks[tid]
        segments = [None] * self.num_frames
        for t, off, n in zip(frames, offsets, lengths):
          spill.seek(off)
          segments[t] = spill.read(n)
        if k:
          f.write(', ')
        json.dump(_ytvis_record(video_id, tid, self.height, self.width, segments,
                                np.frombuffer(scores, np.float64)), f)
      f.write(']')
    os.replace(tmp, os.path.join(self.dir, 'results.json'))
    os.remove(self._spill_path)

  def abort(self) -> None:
    for fh in (self._mots, self._spill):
      fh.close()


def model_tracker_settings(predictor) -> dict:
  """The model config's `tracker` section (TrackerConfig fields) as a dict; {} if none."""
  section = predictor.config.get('tracker') or {}
  return section.to_dict() if hasattr(section, 'to_dict') else dict(section)


def model_tracker_config(predictor, **kw) -> tracker_lib.TrackerConfig:
  """The tracker's defaults with the model's own `tracker` config section on top (the
  built-in real model raises new_track_thresh to 0.6: README, tracker section)."""
  return tracker_lib.TrackerConfig.with_overrides(
      model_tracker_settings(predictor), "the model config's tracker section", **kw)


def track_masks(label_map: np.ndarray, assigned: Dict[int, int]) -> Dict[int, bytes]:
  """{track id: COCO RLE counts} of a frame: the detections' label map encoded in one scan
  and renamed to track ids (the same bytes as encoding the identity map, without building
  it); detections no track took are left out."""
  return {assigned[d]: c for d, c in
          evaluation.encode_id_map(label_map, background=-1).items() if d in assigned}


class _OutputThread(threading.Thread):
  """Per-frame output work (RLE, result files, rendering) off the main thread, in frame
  order. The queue is bounded, so a slow disk holds the pipeline back instead of letting
  frames pile up in memory. An error here is raised in the main thread at its next put."""

  def __init__(self, handle: Callable, depth: int):
    super().__init__(daemon=True, name='hvisnet-output')
    self._handle, self._queue = handle, queue.Queue(maxsize=depth)
    self.error: Optional[BaseException] = None
    self._abort = threading.Event()

  def run(self):
    while True:
      item = self._queue.get()
      if item is None:
        return
      if self.error is None and not self._abort.is_set():
        try:
          self._handle(*item)
        except BaseException as e:        # pylint: disable=broad-except
          e.in_output_stage = True
          self.error = e

  def put(self, item) -> None:
    while True:
      if self.error is not None:
        raise self.error
      try:
        self._queue.put(item, timeout=0.1)
        return
      except queue.Full:
        pass

  def finish(self, abort: bool = False) -> None:
    """Waits for the queued frames (or, with abort, drops them) and stops the thread."""
    if abort:
      self._abort.set()
    while self.is_alive():
      try:
        self._queue.put(None, timeout=0.1)
        break
      except queue.Full:
        pass
    self.join()
    if self.error is not None and not abort:
      raise self.error


def track_source(source, predictor, tracker_config: Optional[tracker_lib.TrackerConfig] = None,
                 on_frame: Optional[Callable] = None, progress: bool = True,
                 max_frames: Optional[int] = None, carry_masks: bool = False,
                 sink=None, in_flight: int = 2, start: int = 0, stride: int = 1,
                 camera_motion: Optional[bool] = None):
  """Runs detection + tracking over a source. Returns (the sink, stats dict).

  The pipeline: decoding (FrameReader's thread) -> up to `in_flight` chunks of frames on the
  devices at once (asynchronous dispatch; a chunk is one frame per device) -> the tracker
  on this thread -> the output thread (sink.add, then on_frame(index, frame, id_map,
  boxes_by_id), frame by frame in order). Queues between the stages are bounded.
  sink: called with the frames' (height, width) at the first frame, it makes what receives
  each frame's masks (`add`): TrackResult (the default, in memory) or RunFiles (to disk).
  start, max_frames, stride: a part of the source (its frames start, start + stride, ...,
  at most max_frames of them); output frame t is source frame start + t * stride.
  camera_motion: estimate the camera's motion between frames for the tracker's
  predictions (TrackerConfig.camera_motion; None: the tracker config's setting).
  carry_masks: report a track missed for a moment (Tracker.coasting) with its last mask
  moved to the predicted box (tracker_lib.MaskCarrier).
  """
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  if in_flight < 1:
    raise ValueError(f'in_flight is {in_flight}; expected at least 1 chunk')
  reader = video_lib.FrameReader(source, start=start, count=max_frames, stride=stride)
  cfg = tracker_config or model_tracker_config(predictor, fps=reader.fps / stride)
  if camera_motion is not None:
    cfg = dataclasses.replace(cfg, camera_motion=camera_motion)
  trk = tracker_lib.Tracker(cfg)
  cmc = camera_motion_lib.CameraMotion() if cfg.camera_motion else None
  carry, last_score = tracker_lib.MaskCarrier(), {}
  times = {'frames': 0, 'track_s': 0.0}
  bar = tqdm(total=reader.frame_count or None, unit='frame', disable=not progress)
  began = time.perf_counter()
  crowd_frames_before = predictor.crowd_frames

  target = None

  def output(idx, frame, label_map, assigned, id_map, boxes, scores):
    nonlocal target
    if target is None:
      target = (sink or TrackResult)(*frame.shape[:2])
    if id_map is None:
      masks = track_masks(label_map, assigned)
    else:
      masks = evaluation.encode_id_map(id_map)
    target.add(idx, masks, boxes, scores)
    if on_frame:
      if id_map is None:
        id_map = tracker_lib.track_id_map(label_map, assigned)
      on_frame(idx, frame, id_map, boxes)
    times['frames'] += 1
    now = time.perf_counter()
    if times['frames'] == 1:
      times['first_s'] = now - began
    bar.update(1)
    if times['frames'] > 1:                  # the steady rate: after the first frame's start-up
      bar.set_postfix(fps=f'{(times["frames"] - 1) / max(now - began - times["first_s"], 1e-9):.1f}')

  writer = _OutputThread(output, depth=8)

  def finish(idx, frame, out):
    t0 = time.perf_counter()
    warp = None if cmc is None else cmc.estimate(frame, out['label_map'] >= 0)
    assigned = trk.update(out['boxes'], out['scores'], out['embeddings'], out['valid'], warp)
    id_map = None
    boxes = {tid: out['boxes'][d] for d, tid in assigned.items()}
    scores = {tid: float(out['scores'][d]) for d, tid in assigned.items()}
    if carry_masks:
      coasting = trk.coasting()
      id_map = carry(tracker_lib.track_id_map(out['label_map'], assigned), boxes, coasting)
      for tid, box in coasting.items():
        if (id_map == tid).any():
          boxes[tid], scores[tid] = box, last_score.get(tid, 0.0)
      last_score.update(scores)
    times['track_s'] += time.perf_counter() - t0
    writer.put((idx, frame, out['label_map'], assigned, id_map, boxes, scores))

  pending = collections.deque()                 # (chunk, Pending), oldest first

  def finish_oldest():
    chunk, handle = pending.popleft()
    outs = predictor.collect(handle)
    for b, (idx, frame) in enumerate(chunk):
      finish(idx, frame, {k: v[b] for k, v in outs.items()})

  chunk, ok = [], False
  writer.start()
  try:
    for idx, frame in reader:
      if frame is None:
        bar.update(1)
        continue
      if not times['frames'] and not pending and not chunk:
        # Every input size this run can use, compiled before its first frame: a crowd pass
        # compiled when the first crowd appears would stall the video mid-way.
        predictor.compile_for(predictor.batch_size, *frame.shape[:2])
      chunk.append((idx, frame))
      if len(chunk) == predictor.batch_size:
        pending.append((chunk, predictor.dispatch(np.stack([f for _, f in chunk]))))
        chunk = []
        if len(pending) >= in_flight:
          finish_oldest()
    if chunk:
      pending.append((chunk, predictor.dispatch(np.stack([f for _, f in chunk]))))
    while pending:
      finish_oldest()
    ok = True
  finally:
    writer.finish(abort=not ok)
    bar.close()
    reader.close()
  wall = time.perf_counter() - began
  startup = times.get('first_s', wall)
  steady = (times['frames'] - 1) / max(wall - startup, 1e-9) if times['frames'] > 1 else 0.0
  stats = dict(frames=times['frames'], wall_s=wall, fps=times['frames'] / max(wall, 1e-9),
               startup_s=startup, steady_fps=steady, dropped_frames=len(reader.dropped),
               tracker_ms_per_frame=1e3 * times['track_s'] / max(times['frames'], 1),
               failed_frames=reader.failed, resized_frames=reader.resized,
               frames_declared=reader.frame_count, frames_read=reader.frames_seen,
               stopped_early=reader.stopped_early, source_fps=reader.fps,
               start=start, stride=stride,
               input_size=int(predictor.config.inference.min_size),
               input_sizes=list(predictor.input_sizes),
               crowd_size=predictor.crowd_size,
               crowd_pass_frames=predictor.crowd_frames - crowd_frames_before,
               max_detections=int(predictor.config.inference.max_detections))
  if target is None:
    raise video_lib.VideoSourceError(f'{source}: no frame could be decoded')
  return target, stats


def track_to_dir(source, predictor, out_dir: str, save_video: bool = False,
                 save_masks: bool = False, progress: bool = True,
                 tracker_config=None, overwrite: bool = False,
                 carry_masks: bool = False, start: int = 0, max_frames: Optional[int] = None,
                 stride: int = 1, in_flight: int = 2,
                 camera_motion: Optional[bool] = None) -> Dict:
  """`hvisnet track`: tracks.txt (MOTS), results.json (YouTube-VIS), render.mp4, masks/.

  Results are written as frames come (RunFiles), inside a staged folder that replaces
  out_dir's earlier run only when the run completes. `overwrite`: replace an earlier run
  in out_dir (default: refuse, see check_output_dir). Returns the stats (also written to
  stats.json) with `identities`.
  """
  with staged_output(out_dir, overwrite) as tmp:
    writer = None
    files = None

    def run_files(height, width):
      nonlocal files
      files = RunFiles(tmp, _source_name(source), height, width)
      return files

    def on_frame(idx, frame, id_map, boxes):
      nonlocal writer
      if save_video:
        if writer is None:
          fps = _source_fps(source) / stride
          writer = video_lib.VideoWriter(os.path.join(tmp, 'render.mp4'), fps, frame.shape[:2])
        writer.write(video_lib.render(frame, id_map, boxes))
      if save_masks:
        for tid in np.flatnonzero(np.bincount(id_map.ravel()))[1:]:
          d = os.path.join(tmp, 'masks', f'{int(tid):04d}')
          os.makedirs(d, exist_ok=True)
          cv2.imwrite(os.path.join(d, f'{idx:05d}.png'), (id_map == tid).astype(np.uint8) * 255)
    try:
      _, stats = track_source(source, predictor, tracker_config,
                              on_frame if save_video or save_masks else None, progress,
                              carry_masks=carry_masks, sink=run_files, start=start,
                              max_frames=max_frames, stride=stride, in_flight=in_flight,
                              camera_motion=camera_motion)
      files.close()
    except BaseException as e:
      if files is not None:
        files.abort()
      if writer is not None:
        writer.abort()
        writer = None
      if isinstance(e, OSError) and getattr(e, 'in_output_stage', False) and not e.filename:
        # e.g. a full disk under --out
        raise OSError(e.errno, f'{out_dir}: writing the results failed ({e.strerror}); '
                      'nothing was kept of this run and an earlier run there is unchanged'
                      ) from e
      raise
    finally:
      if writer is not None:
        writer.close()
    stats['identities'] = files.identities
    with open(os.path.join(tmp, 'stats.json'), 'w') as f:
      json.dump(stats, f, indent=2)
  return stats


def _source_fps(source) -> float:
  if isinstance(source, str) and os.path.isfile(source):
    cap = cv2.VideoCapture(source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    return fps
  return 30.0


def _source_name(source) -> str:
  if isinstance(source, str):
    return os.path.splitext(os.path.basename(os.path.normpath(source)))[0] or 'video'
  return f'camera{source}'


DEMO_CLIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'assets',
                         'basketball_gym.mp4')          # real, held out of training; CREDITS.md


def demo(out_dir: str, frames: int = 48, height: int = 240, width: int = 320, seed: int = 7,
         preset: str = 'easy', predictor=None, synthetic_predictor=None,
         real_clip: Optional[str] = DEMO_CLIP, progress: bool = True,
         overwrite: bool = False) -> Dict:
  """The built-in main job, two clips:

  real/       the real clip shipped with the package -> `predictor` (default: the built-in
              real model) + tracker: tracks.txt, results.json, render.mp4 (no ground truth);
  synthetic/  a synthetic video with exact ground truth -> `synthetic_predictor` (default:
              the built-in synthetic model) + tracker -> MOTS metrics.
  """
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.synthetic import synth
  predictor = predictor or predictor_lib.Predictor.from_export()
  synthetic_predictor = synthetic_predictor or predictor_lib.Predictor.from_export('synthetic')
  video = synth.render_video(seed, 0, frames, height, width, preset)
  out = {}
  with staged_output(out_dir, overwrite, kind='demo') as tmp:
    if real_clip:
      real = track_to_dir(real_clip, predictor, os.path.join(tmp, 'real'), save_video=True,
                          progress=progress)
      out['real'] = dict(clip=real_clip, **real)
    syn = os.path.join(tmp, 'synthetic')
    os.makedirs(os.path.join(syn, 'gt'))
    os.makedirs(os.path.join(syn, 'pred'))
    video.write_mp4(os.path.join(syn, 'input.mp4'))
    gt = video.ground_truth()
    evaluation.write_mots_txt(os.path.join(syn, 'gt', f'{video.name}.txt'), gt)
    track_dir = os.path.join(syn, 'track')
    res = track_to_dir(os.path.join(syn, 'input.mp4'), synthetic_predictor, track_dir,
                       save_video=True, progress=progress)
    pred = evaluation.read_mots_txt(os.path.join(track_dir, 'tracks.txt'), name=video.name,
                                    like=gt)
    evaluation.write_mots_txt(os.path.join(syn, 'pred', f'{video.name}.txt'), pred)
    os.replace(os.path.join(track_dir, 'render.mp4'), os.path.join(syn, 'render.mp4'))
    shutil.rmtree(track_dir)
    metrics = evaluation.evaluate_mots({video.name: gt}, {video.name: pred})
    with open(os.path.join(syn, 'metrics.json'), 'w') as f:
      json.dump(metrics, f, indent=2)
    out['synthetic'] = res
  return dict(metrics=metrics, stats=out['synthetic'], real=out.get('real'))
