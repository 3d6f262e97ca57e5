"""The file formats of tracking results and ground truth, apart from the metrics.

Data model: a `Sequence` holds, per frame, object ids, class ids (2 = pedestrian,
10 = ignore region) and COCO RLE masks, plus optional scores (used only to resolve
overlaps). Readers exist for MOTS txt, YouTube-VIS JSON and in-memory masks; a writer for
MOTS txt. Errors name the file, the line or record, and what was expected.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence as Seq

import numpy as np
from pycocotools import mask as mask_utils

PEDESTRIAN, IGNORE = 2, 10


def mots_object_id(track_id: int) -> int:
  """MOTS object id of a pedestrian track: class * 1000 + track (2001, 2002, ...)."""
  return PEDESTRIAN * 1000 + int(track_id)


def encode_mask(mask) -> dict:
  """COCO RLE (counts as bytes) of a boolean or 0/1 (H, W) mask, via pycocotools."""
  return mask_utils.encode(np.asfortranarray(np.asarray(mask).astype(np.uint8)))


def encode_id_map(id_map: np.ndarray, background: int = 0) -> Dict[int, bytes]:
  """COCO RLE counts (compressed bytes) of every id but `background` in an (H, W) map.

  The same bytes as encode_mask(id_map == i) for each id, at a fraction of the cost: the
  runs of all ids come from one column-major scan of the map (pycocotools can only encode
  one full-size binary mask per id, ~0.7 ms each at 768x576); pycocotools still turns the
  run lengths into its compressed string. A Fortran-ordered map (host_paste's label maps)
  is scanned in place; a C-ordered one is transposed first.
  """
  h, w = id_map.shape
  flat = id_map.ravel(order='F')                      # column-major, as COCO RLE counts
  change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
  starts = np.concatenate([[0], change])
  ends = np.concatenate([change, [flat.size]])
  values = flat[starts]
  fg = values != background
  order = np.argsort(values[fg], kind='stable')
  starts, ends, values = starts[fg][order], ends[fg][order], values[fg][order]
  ids, first = np.unique(values, return_index=True)
  bounds = list(first) + [len(values)]
  out = {}
  for k, i in enumerate(ids):
    s, e = starts[bounds[k]:bounds[k + 1]], ends[bounds[k]:bounds[k + 1]]
    counts = np.empty(2 * len(s) + 1, np.int64)
    counts[0] = s[0]
    counts[2::2] = np.append(s[1:] - e[:-1], flat.size - e[-1])
    counts[1::2] = e - s
    if counts[-1] == 0:                   # pycocotools ends on the last run, whatever it is
      counts = counts[:-1]
    out[int(i)] = mask_utils.frPyObjects({'counts': counts.tolist(), 'size': [h, w]},
                                         h, w)['counts']
  return out


class EvalInputError(ValueError):
  """Input data that cannot be evaluated; the message names the file/record and why."""


@dataclasses.dataclass
class Sequence:
  """Per-frame instances of one video. Frames are 0-based here, whatever the file said."""
  name: str
  num_frames: int
  height: int
  width: int
  ids: List[np.ndarray]
  classes: List[np.ndarray]
  masks: List[List[dict]]                  # COCO RLE, counts as bytes
  scores: Optional[List[np.ndarray]] = None
  source: str = '<memory>'

  @classmethod
  def empty(cls, name, num_frames, height, width, source='<memory>', with_scores=False):
    return cls(name, num_frames, height, width,
               [np.zeros(0, int) for _ in range(num_frames)],
               [np.zeros(0, int) for _ in range(num_frames)],
               [[] for _ in range(num_frames)],
               [np.zeros(0) for _ in range(num_frames)] if with_scores else None, source)

  def add(self, frame: int, obj_id: int, mask, class_id: int = PEDESTRIAN,
          score: Optional[float] = None) -> None:
    """Adds one instance; `mask` is a boolean (H, W) array or a COCO RLE dict."""
    if not 0 <= frame < self.num_frames:
      raise EvalInputError(f'{self.source}: frame {frame} outside 0..{self.num_frames - 1}')
    if isinstance(mask, dict):
      rle = mask
    else:
      mask = np.asarray(mask)
      if mask.shape != (self.height, self.width):
        raise EvalInputError(f'{self.source}: mask of shape {mask.shape} in a '
                             f'{self.height}x{self.width} sequence (frame {frame})')
      rle = encode_mask(mask)
    self.ids[frame] = np.append(self.ids[frame], int(obj_id))
    self.classes[frame] = np.append(self.classes[frame], int(class_id))
    self.masks[frame].append(rle)
    if self.scores is not None:
      self.scores[frame] = np.append(self.scores[frame], np.nan if score is None else score)

  def resized(self, num_frames: int) -> 'Sequence':
    """The same sequence padded with empty frames up to num_frames."""
    extra = num_frames - self.num_frames
    if extra <= 0:
      return self
    pad = lambda xs, make: xs + [make() for _ in range(extra)]
    return dataclasses.replace(
        self, num_frames=num_frames,
        ids=pad(self.ids, lambda: np.zeros(0, int)),
        classes=pad(self.classes, lambda: np.zeros(0, int)),
        masks=pad(self.masks, list),
        scores=None if self.scores is None else pad(self.scores, lambda: np.zeros(0)))


def sequence_from_label_maps(name: str, label_maps: Seq[np.ndarray],
                             id_of_label: Optional[Seq[Dict[int, int]]] = None) -> Sequence:
  """Builds a sequence from per-frame (H, W) integer maps (-1 or 0 = background).

  With `id_of_label`, frame t's label l becomes object id id_of_label[t][l]; otherwise the
  label itself is the id. Label maps cannot overlap, as MOTS requires.
  """
  h, w = np.asarray(label_maps[0]).shape
  seq = Sequence.empty(name, len(label_maps), h, w)
  for t, lm in enumerate(label_maps):
    lm = np.asarray(lm)
    for label in np.unique(lm):
      if label < 0 or (id_of_label is None and label == 0):
        continue
      obj = id_of_label[t][int(label)] if id_of_label is not None else int(label)
      seq.add(t, obj, lm == label)
  return seq


# --------------------------------------------------------------------------- readers

def rle_counts(counts: bytes) -> List[int]:
  """Decodes COCO's compressed RLE string into run lengths.

  pycocotools decodes some malformed strings into garbage instead of failing, so readers
  check that the runs sum to H*W with this (the inverse of maskApi.c's rleToString).
  """
  out, p, s = [], 0, counts
  while p < len(s):
    x, k, more = 0, 0, True
    while more:
      if p >= len(s):
        raise ValueError('truncated RLE string')
      c = s[p] - 48
      if not 0 <= c < 64:
        raise ValueError(f'invalid RLE character {chr(s[p])!r}')
      x |= (c & 0x1f) << (5 * k)
      more = bool(c & 0x20)
      p += 1
      k += 1
      if not more and c & 0x10:
        x |= -1 << (5 * k)
    if len(out) > 2:
      x += out[-2]
    out.append(x)
  return out


def _check_rle(rle: dict, where: str) -> None:
  h, w = rle['size']
  try:
    runs = rle_counts(rle['counts'])
  except ValueError as e:
    raise EvalInputError(f'{where}: malformed RLE ({e})') from None
  if any(r < 0 for r in runs) or sum(runs) != h * w:
    raise EvalInputError(f'{where}: malformed RLE: run lengths sum to {sum(runs)}, expected '
                         f'height*width = {h * w}')


def read_mots_txt(path: str, kitti: bool = False, name: Optional[str] = None,
                  like: Optional[Sequence] = None, empty_ok: bool = False) -> Sequence:
  """Reads one MOTS txt file: `frame id class_id img_height img_width rle` per line.

  Frames start at 1 (MOTSChallenge) or at 0 with kitti=True (KITTI-MOTS). An empty file is
  an error, unless `like` (the ground truth) gives the size: predictions may find nobody
  (with empty_ok and no `like`, an empty file gives None).
  """
  first = 0 if kitti else 1
  rows, size, size_line = [], None, 0
  with open(path, 'rb') as f:
    for lineno, raw in enumerate(f, 1):
      where = f'{path}:{lineno}'
      try:
        line = raw.decode('ascii').strip()
      except UnicodeDecodeError as e:
        raise EvalInputError(f'{where}: byte {raw[e.start]:#04x} at column {e.start + 1} is '
                             'not ASCII (MOTS txt lines are ASCII text)') from None
      if not line:
        continue
      parts = line.split(' ')
      if len(parts) != 6:
        raise EvalInputError(f'{where}: expected 6 space-separated fields "frame id class_id '
                             f'img_height img_width rle", got {len(parts)}')
      try:
        frame, obj, cls, h, w = (int(x) for x in parts[:5])
      except ValueError:
        raise EvalInputError(f'{where}: the first five fields must be integers, got '
                             f'{" ".join(parts[:5])!r}') from None
      if frame < first:
        raise EvalInputError(f'{where}: frame {frame} < {first} (frames are numbered from '
                             f'{first}{"" if kitti else "; use --kitti for 0-based files"})')
      if h <= 0 or w <= 0:
        raise EvalInputError(f'{where}: image size {h}x{w} must be positive')
      if size is None:
        size, size_line = (h, w), lineno
      elif (h, w) != size:
        raise EvalInputError(f'{where}: image size {h}x{w} differs from {size[0]}x{size[1]} '
                             f'on line {size_line}')
      rle = {'size': [h, w], 'counts': parts[5].encode()}
      _check_rle(rle, where)
      rows.append((frame - first, obj, cls, rle, where))
  if size is None:
    if like is not None:
      return Sequence.empty(name or os.path.splitext(os.path.basename(path))[0],
                            like.num_frames, like.height, like.width, source=path)
    if empty_ok:
      return None
    raise EvalInputError(f'{path}: no annotations (an empty file cannot tell the image size)')
  n = max(r[0] for r in rows) + 1
  if like is not None:                 # predictions never extend a sequence past its truth
    for t, _, _, _, where in rows:
      if t >= like.num_frames:
        raise EvalInputError(f'{where}: frame {t + first} is past the end of the ground '
                             f'truth\'s sequence {like.name!r} ({like.num_frames} frames, '
                             f'numbered from {first})')
    n = like.num_frames
  seq = Sequence.empty(name or os.path.splitext(os.path.basename(path))[0], n, *size,
                       source=path)
  seen = set()
  for t, obj, cls, rle, where in rows:
    if (t, obj) in seen:
      raise EvalInputError(f'{where}: id {obj} appears twice in frame {t + first}')
    seen.add((t, obj))
    seq.add(t, obj, rle, cls)
  return seq


def _sequence_files(path: str) -> Dict[str, str]:
  """{sequence name: file} of a MOTS txt file or a directory of `<sequence>.txt` files."""
  if os.path.isdir(path):
    found = sorted(f for f in os.listdir(path) if f.endswith('.txt'))
    if not found:
      raise EvalInputError(f'{path}: directory holds no .txt sequence files')
    return {os.path.splitext(f)[0]: os.path.join(path, f) for f in found}
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such file or directory')
  return {os.path.splitext(os.path.basename(path))[0]: path}


def read_mots(path: str, kitti: bool = False,
              like: Optional[Dict[str, Sequence]] = None) -> Dict[str, Sequence]:
  """A MOTS txt file, or a directory of `<sequence>.txt` files -> {name: Sequence}.

  `like`: ground truth by name; an empty prediction file takes its sequence's size (a single
  file pairs with a single ground-truth sequence whatever its name).
  """
  like = like or {}
  if os.path.isdir(path):
    return {name: read_mots_txt(f, kitti, like=like.get(name))
            for name, f in _sequence_files(path).items()}
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such file or directory')
  name = os.path.splitext(os.path.basename(path))[0]
  only = next(iter(like.values())) if len(like) == 1 else like.get(name)
  seq = read_mots_txt(path, kitti, like=only)
  return {seq.name: seq}


def read_mots_pair(gt_path: str, pred_path: str, kitti: bool = False):
  """(ground truth, predictions) as {name: Sequence} for `hvisnet eval`.

  Sequences pair by name; a single prediction file pairs with a ground truth of one
  sequence (a file or a folder holding one) whatever the names. An empty file on either
  side is a sequence with nobody in it, sized by the other side's; both empty: a frame
  with nobody on either side.
  """
  gt_files, pred_files = _sequence_files(gt_path), _sequence_files(pred_path)
  if len(gt_files) == 1 and len(pred_files) == 1 and os.path.isfile(pred_path):
    pred_files = {next(iter(gt_files)): next(iter(pred_files.values()))}
  gt = {n: read_mots_txt(f, kitti, name=n, empty_ok=True) for n, f in gt_files.items()}
  pred = {n: read_mots_txt(f, kitti, name=n, like=gt.get(n), empty_ok=True)
          for n, f in pred_files.items()}
  for n, seq in gt.items():
    if seq is None:
      other = pred.get(n)
      gt[n] = (Sequence.empty(n, other.num_frames, other.height, other.width,
                              source=gt_files[n]) if other is not None else
               Sequence.empty(n, 1, 1, 1, source=gt_files[n]))
      if other is None and n in pred:
        pred[n] = Sequence.empty(n, 1, 1, 1, source=pred_files[n])
  return gt, pred


def write_mots_txt(path: str, seq: Sequence) -> None:
  """Writes a sequence as MOTS txt (frames from 1), atomically."""
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    for t in range(seq.num_frames):
      for obj, cls, rle in zip(seq.ids[t], seq.classes[t], seq.masks[t]):
        counts = rle['counts'].decode() if isinstance(rle['counts'], bytes) else rle['counts']
        f.write(f'{t + 1} {obj} {cls} {seq.height} {seq.width} {counts}\n')
  os.replace(tmp, path)


def load_json(path: str):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such file')
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise EvalInputError(f'{path}: not valid JSON ({e})') from None
  except UnicodeDecodeError as e:
    raise EvalInputError(f'{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset '
                         f'{e.start}); expected a JSON file') from None


def _person_category(gt: dict, path: str) -> int:
  cats = gt.get('categories') or []
  for c in cats:
    if str(c.get('name', '')).lower() == 'person':
      return int(c['id'])
  if len(cats) == 1:
    return int(cats[0]['id'])
  raise EvalInputError(f'{path}: no category named "person" among {len(cats)} categories')


def segmentation_rle(seg, h, w, where):
  """A COCO / YouTube-VIS segmentation (polygons, RLE or compressed RLE) -> checked RLE.

  Polygons too short to enclose anything (fewer than 3 points) give an empty mask, which
  callers can count and skip; a size that disagrees with the image's is an error.
  """
  if isinstance(seg, list):
    seg = [p for p in seg if isinstance(p, list) and len(p) >= 6]
    if not seg:
      return mask_utils.encode(np.zeros((h, w), np.uint8, order='F'))
  if isinstance(seg, dict) and isinstance(seg.get('counts'), list):
    rle = mask_utils.frPyObjects(seg, h, w)              # uncompressed RLE
  elif isinstance(seg, dict) and isinstance(seg.get('counts'), (str, bytes)):
    counts = seg['counts'].encode() if isinstance(seg['counts'], str) else seg['counts']
    rle = {'size': list(seg['size']), 'counts': counts}
  elif isinstance(seg, list):
    rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))   # polygons
  else:
    raise EvalInputError(f'{where}: expected an RLE dict, polygon list or null, got '
                         f'{type(seg).__name__}')
  if list(rle['size']) != [h, w]:
    raise EvalInputError(f'{where}: mask size {rle["size"][0]}x{rle["size"][1]} differs from '
                         f'the image size {h}x{w}')
  _check_rle(rle, where)
  return rle


def read_ytvis(gt_path: str, pred_path: str):
  """YouTube-VIS ground truth + results JSON -> ({name: gt Sequence}, {name: pred Sequence}).

  Person annotations become class 2, crowd person annotations ignore regions (class 10);
  each result becomes one track with its score.
  """
  gt = load_json(gt_path)
  preds = load_json(pred_path)
  if not isinstance(gt, dict) or 'videos' not in gt or 'annotations' not in gt:
    raise EvalInputError(f'{gt_path}: expected YouTube-VIS ground truth with "videos" and '
                         '"annotations"')
  if not isinstance(preds, list):
    raise EvalInputError(f'{pred_path}: expected a YouTube-VIS results list')
  person = _person_category(gt, gt_path)
  videos, gts, outs = {}, {}, {}
  for j, v in enumerate(gt['videos']):
    name, n, h, w = _ytvis_video(v, f'{gt_path}: videos[{j}]')
    videos[v['id']] = (name, n, h, w)
    gts[v['id']] = Sequence.empty(name, n, h, w, gt_path)
    outs[v['id']] = Sequence.empty(name, n, h, w, pred_path, with_scores=True)
  first_of = {}                          # (video, identity) -> the annotation that has it
  for i, ann in enumerate(gt['annotations']):
    if not isinstance(ann, dict):
      raise EvalInputError(f'{gt_path}: annotations[{i}]: expected an object, got '
                           f'{type(ann).__name__} {str(ann)[:40]!r}')
    where = f'{gt_path}: annotations[{i}] (id {ann.get("id")})'
    cls = IGNORE if ann.get('iscrowd') else PEDESTRIAN
    if cls == PEDESTRIAN and not isinstance(ann.get('id'), int):
      raise EvalInputError(f'{gt_path}: annotations[{i}]: expected an integer "id" (the '
                           f'identity), got {ann.get("id")!r}')
    if cls == PEDESTRIAN:
      key = (ann.get('video_id'), ann['id'])
      if key in first_of:
        raise EvalInputError(f'{where}: id {ann["id"]} repeats annotations[{first_of[key]}] '
                             f'in video {key[0]}; each identity is one annotation per video')
      first_of[key] = i
    obj = int(ann['id']) if cls == PEDESTRIAN else 10000 + i
    for vid, t, rle in _ytvis_masks(ann, where, videos, person, '"videos"'):
      gts[vid].add(t, obj, rle, cls)
  for i, res in enumerate(preds):
    for vid, t, rle in _ytvis_masks(res, f'{pred_path}: [{i}]', videos, person,
                                    'the ground truth'):
      outs[vid].add(t, i + 1, rle, PEDESTRIAN, float(res.get('score', 1.0)))
  for vid in videos:      # merge crowd regions into one ignore region per frame later
    _merge_ignore(gts[vid])
  return ({s.name: s for s in gts.values()}, {s.name: s for s in outs.values()})


def _ytvis_video(v, where):
  """(name, frames, height, width) of one "videos" entry, or an error naming the field."""
  if not isinstance(v, dict) or 'id' not in v:
    raise EvalInputError(f'{where}: expected an object with "id"')
  for key in ('height', 'width'):
    if not isinstance(v.get(key), int) or v[key] <= 0:
      raise EvalInputError(f'{where} (id {v["id"]}): expected a positive integer "{key}", '
                           f'got {v.get(key)!r}')
  files = v.get('file_names')
  if not v.get('length') and not (isinstance(files, list) and files):
    raise EvalInputError(f'{where} (id {v["id"]}): needs "file_names" (a list of frames) or '
                         '"length"')
  name = v.get('name') or (os.path.dirname(str(files[0])) if files else '') or v['id']
  return str(name), int(v.get('length') or len(files)), v['height'], v['width']


def _ytvis_masks(record, where, videos, person, videos_source):
  """Yields (video_id, frame, RLE) of one YouTube-VIS record of the person category,
  checking its video id and its per-frame segmentation count."""
  if not isinstance(record, dict):
    raise EvalInputError(f'{where}: expected an object with "video_id", "category_id" and '
                         f'"segmentations", got {type(record).__name__} {str(record)[:40]!r}')
  if record.get('video_id') not in videos:
    raise EvalInputError(f'{where}: video_id {record.get("video_id")} is not in '
                         f'{videos_source}')
  if record.get('category_id') != person:
    return
  _, n, h, w = videos[record['video_id']]
  segs = record.get('segmentations')
  if not isinstance(segs, list):
    raise EvalInputError(f'{where}: "segmentations" must be a list with one entry (RLE or '
                         f'null) per frame, got {type(segs).__name__}')
  score = record.get('score', 1.0)
  if isinstance(score, bool) or not isinstance(score, (int, float)) or not np.isfinite(score):
    raise EvalInputError(f'{where}: "score" must be a number, got {score!r}')
  if len(segs) != n:
    raise EvalInputError(f'{where}: {len(segs)} segmentations for a {n}-frame video')
  for t, seg in enumerate(segs):
    if seg is not None:
      yield record['video_id'], t, segmentation_rle(seg, h, w, f'{where} frame {t}')


def _merge_ignore(seq: Sequence) -> None:
  """Several ignore masks in a frame become one (they may overlap each other)."""
  for t in range(seq.num_frames):
    ign = seq.classes[t] == IGNORE
    if ign.sum() > 1:
      merged = mask_utils.merge([m for m, g in zip(seq.masks[t], ign) if g], intersect=False)
      keep = ~ign
      seq.masks[t] = [m for m, k in zip(seq.masks[t], keep) if k] + [merged]
      seq.ids[t] = np.append(seq.ids[t][keep], 10000)
      seq.classes[t] = np.append(seq.classes[t][keep], IGNORE)
      if seq.scores is not None:
        seq.scores[t] = np.append(seq.scores[t][keep], np.nan)


# --------------------------------------------------------------------------- overlaps

def find_overlaps(seq: Sequence):
  """[(frame, id_a, id_b)] for every pair of masks in a frame that share a pixel."""
  found = []
  for t in range(seq.num_frames):
    rles = seq.masks[t]
    if len(rles) < 2:
      continue
    iou = mask_utils.iou(rles, rles, [0] * len(rles))
    a, b = np.nonzero(np.triu(np.asarray(iou) > 0, 1))
    found += [(t, int(seq.ids[t][i]), int(seq.ids[t][j])) for i, j in zip(a, b)]
  return found


def resolve_overlaps(seq: Sequence, by: str = 'score') -> Sequence:
  """Returns a copy where each pixel belongs to one instance: the higher-scoring one
  (by='score', needs scores) or the earlier-listed one (by='order'). Masks left empty
  are dropped."""
  out = Sequence.empty(seq.name, seq.num_frames, seq.height, seq.width, seq.source,
                       seq.scores is not None)
  for t in range(seq.num_frames):
    n = len(seq.masks[t])
    order = list(range(n))
    if by == 'score' and seq.scores is not None:
      order = sorted(order, key=lambda i: -np.nan_to_num(seq.scores[t][i], nan=-np.inf))
    taken = np.zeros((seq.height, seq.width), bool)
    for i in order:
      m = mask_utils.decode(seq.masks[t][i]).astype(bool) & ~taken
      taken |= m
      if m.any():
        out.add(t, seq.ids[t][i], m, seq.classes[t][i],
                None if seq.scores is None else seq.scores[t][i])
  return out
