"""The video application: predictor + tracker over a source, with MOTS/YouTube-VIS outputs.

Decoding (reader thread), inference (asynchronous dispatch: the next chunk of frames, one
per device, is sent before the last chunk's results are read back) and tracking (host)
overlap, so the devices do not wait for the CPU. Outputs are written under a temporary directory
inside --out and moved into place only when the run completes (atomic.staged_output). The
result formats are written in evaluation/results.py; the demo is apps/demo.py.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import queue
import threading
import time
from typing import Callable, Dict, Optional

import cv2
import numpy as np

from hvisnet_jax import atomic
from hvisnet_jax import evaluation
from hvisnet_jax.evaluation import results
from hvisnet_jax.evaluation.results import RunFiles, TrackResult
from hvisnet_jax.tracking import camera_motion as camera_motion_lib
from hvisnet_jax.tracking import config as tracking_config
from hvisnet_jax.tracking import masks as masks_lib
from hvisnet_jax.tracking import tracker as tracker_lib
from hvisnet_jax import video as video_lib


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
                 sink: Optional[Callable[[int, int], results.ResultSink]] = None,
                 in_flight: int = 2, start: int = 0, stride: int = 1,
                 camera_motion: Optional[bool] = None):
  """Runs detection + tracking over a source. Returns (the sink, stats dict).

  The pipeline: decoding (FrameReader's thread) -> up to `in_flight` chunks of frames on the
  devices at once (asynchronous dispatch; a chunk is one frame per device) -> the tracker
  on this thread -> the output thread (sink.add, then on_frame(index, frame, id_map,
  boxes_by_id), frame by frame in order). Queues between the stages are bounded.
  sink: called with the frames' (height, width) at the first frame, it makes the
  results.ResultSink that receives each frame's masks: TrackResult (the default, in
  memory) or RunFiles (to disk).
  start, max_frames, stride: a part of the source (its frames start, start + stride, ...,
  at most max_frames of them); output frame t is source frame start + t * stride.
  camera_motion: estimate the camera's motion between frames for the tracker's
  predictions (TrackerConfig.camera_motion; None: the tracker config's setting).
  carry_masks: report a track missed for a moment (Tracker.coasting) with its last mask
  moved to the predicted box (masks_lib.MaskCarrier).
  """
  if in_flight < 1:
    raise ValueError(f'in_flight is {in_flight}; expected at least 1 chunk')
  reader = video_lib.FrameReader(source, start=start, count=max_frames, stride=stride)
  cfg = tracker_config or tracking_config.for_model(predictor.config, fps=reader.fps / stride)
  if camera_motion is not None:
    cfg = dataclasses.replace(cfg, camera_motion=camera_motion)
  loop = _FrameLoop(predictor, reader, cfg, sink or TrackResult, on_frame, carry_masks,
                    progress)
  crowd_frames_before = predictor.crowd_frames
  loop.run(in_flight)
  if loop.target is None:
    raise video_lib.VideoSourceError(f'{source}: no frame could be decoded')
  stats = loop.stats()
  stats.update(start=start, stride=stride,
               input_size=int(predictor.config.inference.min_size),
               input_sizes=list(predictor.input_sizes), crowd_size=predictor.crowd_size,
               crowd_pass_frames=predictor.crowd_frames - crowd_frames_before,
               max_detections=int(predictor.config.inference.max_detections))
  return loop.target, stats


class _FrameLoop:
  """track_source's stages for one run: dispatch (run), the tracker (track_frame) and the
  output thread's work (output), with the run's counters."""

  def __init__(self, predictor, reader, cfg, make_sink, on_frame, carry_masks, progress):
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    self.predictor, self.reader, self.make_sink = predictor, reader, make_sink
    self.on_frame, self.carry_masks = on_frame, carry_masks
    self.trk = tracker_lib.Tracker(cfg)
    self.cmc = camera_motion_lib.CameraMotion() if cfg.camera_motion else None
    self.carry, self.last_score = masks_lib.MaskCarrier(), {}
    self.times = {'frames': 0, 'track_s': 0.0}
    self.bar = tqdm(total=reader.frame_count or None, unit='frame', disable=not progress)
    self.target = None
    self.writer = _OutputThread(self.output, depth=8)
    self.began = time.perf_counter()

  def output(self, idx, frame, label_map, assigned, id_map, boxes, scores):
    """On the output thread, frame by frame in order: the sink, on_frame, the progress."""
    if self.target is None:
      self.target = self.make_sink(*frame.shape[:2])
    if id_map is None:
      masks = track_masks(label_map, assigned)
    else:
      masks = evaluation.encode_id_map(id_map)
    self.target.add(idx, masks, boxes, scores)
    if self.on_frame:
      if id_map is None:
        id_map = masks_lib.track_id_map(label_map, assigned)
      self.on_frame(idx, frame, id_map, boxes)
    times = self.times
    times['frames'] += 1
    now = time.perf_counter()
    if times['frames'] == 1:
      times['first_s'] = now - self.began
    self.bar.update(1)
    if times['frames'] > 1:                  # the steady rate: after the first frame's start-up
      rate = (times['frames'] - 1) / max(now - self.began - times['first_s'], 1e-9)
      self.bar.set_postfix(fps=f'{rate:.1f}')

  def track_frame(self, idx, frame, out):
    """The tracker on one frame's predictions; the result goes to the output thread."""
    t0 = time.perf_counter()
    warp = None if self.cmc is None else self.cmc.estimate(frame, out['label_map'] >= 0)
    assigned = self.trk.update(out['boxes'], out['scores'], out['embeddings'], out['valid'],
                               warp)
    id_map = None
    boxes = {tid: out['boxes'][d] for d, tid in assigned.items()}
    scores = {tid: float(out['scores'][d]) for d, tid in assigned.items()}
    if self.carry_masks:
      coasting = self.trk.coasting()
      id_map = self.carry(masks_lib.track_id_map(out['label_map'], assigned), boxes, coasting)
      for tid, box in coasting.items():
        if (id_map == tid).any():
          boxes[tid], scores[tid] = box, self.last_score.get(tid, 0.0)
      self.last_score.update(scores)
    self.times['track_s'] += time.perf_counter() - t0
    self.writer.put((idx, frame, out['label_map'], assigned, id_map, boxes, scores))

  def run(self, in_flight: int) -> None:
    """Reads, dispatches chunks (one frame per device), keeps `in_flight` on the devices."""
    pred, pending, chunk, ok = self.predictor, collections.deque(), [], False

    def finish_oldest():
      frames, handle = pending.popleft()
      outs = pred.collect(handle)
      for b, (idx, frame) in enumerate(frames):
        self.track_frame(idx, frame, {k: v[b] for k, v in outs.items()})

    self.writer.start()
    try:
      for idx, frame in self.reader:
        if frame is None:
          self.bar.update(1)
          continue
        if not self.times['frames'] and not pending and not chunk:
          # Every input size this run can use, compiled before its first frame: a crowd
          # pass compiled when the first crowd appears would stall the video mid-way.
          pred.compile_for(pred.batch_size, *frame.shape[:2])
        chunk.append((idx, frame))
        if len(chunk) == pred.batch_size:
          pending.append((chunk, pred.dispatch(np.stack([f for _, f in chunk]))))
          chunk = []
          if len(pending) >= in_flight:
            finish_oldest()
      if chunk:
        pending.append((chunk, pred.dispatch(np.stack([f for _, f in chunk]))))
      while pending:
        finish_oldest()
      ok = True
    finally:
      self.writer.finish(abort=not ok)
      self.bar.close()
      self.reader.close()

  def stats(self) -> Dict:
    reader, times = self.reader, self.times
    wall = time.perf_counter() - self.began
    startup = times.get('first_s', wall)
    steady = (times['frames'] - 1) / max(wall - startup, 1e-9) if times['frames'] > 1 else 0.0
    return dict(frames=times['frames'], wall_s=wall, fps=times['frames'] / max(wall, 1e-9),
                startup_s=startup, steady_fps=steady, dropped_frames=len(reader.dropped),
                tracker_ms_per_frame=1e3 * times['track_s'] / max(times['frames'], 1),
                failed_frames=reader.failed, resized_frames=reader.resized,
                frames_declared=reader.frame_count, frames_read=reader.frames_seen,
                stopped_early=reader.stopped_early, source_fps=reader.fps)


def track_to_dir(source, predictor, out_dir: str, save_video: bool = False,
                 save_masks: bool = False, progress: bool = True,
                 tracker_config=None, overwrite: bool = False,
                 carry_masks: bool = False, start: int = 0, max_frames: Optional[int] = None,
                 stride: int = 1, in_flight: int = 2,
                 camera_motion: Optional[bool] = None) -> Dict:
  """`hvisnet track`: tracks.txt (MOTS), results.json (YouTube-VIS), render.mp4, masks/.

  Results are written as frames come (RunFiles), inside a staged folder that replaces
  out_dir's earlier run only when the run completes. `overwrite`: replace an earlier run
  in out_dir (default: refuse, see atomic.check_output_dir). Returns the stats (also written to
  stats.json) with `identities`.
  """
  with atomic.staged_output(out_dir, overwrite) as tmp:
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
