"""Source annotations -> checked video records, one reader per format (no TensorFlow).

Every format becomes the same thing: a `VideoRecord` (frame files plus per-frame instance
RLEs with a track number), so the TFDS builders and their tests share one code path.
Images (COCO, OCHuman, CrowdPose) are one-frame videos; long videos (MOTS) are cut into
clips of at most `clip_length` frames so that one dataset example stays small.

Problems that make the data wrong stop the build with an error naming the file and the
record (malformed JSON, a missing image, a mask whose size disagrees with its image). Things
the formats allow are skipped and counted in `Skips`: zero-area masks, videos or images with
no people, annotations of other categories.
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from pycocotools import mask as mask_utils

from hvisnet_jax import evaluation

IGNORE_CLASS = 10               # MOTS ignore regions
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


class DataInputError(ValueError):
  """A source annotation or image that cannot be used; the message names file and record."""


@dataclasses.dataclass
class Instance:
  frame: int                    # index into VideoRecord.frames
  track: int                    # source identity (annotation / track id), unique per video
  rle: dict                     # COCO RLE of the full frame
  crowd: bool = False           # COCO iscrowd or MOTS ignore region


@dataclasses.dataclass
class VideoRecord:
  key: str                      # unique example key, e.g. 'video7' or 'seq02/clip0003'
  frames: List[str]             # image file paths
  height: int
  width: int
  instances: List[Instance]
  source: str                   # the annotation file it came from
  video: str = ''               # the source video of a clip (tracks keep identity across clips)


class Skips(collections.Counter):
  """Counts of things skipped on purpose, reported by `hvisnet build-dataset`."""


def _under(root: str, name: str, where: str) -> str:
  """root/name, refused when `name` (read from an annotation file) leaves `root`."""
  path = os.path.normpath(os.path.join(root, str(name)))
  base = os.path.normpath(os.path.abspath(root))
  if os.path.isabs(str(name)) or os.path.commonpath([os.path.abspath(path), base]) != base:
    raise DataInputError(f'{where}: {name!r} points outside the image folder {root}')
  return path


def _check_image(path: str, h: int, w: int, where: str) -> None:
  """The file exists and its header agrees with the declared size (reads the header only)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise DataInputError(f'{where}: image file {path} does not exist')
  try:
    with Image.open(path) as im:
      iw, ih = im.size
  except Exception as e:  # pylint: disable=broad-except
    raise DataInputError(f'{where}: {path} is not a readable image ({e})') from None
  if (ih, iw) != (h, w):
    raise DataInputError(f'{where}: image {path} is {ih}x{iw} but the annotations say {h}x{w}')


def _categories(gt: dict, path: str, names: Sequence[str]) -> set:
  cats = gt.get('categories')
  if not isinstance(cats, list) or not cats:
    raise DataInputError(f'{path}: no "categories" list')
  wanted = {n.lower() for n in names}
  ids = {int(c['id']) for c in cats if str(c.get('name', '')).lower() in wanted}
  if not ids:
    raise DataInputError(f'{path}: none of the categories {sorted(wanted)} is among '
                         f'{sorted(str(c.get("name")) for c in cats)}')
  return ids


def _load(path: str, lists: Tuple[str, str], what: str) -> dict:
  """The JSON object at path, which must hold the two named lists."""
  try:
    gt = evaluation.load_json(path)
  except evaluation.EvalInputError as e:
    raise DataInputError(str(e)) from None
  if not isinstance(gt, dict) or not all(isinstance(gt.get(k), list) for k in lists):
    raise DataInputError(f'{path}: expected {what} JSON with "{lists[0]}" and "{lists[1]}" '
                         'lists')
  return gt


def _rle(seg, h, w, where):
  try:
    return evaluation.segmentation_rle(seg, h, w, where)
  except evaluation.EvalInputError as e:
    raise DataInputError(str(e)) from None


def _finish(rec: VideoRecord, skips: Skips, clip_length: int, what: str) -> Iterator[VideoRecord]:
  """Drops zero-area masks, cuts into clips, drops clips with no person (counting both)."""
  kept = []
  for inst in rec.instances:
    if mask_utils.area(inst.rle) == 0:
      skips['zero_area_masks'] += 1
    else:
      kept.append(inst)
  n = len(rec.frames)
  step = clip_length if clip_length > 0 else n
  for c0 in range(0, n, step):
    inst = [dataclasses.replace(i, frame=i.frame - c0) for i in kept if c0 <= i.frame < c0 + step]
    if not any(not i.crowd for i in inst):
      skips[f'{what}_without_people'] += 1
      continue
    key = rec.key if step >= n else f'{rec.key}/clip{c0 // step:04d}'
    yield VideoRecord(key, rec.frames[c0:c0 + step], rec.height, rec.width, inst, rec.source,
                      video=rec.key)


# --------------------------------------------------------------------------- YouTube-VIS

def ytvis_records(ann_path: str, image_root: Optional[str] = None,
                  categories: Sequence[str] = ('person',), clip_length: int = 0,
                  skips: Optional[Skips] = None) -> Iterator[VideoRecord]:
  """YouTube-VIS JSON (HVIS, YouTube-VIS/OVIS person subsets, `hvisnet synth` output).

  Frame paths are `file_names` under image_root (default: JPEGImages/ beside the JSON if it
  exists, else the JSON's directory).
  """
  skips = Skips() if skips is None else skips
  gt = _load(ann_path, ('videos', 'annotations'), 'YouTube-VIS')
  keep = _categories(gt, ann_path, categories)
  root = image_root or _default_root(ann_path, 'JPEGImages')
  by_video: Dict[int, list] = collections.defaultdict(list)
  for i, ann in enumerate(gt['annotations']):
    by_video[ann.get('video_id')].append((i, ann))
  known = set()
  for vi, v in enumerate(gt['videos']):
    where = f'{ann_path}: videos[{vi}] (id {v.get("id")})'
    try:
      vid, h, w, names = v['id'], int(v['height']), int(v['width']), list(v['file_names'])
    except (KeyError, TypeError, ValueError) as e:
      raise DataInputError(f'{where}: needs id, height, width and file_names ({e!r})') from None
    known.add(vid)
    frames = [_under(root, f, f'{where} file_names[{t}]') for t, f in enumerate(names)]
    instances = []
    for i, ann in by_video.get(vid, []):
      if ann.get('category_id') not in keep:
        skips['other_category_annotations'] += 1
        continue
      awhere = f'{ann_path}: annotations[{i}] (id {ann.get("id")})'
      segs = ann.get('segmentations')
      if not isinstance(segs, list) or len(segs) != len(frames):
        raise DataInputError(f'{awhere}: expected {len(frames)} segmentations (one per frame '
                             f'of video {vid}), got {len(segs) if isinstance(segs, list) else segs!r}')
      for t, seg in enumerate(segs):
        if seg is not None:
          instances.append(Instance(t, int(ann.get('id', i)),
                                    _rle(seg, h, w, f'{awhere} frame {t}'),
                                    bool(ann.get('iscrowd', 0))))
    if not any(not x.crowd for x in instances):
      skips['videos_without_people'] += 1
      continue
    for t, f in enumerate(frames):
      _check_image(f, h, w, f'{where} file_names[{t}]')
    name = str(v.get('name') or os.path.dirname(names[0]) or vid)
    yield from _finish(VideoRecord(name, frames, h, w, instances, ann_path), skips, clip_length,
                       'clips')
  orphans = [i for vid, anns in by_video.items() if vid not in known for i, _ in anns]
  if orphans:
    raise DataInputError(f'{ann_path}: annotations[{orphans[0]}] refers to video_id '
                         f'{gt["annotations"][orphans[0]].get("video_id")}, which is not in '
                         f'"videos" ({len(orphans)} such annotations)')


def _default_root(ann_path: str, sub: str) -> str:
  d = os.path.dirname(os.path.abspath(ann_path))
  return os.path.join(d, sub) if os.path.isdir(os.path.join(d, sub)) else d


# --------------------------------------------------------------------------- COCO

def coco_records(ann_path: str, image_root: Optional[str] = None,
                 categories: Sequence[str] = ('person',),
                 skips: Optional[Skips] = None) -> Iterator[VideoRecord]:
  """COCO-format JSON (COCO persons, OCHuman, CrowdPose): each image a one-frame video.

  Every annotation is its own identity. Image paths are `file_name` under image_root
  (default: the JSON's directory).
  """
  skips = Skips() if skips is None else skips
  gt = _load(ann_path, ('images', 'annotations'), 'COCO')
  keep = _categories(gt, ann_path, categories)
  root = image_root or os.path.dirname(os.path.abspath(ann_path))
  images = {}
  for ii, im in enumerate(gt['images']):
    try:
      images[im['id']] = (ii, str(im['file_name']), int(im['height']), int(im['width']))
    except (KeyError, TypeError, ValueError) as e:
      raise DataInputError(f'{ann_path}: images[{ii}] needs id, file_name, height and width '
                           f'({e!r})') from None
  by_image: Dict[int, list] = collections.defaultdict(list)
  for i, ann in enumerate(gt['annotations']):
    if ann.get('image_id') not in images:
      raise DataInputError(f'{ann_path}: annotations[{i}] (id {ann.get("id")}) refers to '
                           f'image_id {ann.get("image_id")}, which is not in "images"')
    if ann.get('category_id') not in keep:
      skips['other_category_annotations'] += 1
      continue
    by_image[ann['image_id']].append((i, ann))
  for image_id, (ii, name, h, w) in images.items():
    instances = []
    for i, ann in by_image.get(image_id, []):
      if 'segmentation' not in ann:
        raise DataInputError(f'{ann_path}: annotations[{i}] (id {ann.get("id")}) has no '
                             '"segmentation"')
      instances.append(Instance(0, int(ann.get('id', i)),
                                _rle(ann['segmentation'], h, w,
                                     f'{ann_path}: annotations[{i}] (id {ann.get("id")})'),
                                bool(ann.get('iscrowd', 0))))
    if not any(not x.crowd for x in instances):
      skips['images_without_people'] += 1
      continue
    path = _under(root, name, f'{ann_path}: images[{ii}] (id {image_id}) file_name')
    _check_image(path, h, w, f'{ann_path}: images[{ii}] (id {image_id})')
    yield from _finish(VideoRecord(str(image_id), [path], h, w, instances, ann_path), skips, 0,
                       'images')


# --------------------------------------------------------------------------- MOTS

def mots_layout(root: str) -> List[Tuple[str, str, bool]]:
  """(txt file, image directory, kitti) per sequence of a MOTS directory.

  Understands MOTSChallenge (`<seq>/gt/gt.txt` + `<seq>/img1/`), KITTI-MOTS
  (`instances_txt/<seq>.txt` + `images/<seq>/`, frames from 0) and `hvisnet synth` output
  (`mots/<seq>.txt` + `JPEGImages/<seq>/`).
  """
  if not os.path.isdir(root):
    raise DataInputError(f'{root}: not a directory')
  out = []
  for seq in sorted(os.listdir(root)):
    gt = os.path.join(root, seq, 'gt', 'gt.txt')
    if os.path.isfile(gt):
      out.append((gt, os.path.join(root, seq, 'img1'), False))
  if out:
    return out
  for txt_dir, img_dir, kitti in (('instances_txt', 'images', True),
                                  ('mots', 'JPEGImages', False)):
    if os.path.isdir(os.path.join(root, txt_dir)):
      for f in sorted(os.listdir(os.path.join(root, txt_dir))):
        if f.endswith('.txt'):
          out.append((os.path.join(root, txt_dir, f),
                      os.path.join(root, img_dir, f[:-4]), kitti))
      if out:
        return out
  raise DataInputError(f'{root}: no MOTS sequences found (expected <seq>/gt/gt.txt, '
                       'instances_txt/<seq>.txt or mots/<seq>.txt)')


def mots_records(root: str, classes: Sequence[int] = (2,), clip_length: int = 32,
                 skips: Optional[Skips] = None) -> Iterator[VideoRecord]:
  """MOTS txt sequences; class 10 becomes crowd (ignore) regions, other classes are skipped.

  Frame f of a sequence is the f-th image (sorted by name) of its image directory, so any
  file naming works as long as it sorts in time order.
  """
  skips = Skips() if skips is None else skips
  for txt, img_dir, kitti in mots_layout(root):
    try:
      seq = evaluation.read_mots_txt(txt, kitti=kitti)
    except evaluation.EvalInputError as e:
      raise DataInputError(str(e)) from None
    if not os.path.isdir(img_dir):
      raise DataInputError(f'{txt}: its image directory {img_dir} does not exist')
    frames = sorted(os.path.join(img_dir, f) for f in os.listdir(img_dir)
                    if f.lower().endswith(IMAGE_EXTENSIONS))
    if len(frames) < seq.num_frames:
      raise DataInputError(f'{txt}: annotates frame {seq.num_frames - kitti} but '
                           f'{img_dir} holds only {len(frames)} images')
    instances = []
    for t in range(seq.num_frames):
      for obj, cls, rle in zip(seq.ids[t], seq.classes[t], seq.masks[t]):
        if cls == IGNORE_CLASS:
          instances.append(Instance(t, obj, rle, crowd=True))
        elif cls in classes:
          instances.append(Instance(t, obj, rle))
        else:
          skips['other_category_annotations'] += 1
    for t, f in enumerate(frames[:seq.num_frames]):
      _check_image(f, seq.height, seq.width, f'{txt}: frame {t + 1 - kitti}')
    name = os.path.basename(os.path.dirname(os.path.dirname(txt))) if txt.endswith(
        os.path.join('gt', 'gt.txt')) else os.path.splitext(os.path.basename(txt))[0]
    yield from _finish(VideoRecord(name, frames, seq.height, seq.width, instances, txt), skips,
                       clip_length, 'clips')


# --------------------------------------------------------------------------- per instance

def instance_features(rle: dict) -> Dict[str, np.ndarray]:
  """Mask, tight box and both sampling centers: the NumPy code the trainer's targets use."""
  from hvisnet_jax.training import centers  # pylint: disable=g-import-not-at-top
  m = mask_utils.decode(rle).astype(bool)
  return dict(mask=m, box=np.asarray(centers.box_of(m), np.float32),
              inner_center=np.asarray(centers.inner_center(m), np.float32),
              centroid=np.asarray(centers.mask_centroid(m), np.float32),
              area=np.int32(m.sum()))
