"""`hvisnet pseudo-label`: real footage in, teacher masks with tracked identities out.

Per frame the teacher (data_pipelines/yolo_teacher.py: YOLO-seg, optionally with BlazePose
masks; or teacher.py: SSDLite + BlazePose) gives person boxes and masks; our
tracker links them into identities. What the teacher's flicker needs, ours:
- detections down to `low_thresh` feed the tracker, so a person whose score dips for a
  frame keeps its track (a low-score second chance; only scores >= 0.5 start a track);
- appearance for re-identification is an HSV histogram of each box's centre;
- tracks seen in fewer than `min_track_len` frames are dropped (flicker, false positives);
- masks are painted only for tracked people, non-overlapping.

Output (what `hvisnet build-dataset --format ytvis` reads):
  OUT/annotations.json        YouTube-VIS, one video per source, category 1 = person
  OUT/JPEGImages/NAME/*.jpg   the labelled frames (long side <= max_side)
  OUT/mots/NAME.txt           the same labels as MOTS txt (class 2, ids 2000 + track;
                              class 10 = ignore: people seen but not labelled)
  OUT/parts/NAME.json         per-source results: a rerun skips sources already done
Every file is written to a temporary name and renamed, so an interrupted run leaves no
half-written annotation file; rerunning resumes at the first unfinished source.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from hvisnet_jax import atomic, evaluation, storage
from hvisnet_jax.tracking import tracker as tracker_lib
from hvisnet_jax import video as video_lib
from hvisnet_jax.data_pipelines import teacher as teacher_lib
from hvisnet_jax.data_pipelines import yolo_teacher
from hvisnet_jax.tracking import config as tracking_config


IGNORE_ID = 10000                      # MOTS ignore regions (class evaluation.IGNORE)


@dataclasses.dataclass
class Options:
  every: int = 1                 # keep every n-th frame
  max_frames: int = 0            # per source, after `every`; 0 = all
  max_side: int = 960            # frames are downscaled so that the long side fits
  teacher: str = 'yolov5s-seg'   # yolov5s-seg | yolov7-seg | ssdlite (data_pipelines/yolo_teacher.py)
  teacher_size: int = 960        # YOLO letterbox long side (crowds need more than 640)
  masks: str = 'agree'           # YOLO teachers: yolo | blazepose | max | agree | pose
  tiles: int = 2                 # ssdlite teacher tiling (0 = whole frame only)
  low_thresh: float = 0.3        # detections fed to the tracker
  ignore_thresh: float = 0.2     # detections left unlabelled above this become ignore regions
  new_track_thresh: float = 0.5
  min_track_len: int = 3         # frames (after `every`)
  jpeg_quality: int = 90
  # Crowd-counting folders (SOURCE/../heads.json, {file: [[x, y], ...]}): a head point that
  # no labelled person claims marks a person the teacher missed; it becomes an ignore
  # region, so the student is not taught that person is background.
  heads: bool = False
  # Frames that are unrelated photographs (or a camera sampled seconds apart): nothing
  # links them, so every detection scoring >= new_track_thresh is a person of its own in
  # its frame (tracked linking would join strangers across photos, or leave a person
  # unlabelled whose track never confirmed).
  photos: bool = False

  def key(self) -> dict:
    """What a part was labelled with (a rerun relabels a source only when it differs).
    The switches heads and photos appear only when on: off, they change nothing."""
    return _options_key(dataclasses.asdict(self))


def _options_key(options: dict) -> dict:
  """Options as compared between runs: the switches heads and photos only when on."""
  return {k: v for k, v in options.items() if v or k not in ('heads', 'photos')}


def source_name(source: str) -> str:
  """The name a source's outputs go under (OUT/JPEGImages/NAME, mots/NAME.txt, ...).

  Taken from the absolute path, so '.', '..' and 'dir/' name the folder itself, and made
  safe: only letters, digits, '.', '-' and '_', never starting with '.', so a name can
  never reach outside OUT or onto another source's files.
  """
  path = os.path.normpath(os.path.abspath(source))
  base = os.path.basename(path)
  if base in ('JPEGImages', 'img1', 'images', 'frames'):    # DAVIS, MOTChallenge, ... layouts
    base = os.path.basename(os.path.dirname(path))
  stem, ext = os.path.splitext(base)
  name = stem if ext.lower() in ('.mp4', '.avi', '.mkv', '.mov', '.gif', '.webm') else base
  name = re.sub(r'[^A-Za-z0-9._-]', '_', name).lstrip('.')
  return name or 'source'


def _scaled(rgb: np.ndarray, max_side: int) -> np.ndarray:
  h, w = rgb.shape[:2]
  s = min(1.0, max_side / max(h, w))
  if s >= 1.0:
    return rgb
  return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _current_assignment(trk: tracker_lib.Tracker) -> Dict[int, int]:
  """{detection index: track id} for every track updated this frame, unconfirmed included
  (a new person's first frame belongs to its track once the track survives)."""
  return {t.det_index: t.track_id for t in trk.tracked
          if t.frame_id == trk.frame_id and t.track_id}


def label_source(source: str, teacher, opts: Options, image_dir: str,
                 progress: Optional[Callable] = None) -> dict:
  """Pseudo-labels one video or image folder; returns its part record (see module doc)."""
  reader = video_lib.FrameReader(source)
  heads_path, heads = _read_heads(source) if opts.heads else ('', None)
  fps = reader.fps / max(1, opts.every)
  # The linking tracker is pinned to the settings the committed model's pseudo-labels were
  # made with, not to the tracker's defaults: the later defaults (appearance gallery,
  # re-identification after 15 lost frames, the chi2 0.99 motion gate, tracked tracks
  # keeping overlapped detections) were chosen by scoring against these labels,
  # and ground truth that moved with the tracker under test would measure nothing.
  trk = tracker_lib.Tracker(tracking_config.build(
      det_thresh=opts.low_thresh, new_track_thresh=opts.new_track_thresh, fps=max(fps, 1.0),
      **tracking_config.AUTHORS_MATCHING))
  frames: List[str] = []
  per_track: Dict[int, Dict[int, dict]] = {}
  seen: List[List[tuple]] = []          # per frame: (box, track id or 0) of every detection
  skipped, size = 0, None
  head_points: List[np.ndarray] = []    # per kept frame, in its (scaled) pixels
  os.makedirs(image_dir, exist_ok=True)
  bar = progress(total=(reader.frame_count // max(1, opts.every)) or None,
                 desc=source_name(source)) if progress else None
  try:
    for idx, rgb in reader:
      if idx % opts.every:
        continue
      if opts.max_frames and len(frames) >= opts.max_frames:
        break
      if rgb is None:
        skipped += 1
        continue
      original_hw = rgb.shape[:2]
      rgb = _scaled(rgb, opts.max_side)
      if size is None:
        size = rgb.shape[:2]
      elif rgb.shape[:2] != size:                   # odd frame size: fit it to the video's
        rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
      if heads is not None:
        file = os.path.basename(reader.files[idx])
        if file not in heads:
          raise ValueError(f'{heads_path}: no entry for {file!r}; expected a list of [x, y] '
                           'head points for every image of the folder')
        pts = np.asarray(heads[file], np.float64).reshape(-1, 2)
        head_points.append(pts * [size[1] / original_hw[1], size[0] / original_hw[0]])
      t = len(frames)
      name = f'{t:05d}.jpg'
      cv2.imwrite(os.path.join(image_dir, name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                  [cv2.IMWRITE_JPEG_QUALITY, opts.jpeg_quality])
      frames.append(name)
      det = teacher.detect(rgb)
      if opts.photos:
        people = np.flatnonzero(det.scores >= opts.new_track_thresh)
        assign = {int(d): len(per_track) + 1 + j for j, d in enumerate(people)}
        for tid in assign.values():
          per_track.setdefault(tid, {})
      else:
        strong = det.scores >= opts.low_thresh
        trk.update(det.boxes[strong], det.scores[strong],
                   teacher_lib.appearance(rgb, det.boxes[strong]))
        assign = {int(np.flatnonzero(strong)[d]): tid
                  for d, tid in _current_assignment(trk).items()}
      seen.append([([float(v) for v in det.boxes[d]], assign.get(d, 0))
                   for d in range(len(det.boxes))])
      if assign:
        dets = np.array(sorted(assign))
        label = teacher.masks(rgb, det.boxes[dets], det.scores[dets])
        for j, d in enumerate(dets):
          m = label == j
          if m.any():
            rle = evaluation.encode_mask(m)
            rle['counts'] = rle['counts'].decode()
            per_track.setdefault(assign[int(d)], {})[t] = rle
      if bar:
        bar.update(1)
  finally:
    reader.close()
    if bar:
      bar.close()
  least = 1 if opts.photos else opts.min_track_len
  kept = {tid: f for tid, f in per_track.items() if len(f) >= least}
  # People the teacher saw but that carry no label (weak, unlinked or too short a track):
  # ignore regions, so that training does not learn them as background.
  ignore = {str(t): [box for box, tid in dets if tid not in kept or t not in kept[tid]]
            for t, dets in enumerate(seen)}
  for t, pts in enumerate(head_points):
    claimed = [mask_utils.toBbox(f[t]) for f in kept.values() if t in f]
    ignore[str(t)] += unclaimed_head_regions(pts, claimed, size)
  return dict(name=source_name(source), source=os.path.abspath(source), frames=frames,
              height=int(size[0]) if size else 0, width=int(size[1]) if size else 0,
              fps=fps, skipped_frames=skipped,
              dropped_tracks=len(per_track) - len(kept),
              tracks={str(tid): {str(t): rle for t, rle in sorted(f.items())}
                      for tid, f in sorted(kept.items())},
              ignore={t: b for t, b in ignore.items() if b},
              options=opts.key())


def _read_heads(source: str):
  """(path, {file name: [[x, y], ...]}) of the heads.json beside an image folder."""
  path = os.path.join(os.path.dirname(os.path.normpath(os.path.abspath(source))), 'heads.json')
  if not os.path.isdir(source):
    raise ValueError(f'{source}: heads=True needs an image folder (its heads.json names files)')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: not found; heads=True reads the head points of SOURCE '
                            'from heads.json beside it ({file: [[x, y], ...]})')
  with open(path) as f:
    heads = json.load(f)
  if not isinstance(heads, dict):
    raise ValueError(f'{path}: expected an object {{file name: [[x, y], ...]}}')
  return path, heads


def unclaimed_head_regions(points: np.ndarray, claimed_xywh: Sequence, hw) -> List[list]:
  """Ignore boxes (x1, y1, x2, y2) for head points no labelled person claims.

  A person claims a head inside its box's width and top third. An unclaimed head's size is
  taken from its neighbours (a third of the mean distance to the 3 nearest heads, the
  crowd-counting rule of geometry-adaptive kernels); its region spans 2.4 head widths and
  from just above the head to 6 head heights below it, clipped to the frame.
  """
  h, w = hw
  if not len(points):
    return []
  boxes = np.asarray(claimed_xywh, np.float64).reshape(-1, 4)
  x, y = points[:, 0:1], points[:, 1:2]
  inside = ((x >= boxes[:, 0]) & (x <= boxes[:, 0] + boxes[:, 2]) &
            (y >= boxes[:, 1] - 0.05 * boxes[:, 3]) & (y <= boxes[:, 1] + boxes[:, 3] / 3))
  free = ~inside.any(1) if len(boxes) else np.ones(len(points), bool)
  d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
  np.fill_diagonal(d, np.inf)
  k = min(3, len(points) - 1)
  near = np.sort(d, 1)[:, :k].mean(1) if k else np.full(len(points), 0.1 * h)
  size = np.clip(near / 3, 4.0, 0.1 * h)
  out = []
  for (px, py), s in zip(points[free], size[free]):
    box = [max(0.0, px - 1.2 * s), max(0.0, py - 0.8 * s), min(w, px + 1.2 * s), min(h, py + 6 * s)]
    if box[2] > box[0] and box[3] > box[1]:
      out.append([float(v) for v in box])
  return out


def _box_rle(box, height: int, width: int):
  x1, y1, x2, y2 = (int(round(v)) for v in box)
  x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
  if x2 <= x1 or y2 <= y1:
    return None
  m = np.zeros((height, width), np.uint8)
  m[y1:y2, x1:x2] = 1
  rle = evaluation.encode_mask(m)
  rle['counts'] = rle['counts'].decode()
  return rle


def assemble(out_dir: str, parts: Sequence[dict], teacher: str = '') -> dict:
  """annotations.json (YouTube-VIS) and mots/*.txt from the per-source parts; returns counts."""
  videos, anns = [], []
  mots_dir = os.path.join(out_dir, 'mots')
  os.makedirs(mots_dir, exist_ok=True)
  for vid, part in enumerate(parts, 1):
    n = len(part['frames'])
    videos.append(dict(id=vid, name=part['name'], height=part['height'], width=part['width'],
                       length=n, fps=part['fps'],
                       file_names=[f'{part["name"]}/{f}' for f in part['frames']]))
    seq = evaluation.Sequence.empty(part['name'], n, part['height'], part['width'])
    for k, (tid, frames) in enumerate(part['tracks'].items()):
      segs = [frames.get(str(t)) for t in range(n)]
      areas = [int(mask_utils.area(s)) if s else None for s in segs]
      bboxes = [[float(v) for v in mask_utils.toBbox(s)] if s else None for s in segs]
      anns.append(dict(id=len(anns) + 1, video_id=vid, category_id=1, iscrowd=0,
                       segmentations=segs, areas=areas, bboxes=bboxes,
                       track_id=int(tid)))
      for t, s in enumerate(segs):
        if s:
          seq.add(t, evaluation.mots_object_id(k + 1),
                  dict(size=s['size'], counts=s['counts'].encode()))
    for t, boxes in part.get('ignore', {}).items():
      for box in boxes:
        rle = _box_rle(box, part['height'], part['width'])
        if rle is None:
          continue
        segs = [None] * n
        segs[int(t)] = rle
        anns.append(dict(id=len(anns) + 1, video_id=vid, category_id=1, iscrowd=1,
                         segmentations=segs, areas=[int(mask_utils.area(rle)) if s else None
                                                    for s in segs],
                         bboxes=[box if s else None for s in segs]))
    for t, boxes in part.get('ignore', {}).items():      # MOTS: one class-10 region a frame
      region = np.zeros((part['height'], part['width']), bool)
      for box in boxes:
        rle = _box_rle(box, part['height'], part['width'])
        if rle is not None:
          region |= mask_utils.decode(rle).astype(bool)
      for rle in seq.masks[int(t)]:
        region &= ~mask_utils.decode(rle).astype(bool)
      if region.any():
        seq.add(int(t), IGNORE_ID, region, class_id=evaluation.IGNORE)
    evaluation.write_mots_txt(os.path.join(mots_dir, f'{part["name"]}.txt'), seq)
  atomic.write_json(os.path.join(out_dir, 'annotations.json'), dict(
      info=dict(description=f'hvisnet pseudo-labels (teacher: {teacher or "see parts/"}; '
                            'identities by the hvisnet tracker)'),
      videos=videos, annotations=anns, categories=[dict(id=1, name='person')]))
  people = [a for a in anns if not a['iscrowd']]
  return dict(videos=len(videos), tracks=len(people),
              ignore_regions=len(anns) - len(people),
              masks=sum(sum(s is not None for s in a['segmentations']) for a in people),
              frames=sum(v['length'] for v in videos))


def make_teacher(opts: Options):
  low = min(opts.low_thresh, opts.ignore_thresh)
  if opts.teacher == 'ssdlite':
    return yolo_teacher.make('ssdlite', tiles=opts.tiles, det_thresh=low)
  return yolo_teacher.make(opts.teacher, size=opts.teacher_size, conf=low, mask_source=opts.masks)


def describe(opts: Options) -> str:
  if opts.teacher == 'ssdlite':
    return 'SSDLite-MobileNetV2 COCO boxes + BlazePose segmentation'
  masks = {'yolo': 'its own masks', 'blazepose': 'BlazePose segmentation per box',
           'max': 'the per-pixel maximum of its masks and BlazePose\'s',
           'agree': 'BlazePose segmentation where it agrees with its masks',
           'pose': 'BlazePose segmentation where it agrees with its masks, overlaps given '
                   'to the nearer BlazePose skeleton'}[opts.masks]
  return f'{opts.teacher} (COCO) at {opts.teacher_size} px, {masks}'


OUTPUTS = ('JPEGImages', 'annotations.json', 'mots', 'parts')   # what run() writes in out_dir


def check_out_dir(out_dir: str) -> None:
  """out_dir may be new, empty or an earlier pseudo-label output (which run() resumes);
  a folder holding anything else is the user's and is refused before any work."""
  if not os.path.lexists(out_dir):
    return
  if not os.path.isdir(out_dir):
    raise FileExistsError(f'{out_dir}: exists and is not a folder; choose another --out')
  foreign = sorted(e for e in os.listdir(out_dir) if e not in OUTPUTS and
                   not e.startswith('.'))
  if foreign:
    raise FileExistsError(f'{out_dir}: holds files that hvisnet pseudo-label did not write '
                          f'({", ".join(foreign[:5])}); choose a new or empty --out')


def run(sources: Sequence[str], out_dir: str, opts: Options, teacher=None,
        progress: Optional[Callable] = None, log=print, add: bool = False) -> dict:
  """Labels every source not already done in out_dir, then (re)writes the annotation files.

  An out_dir holding labels of other sources is refused (the annotation files would lose
  them) unless `add`: then they stay, and the new sources join them.

  A bucket `out_dir` (gs://...) is labelled in a local copy of what it already holds (so
  finished sources are not labelled again), then uploaded with annotations.json last.
  """
  if storage.is_remote(out_dir):
    with tempfile.TemporaryDirectory(prefix='hvisnet-pl-') as tmp:
      storage.download_tree(out_dir, tmp)
      stats = run(sources, tmp, opts, teacher=teacher, progress=progress, log=log, add=add)
      storage.upload_tree(tmp, out_dir, last=('annotations.json',))
    return stats
  for s in sources:                      # check every input before the slow part
    if not os.path.exists(s):
      raise FileNotFoundError(f'{s}: no such video file or image folder')
  names = [source_name(s) for s in sources]
  dup = sorted({n for n in names if names.count(n) > 1})
  if dup:
    raise ValueError(f'two sources share the name {dup[0]!r}; output folders are named after '
                     'sources, so rename one')
  check_out_dir(out_dir)
  parts_dir = os.path.join(out_dir, 'parts')
  others = sorted(f[:-len('.json')] for f in (os.listdir(parts_dir) if os.path.isdir(parts_dir)
                                              else []) if f.endswith('.json')
                  and f[:-len('.json')] not in names)
  if others and not add:
    raise FileExistsError(f'{out_dir}: holds the labels of other sources ({", ".join(others[:5])}'
                          f'{" ..." if len(others) > 5 else ""}); pass them again, add --add '
                          'to label the new ones beside them, or choose another --out')
  os.makedirs(parts_dir, exist_ok=True)
  stats = dict(done_before=0, labelled=0, without_people=0, skipped_frames=0, dropped_tracks=0)
  parts = []
  for src, name in zip(sources, names):
    part_path = os.path.join(parts_dir, f'{name}.json')
    if os.path.isfile(part_path):
      with open(part_path) as f:
        part = json.load(f)
      if _options_key(part.get('options') or {}) == opts.key():
        stats['done_before'] += 1
        parts.append(part)
        continue
    if teacher is None:
      teacher = make_teacher(opts)
    image_dir = os.path.join(out_dir, 'JPEGImages', name)
    shutil.rmtree(image_dir, ignore_errors=True)     # frames of an unfinished earlier run
    part = label_source(src, teacher, opts, image_dir, progress)
    atomic.write_json(part_path, part)
    parts.append(part)
    stats['labelled'] += 1
    stats['skipped_frames'] += part['skipped_frames']
    stats['dropped_tracks'] += part['dropped_tracks']
  for name in others:                    # --add: the earlier sources stay in the output
    with open(os.path.join(parts_dir, f'{name}.json')) as f:
      parts.append(json.load(f))
  with_people = [p for p in parts if p['tracks'] and p['frames']]
  stats['without_people'] = len(parts) - len(with_people)
  for p in parts:
    if p not in with_people:
      shutil.rmtree(os.path.join(out_dir, 'JPEGImages', p['name']), ignore_errors=True)
      log(f'{p["name"]}: no tracked person; left out of annotations.json')
  stats.update(assemble(out_dir, with_people, describe(opts)))
  return stats
