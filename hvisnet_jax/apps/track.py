"""The video application: predictor + tracker over a source, with MOTS/YouTube-VIS outputs.

Decoding (reader thread), inference (asynchronous dispatch: the next chunk of frames, one
per device, is sent before the last chunk's results are read back) and tracking (host)
overlap, so the devices do not wait for the CPU. Outputs are written under a temporary directory
inside --out and moved into place only when the run completes.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from hvisnet_jax import evaluation
from hvisnet_jax.tracking import tracker as tracker_lib
from hvisnet_jax import video as video_lib


# What hvisnet runs write into --out: an earlier run is exactly these entries.
RUN_OUTPUTS = ('tracks.txt', 'results.json', 'stats.json', 'render.mp4', 'masks', 'real',
               'synthetic', 'summary.json')
_PARTIAL = '.partial-'


def _is_run_output(name: str) -> bool:
  return name in RUN_OUTPUTS or (name.startswith('person') and name.endswith('.txt'))


def check_output_dir(out_dir: str, overwrite: bool = False) -> None:
  """Before any slow work: --out can be written, and holds no earlier run unless `overwrite`
  (then that run is replaced whole). Files that no hvisnet run writes are never replaced."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise FileExistsError(f'{out_dir}: exists and is not a folder; choose another --out')
  if os.path.isdir(out_dir):
    entries = sorted(e for e in os.listdir(out_dir) if not e.startswith('.'))
    foreign = [e for e in entries if not _is_run_output(e)]
    if foreign:
      raise FileExistsError(f'{out_dir}: holds files that are not an hvisnet run '
                            f'({", ".join(foreign[:5])}); choose a new or empty --out')
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
def staged_output(out_dir: str, overwrite: bool = False):
  """Yields a temporary folder inside out_dir; only if the block completes does the run in
  it replace out_dir's earlier run, whole (no file of an older run is left beside the new
  ones). An interrupted or failed run leaves no complete-looking files behind, and no
  out_dir it had to create."""
  check_output_dir(out_dir, overwrite)
  _remove_stale_partials(out_dir)
  created = not os.path.isdir(out_dir)
  os.makedirs(out_dir, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f'{_PARTIAL}{os.getpid()}-', dir=out_dir)
  try:
    yield tmp
    for entry in os.listdir(out_dir):
      if _is_run_output(entry):
        path = os.path.join(out_dir, entry)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    for entry in os.listdir(tmp):
      os.replace(os.path.join(tmp, entry), os.path.join(out_dir, entry))
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    if created and not os.listdir(out_dir):
      os.rmdir(out_dir)
    raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


class TrackResult:
  """Per-frame identities of one video, kept as RLE masks."""

  def __init__(self, height: int, width: int):
    self.height, self.width = height, width
    self.frames: List[Dict[int, dict]] = []     # frame -> {track id: {rle, box, score}}

  def add(self, frame_index: int, id_map: np.ndarray, boxes, scores):
    while len(self.frames) <= frame_index:
      self.frames.append({})
    # bincount, not np.unique: on a 640x480 map it is ~10x faster (np.unique hashes).
    present = np.flatnonzero(np.bincount(id_map.ravel().clip(0)))
    # One column-major copy: each comparison is then column-major already, and its bool
    # bytes are the uint8 mask pycocotools wants (13 -> 9 ms for 14 people at 768x576).
    id_map_f = np.asfortranarray(id_map)
    for tid in present[present > 0]:
      m = (id_map_f == tid).view(np.uint8)
      self.frames[frame_index][int(tid)] = dict(rle=mask_utils.encode(m),
                                                box=boxes.get(int(tid)),
                                                score=scores.get(int(tid), 1.0))

  def sequence(self, name: str, num_frames: Optional[int] = None) -> evaluation.Sequence:
    n = max(len(self.frames), num_frames or 0)
    seq = evaluation.Sequence.empty(name, n, self.height, self.width)
    for t, dets in enumerate(self.frames):
      for tid, d in sorted(dets.items()):
        seq.add(t, evaluation.mots_object_id(tid), d['rle'])
    return seq

  def ytvis_results(self, video_id: int = 1) -> List[dict]:
    ids = sorted({tid for f in self.frames for tid in f})
    out = []
    for tid in ids:
      segs, scores = [], []
      for f in self.frames:
        d = f.get(tid)
        if d is None:
          segs.append(None)
          continue
        segs.append({'size': [self.height, self.width], 'counts': d['rle']['counts'].decode()})
        scores.append(d['score'])
      out.append({'video_id': video_id, 'category_id': 1, 'score': float(np.mean(scores)),
                  'segmentations': segs, 'track_id': tid})
    return out


def model_tracker_settings(predictor) -> dict:
  """The model config's `tracker` section (TrackerConfig fields) as a dict; {} if none."""
  section = predictor.config.get('tracker') or {}
  return section.to_dict() if hasattr(section, 'to_dict') else dict(section)


def model_tracker_config(predictor, **kw) -> tracker_lib.TrackerConfig:
  """The tracker's defaults with the model's own `tracker` config section on top (the
  built-in real model raises new_track_thresh to 0.6: README, tracker section)."""
  return tracker_lib.TrackerConfig.with_overrides(
      model_tracker_settings(predictor), "the model config's tracker section", **kw)


def track_source(source, predictor, tracker_config: Optional[tracker_lib.TrackerConfig] = None,
                 on_frame: Optional[Callable] = None, progress: bool = True,
                 max_frames: Optional[int] = None, carry_masks: bool = False):
  """Runs detection + tracking over a source. Returns (TrackResult, stats dict).

  on_frame(index, frame, id_map, boxes_by_id) is called for every decoded frame in order.
  carry_masks: report a track missed for a moment (Tracker.coasting) with its last mask
  moved to the predicted box (tracker_lib.MaskCarrier). Off by default: on the held-out
  real clips it added more false masks than it recovered (README, tracker section).
  """
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  reader = video_lib.FrameReader(source)
  cfg = tracker_config or model_tracker_config(predictor, fps=reader.fps)
  trk = tracker_lib.Tracker(cfg)
  carry, last_score = tracker_lib.MaskCarrier(), {}
  result = None
  times = {'frames': 0, 'track_s': 0.0}
  bar = tqdm(total=reader.frame_count or None, unit='frame', disable=not progress)

  def finish(idx, frame, out):
    nonlocal result
    t0 = time.perf_counter()
    assigned = trk.update(out['boxes'], out['scores'], out['embeddings'], out['valid'])
    id_map = tracker_lib.track_id_map(out['label_map'], assigned)
    boxes = {tid: out['boxes'][d] for d, tid in assigned.items()}
    scores = {tid: float(out['scores'][d]) for d, tid in assigned.items()}
    if carry_masks:
      coasting = trk.coasting()
      id_map = carry(id_map, boxes, coasting)
      for tid, box in coasting.items():
        if (id_map == tid).any():
          boxes[tid], scores[tid] = box, last_score.get(tid, 0.0)
      last_score.update(scores)
    times['track_s'] += time.perf_counter() - t0
    if result is None:
      result = TrackResult(*frame.shape[:2])
    result.add(idx, id_map, boxes, scores)
    if on_frame:
      on_frame(idx, frame, id_map, boxes)
    times['frames'] += 1
    bar.update(1)
    bar.set_postfix(fps=f'{times["frames"] / max(time.perf_counter() - start, 1e-9):.1f}')

  def finish_chunk(chunk, pending):
    outs = predictor.collect(pending)
    for b, (idx, frame) in enumerate(chunk):
      finish(idx, frame, {k: v[b] for k, v in outs.items()})

  # Frames go to the predictor in chunks of its batch size (one per device); chunk k+1 is
  # dispatched before chunk k's results are read back and tracked.
  start = time.perf_counter()
  in_flight, chunk = None, []

  def send():
    nonlocal in_flight, chunk
    dispatched = (chunk, predictor.dispatch(np.stack([f for _, f in chunk])))
    chunk = []
    if in_flight is not None:
      finish_chunk(*in_flight)
    in_flight = dispatched

  try:
    for idx, frame in reader:
      if max_frames is not None and idx >= max_frames:
        break
      if frame is None:
        bar.update(1)
        continue
      chunk.append((idx, frame))
      if len(chunk) == predictor.batch_size:
        send()
    if chunk:
      send()
    if in_flight is not None:
      finish_chunk(*in_flight)
  finally:
    bar.close()
    reader.close()
  wall = time.perf_counter() - start
  stats = dict(frames=times['frames'], wall_s=wall, fps=times['frames'] / max(wall, 1e-9),
               tracker_ms_per_frame=1e3 * times['track_s'] / max(times['frames'], 1),
               failed_frames=reader.failed, resized_frames=reader.resized,
               frames_declared=reader.frame_count, frames_read=reader.frames_seen,
               stopped_early=reader.stopped_early, source_fps=reader.fps)
  if result is None:
    raise video_lib.VideoSourceError(f'{source}: no frame could be decoded')
  return result, stats


def track_to_dir(source, predictor, out_dir: str, save_video: bool = False,
                 save_masks: bool = False, progress: bool = True,
                 tracker_config=None, overwrite: bool = False,
                 carry_masks: bool = False) -> Dict:
  """`hvisnet track`: tracks.txt (MOTS), results.json (YouTube-VIS), render.mp4, masks/.

  `overwrite`: replace an earlier run in out_dir (default: refuse, see check_output_dir).
  """
  with staged_output(out_dir, overwrite) as tmp:
    writer = None
    fps = _source_fps(source)

    def on_frame(idx, frame, id_map, boxes):
      nonlocal writer
      if save_video:
        if writer is None:
          writer = video_lib.VideoWriter(os.path.join(tmp, 'render.mp4'), fps, frame.shape[:2])
        writer.write(video_lib.render(frame, id_map, boxes))
      if save_masks:
        for tid in np.unique(id_map):
          if tid > 0:
            d = os.path.join(tmp, 'masks', f'{int(tid):04d}')
            os.makedirs(d, exist_ok=True)
            cv2.imwrite(os.path.join(d, f'{idx:05d}.png'), (id_map == tid).astype(np.uint8) * 255)
    try:
      result, stats = track_source(source, predictor, tracker_config, on_frame, progress,
                                   carry_masks=carry_masks)
    finally:
      if writer is not None:
        writer.close()
    evaluation.write_mots_txt(os.path.join(tmp, 'tracks.txt'),
                              result.sequence(_source_name(source)))
    with open(os.path.join(tmp, 'results.json'), 'w') as f:
      json.dump(result.ytvis_results(), f)
    with open(os.path.join(tmp, 'stats.json'), 'w') as f:
      json.dump(stats, f, indent=2)
  return dict(stats, result=result)


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
         real_clip: Optional[str] = DEMO_CLIP, progress: bool = True) -> Dict:
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
  with staged_output(out_dir, overwrite=True) as tmp:      # a demo replaces the last demo
    if real_clip:
      real = track_to_dir(real_clip, predictor, os.path.join(tmp, 'real'), save_video=True,
                          progress=progress)
      out['real'] = dict(clip=real_clip, identities=len({t for f in real['result'].frames
                                                         for t in f}),
                         **{k: v for k, v in real.items() if k != 'result'})
    syn = os.path.join(tmp, 'synthetic')
    os.makedirs(os.path.join(syn, 'gt'))
    os.makedirs(os.path.join(syn, 'pred'))
    video.write_mp4(os.path.join(syn, 'input.mp4'))
    gt = video.ground_truth()
    evaluation.write_mots_txt(os.path.join(syn, 'gt', f'{video.name}.txt'), gt)
    track_dir = os.path.join(syn, 'track')
    res = track_to_dir(os.path.join(syn, 'input.mp4'), synthetic_predictor, track_dir,
                       save_video=True, progress=progress)
    pred = res['result'].sequence(video.name, frames)
    evaluation.write_mots_txt(os.path.join(syn, 'pred', f'{video.name}.txt'), pred)
    os.replace(os.path.join(track_dir, 'render.mp4'), os.path.join(syn, 'render.mp4'))
    shutil.rmtree(track_dir)
    metrics = evaluation.evaluate_mots({video.name: gt}, {video.name: pred})
    with open(os.path.join(syn, 'metrics.json'), 'w') as f:
      json.dump(metrics, f, indent=2)
    out['synthetic'] = {k: v for k, v in res.items() if k != 'result'}
  return dict(metrics=metrics, stats=out['synthetic'], real=out.get('real'))
