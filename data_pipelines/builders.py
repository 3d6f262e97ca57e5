"""TFDS builders for person instance segmentation: YouTube-VIS, COCO and MOTS sources.

Each builder reads a local directory (TFDS's manual_dir; nothing is downloaded) and writes
the same features, so one tf.data pipeline serves them all. An example is a video clip (an
image is a one-frame clip):

  key, video            the clip's key and the video it was cut from
  height, width         frame size
  frames                encoded frames, stored with their source bytes (no re-encoding)
  instances             one entry per (frame, person):
    frame, id, track    frame index in the clip; global identity 1..num_ids (0 for crowd);
                        the source's own track or annotation id
    crowd               COCO iscrowd / MOTS ignore region
    mask                PNG, full frame
    box                 tight x1, y1, x2, y2 of the mask (pixel edges)
    inner_center        the paper's inner center, (x, y) pixel centers
    centroid            the mask centroid, (x, y)
    area                mask pixels

Centers come from `hvisnet_jax.training.centers`, the NumPy code the trainer's targets use for the
synthetic source. The number of identities and the skip counts of each split are stored in
the dataset's metadata (`num_ids`, `skips`).
"""
from __future__ import annotations

import abc
import dataclasses
import io
import json
import os
from typing import Dict, Iterator, Optional, Tuple

import cv2
import numpy as np
import tensorflow_datasets as tfds
import tqdm

from hvisnet_jax import logs, storage

from hvisnet_jax.data_pipelines import records as records_lib

VERSION = tfds.core.Version('1.0.0')


@dataclasses.dataclass(eq=False)
class PersonsConfig(tfds.core.BuilderConfig):
  """What to read from the manual_dir.

  splits: split name -> annotation path relative to manual_dir (a JSON file for ytvis/coco, a
    directory of sequences for mots; '.' is manual_dir itself).
  images: image root relative to manual_dir ('' = the format's default).
  categories: category names kept (JSON formats). classes: MOTS class ids kept.
  clip_length: longest clip stored as one example (0 = whole videos).
  """
  splits: Tuple[Tuple[str, str], ...] = (('train', 'annotations.json'),)
  images: str = ''
  categories: Tuple[str, ...] = ('person',)
  classes: Tuple[int, ...] = (2,)
  clip_length: int = 0


def _options(cfg: PersonsConfig) -> dict:
  """What a build depends on besides the source directory (stored, JSON-like)."""
  return dict(splits=dict(cfg.splits), images=cfg.images, categories=list(cfg.categories),
              classes=list(cfg.classes), clip_length=cfg.clip_length)


def features() -> tfds.features.FeaturesDict:
  f32 = np.float32
  return tfds.features.FeaturesDict({
      'key': tfds.features.Text(),
      'video': tfds.features.Text(),
      'height': np.int32,
      'width': np.int32,
      'frames': tfds.features.Sequence(tfds.features.Image(shape=(None, None, 3))),
      'instances': tfds.features.Sequence({
          'frame': np.int32,
          'id': np.int64,
          'track': np.int64,
          'crowd': np.bool_,
          'mask': tfds.features.Image(shape=(None, None, 1), encoding_format='png'),
          'box': tfds.features.Tensor(shape=(4,), dtype=f32),
          'inner_center': tfds.features.Tensor(shape=(2,), dtype=f32),
          'centroid': tfds.features.Tensor(shape=(2,), dtype=f32),
          'area': np.int32,
      }),
  })


class _PersonsBuilder(tfds.core.GeneratorBasedBuilder, abc.ABC):
  """Shared generation: records -> global identities -> examples with centers."""

  VERSION = VERSION
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Point manual_dir (hvisnet build-dataset --source) at the data.'
  BUILDER_CONFIGS = [PersonsConfig(name='default', description='person instances, train split from annotations.json')]

  @abc.abstractmethod
  def read_records(self, path: str, image_root: Optional[str],
                   skips: records_lib.Skips) -> Iterator[records_lib.VideoRecord]:
    """The format's reader."""

  # TFDS announces "Downloading and preparing dataset Unknown size" and where it wrote;
  # nothing is downloaded here and `hvisnet build-dataset` says where the dataset is.
  def _log_download_bytes(self) -> None:
    if logs.verbose():
      super()._log_download_bytes()

  def _log_download_done(self) -> None:
    if logs.verbose():
      super()._log_download_done()

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, features=features(),
                                 metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    root = dl_manager.manual_dir
    cfg = self.builder_config
    image_root = os.path.join(root, cfg.images) if cfg.images else None
    gens, num_ids, skips = {}, {}, {}
    for split, rel in cfg.splits:
      path = os.path.normpath(os.path.join(root, rel))
      split_skips = records_lib.Skips()
      # Read and check everything before writing anything (errors name file and record).
      recs = list(tqdm.tqdm(self.read_records(path, image_root, split_skips),
                            desc=f'Checking {split} annotations', unit=' clips', leave=False))
      if not recs:
        raise records_lib.DataInputError(f'{path}: no clip with a person in it (skipped: '
                                         f'{dict(split_skips) or "nothing"})')
      gids: Dict[Tuple[str, int], int] = {}
      for r in recs:
        for inst in r.instances:
          if not inst.crowd:
            gids.setdefault((r.video or r.key, inst.track), len(gids) + 1)
      num_ids[split], skips[split] = len(gids), dict(split_skips)
      gens[split] = self._generate_examples(recs, gids)
    self.info.metadata.update(num_ids=num_ids, skips=skips, format=self.FORMAT,
                              source=os.path.abspath(root), options=_options(cfg))
    return gens

  def _generate_examples(self, recs, gids):
    for r in recs:
      instances = []
      for inst in r.instances:
        f = records_lib.instance_features(inst.rle)
        ok, png = cv2.imencode('.png', f.pop('mask').astype(np.uint8))
        assert ok
        instances.append(dict(f, frame=inst.frame, track=inst.track, crowd=inst.crowd,
                              id=0 if inst.crowd else gids[(r.video or r.key, inst.track)],
                              mask=io.BytesIO(png.tobytes())))
      yield r.key, dict(key=r.key, video=r.video or r.key, height=r.height, width=r.width,
                        frames=list(r.frames), instances=instances)


class YtvisPersons(_PersonsBuilder):
  """YouTube-VIS-format videos: HVIS, YouTube-VIS / OVIS person subsets, synthetic videos."""
  FORMAT = 'ytvis'

  def read_records(self, path, image_root, skips):
    cfg = self.builder_config
    return records_lib.ytvis_records(path, image_root, cfg.categories, cfg.clip_length, skips)


class CocoPersons(_PersonsBuilder):
  """COCO-format images: COCO persons, OCHuman, CrowdPose (polygons or RLE)."""
  FORMAT = 'coco'

  def read_records(self, path, image_root, skips):
    return records_lib.coco_records(path, image_root, self.builder_config.categories, skips)


class MotsPersons(_PersonsBuilder):
  """MOTS txt sequences: MOTSChallenge, KITTI-MOTS, `hvisnet synth` output (mots/)."""
  FORMAT = 'mots'

  def read_records(self, path, image_root, skips):
    cfg = self.builder_config
    return records_lib.mots_records(path, cfg.classes, cfg.clip_length or 32, skips)


BUILDERS = {'ytvis': YtvisPersons, 'coco': CocoPersons, 'mots': MotsPersons}
DEFAULT_SPLITS = {'ytvis': 'annotations.json', 'coco': 'annotations.json', 'mots': '.'}


def build(fmt: str, source: str, out: str, splits: Optional[Dict[str, str]] = None,
          images: str = '', categories=('person',), classes=(2,), clip_length: int = 0,
          config_name: str = 'person') -> tfds.core.DatasetBuilder:
  """Builds (or finds already built) the dataset of `source` under `out`; returns the builder.

  TFDS writes into a temporary directory and renames it when complete, so an interrupted
  build never leaves a dataset that looks finished.
  """
  if fmt not in BUILDERS:
    raise ValueError(f'format must be one of {sorted(BUILDERS)}, got {fmt!r}')
  if not os.path.isdir(source):
    raise FileNotFoundError(f'{source}: source directory does not exist')
  if storage.is_remote(out):
    return _build_remote(fmt, source, out, splits=splits, images=images, categories=categories,
                         classes=classes, clip_length=clip_length, config_name=config_name)
  splits = splits or {'train': DEFAULT_SPLITS[fmt]}
  cfg = PersonsConfig(name=config_name, splits=tuple(sorted(splits.items())), images=images,
                      categories=tuple(categories), classes=tuple(classes),
                      clip_length=clip_length)
  builder = BUILDERS[fmt](data_dir=out, config=cfg)
  if builder.is_prepared():
    meta = builder.info.metadata
    built = (meta.get('source'), meta.get('options'))
    same_source = built[0] is not None and os.path.realpath(built[0]) == os.path.realpath(source)
    if not same_source or built[1] != _options(cfg):   # a link to the same folder is the same
      raise FileExistsError(
          f'{builder.data_dir} already holds a dataset built from {built[0]} with {built[1]}; '
          f'choose another --name or --out (or delete it) to build {source} with '
          f'{_options(cfg)}')
    return builder                      # the same build, already done
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.path.abspath(source)))
  return builder


def _build_remote(fmt, source, out, **kw):
  """`build` into an object store: built in a local temporary folder, then uploaded with its
  dataset_info.json last (what marks a TFDS dataset as complete), so an interrupted upload
  never looks finished. A dataset already there is checked as a local one is."""
  import tempfile  # pylint: disable=g-import-not-at-top
  out = storage.location(out)
  with tempfile.TemporaryDirectory(prefix='hvisnet-tfds-') as tmp:
    local = build(fmt, source, tmp, **kw)
    rel = os.path.relpath(local.data_dir, tmp).replace(os.sep, '/')
    there = storage.join(out, rel)
    if storage.isfile(storage.join(there, 'dataset_info.json')):
      theirs = json.loads(storage.read_text(storage.join(there, 'metadata.json')))
      mine = json.loads(open(os.path.join(local.data_dir, 'metadata.json')).read())
      if (theirs.get('source'), theirs.get('options')) != (mine.get('source'), mine.get('options')):
        raise FileExistsError(
            f'{there} already holds a dataset built from {theirs.get("source")} with '
            f'{theirs.get("options")}; choose another --name or --out to build {source}')
    else:
      storage.upload_tree(local.data_dir, there, last=('dataset_info.json',))
  return tfds.builder_from_directory(there)
