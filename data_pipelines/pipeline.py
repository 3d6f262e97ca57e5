"""The training input pipeline: a built TFDS dataset -> fixed-shape batches for the trainer.

Per host: this process's share of the split (tfds.even_splits by process_index /
process_count, so hosts see disjoint clips), repeated and shuffled with a fixed seed. Each
clip gives a frame pair (t0, t1 within `pair_gap` frames; an image gives itself twice) for
the identity loss. Each frame is decoded, resized so its short side is one of `scales`
(long side capped at `max_size`, and shrunk further if needed to fit `pad_size`), flipped
with probability 0.5 (masks, boxes and centers flipped with it), and padded: the image to
pad_size, the instances to max_instances with a `valid` mask. Crowd / ignore instances are
not trained on. Random choices are stateless functions of (seed, process, pair index), and a
run resumed at step s skips the first s batches of the same stream, so resuming reproduces
the uninterrupted stream exactly.

Batch layout is the synthetic source's (hvisnet_jax/synthetic_source.py): images (B,H,W,3)
uint8, boxes (B,M,4), masks (B,M,H,W) bool, inner / centroid (B,M,2) (NaN when absent),
ids (B,M) int32 global identity (0 = padding), valid (B,M) bool; plus ignore_boxes (B,M,4)
and ignore_valid (B,M): crowd / ignore regions, where the trainer makes no negatives.
Frames 2i and 2i+1 are a pair.
"""
from __future__ import annotations

import os
from typing import Dict, Iterator, Optional

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from hvisnet_jax import storage
from hvisnet_jax.data_pipelines import records as records_lib

_SKIP_DECODING = {'frames': tfds.decode.SkipDecoding(),
                  'instances': {'mask': tfds.decode.SkipDecoding()}}


def find_dataset_dir(path: str) -> str:
  """The versioned dataset directory at or under `path` (the one holding dataset_info.json);
  `path` may be a bucket (gs://...: the metadata is read through hvisnet_jax/storage.py, the
  records by tf.data through TensorFlow's own GCS client)."""
  if storage.isfile(storage.join(path, 'dataset_info.json')):
    return storage.location(path)
  found = []
  if storage.is_remote(path):
    found = [storage.join(path, f[:-len('/dataset_info.json')]) for f in storage.walk(path)
             if f.endswith('/dataset_info.json') and '/incomplete' not in '/' + f]
  for dirpath, dirnames, filenames in ([] if storage.is_remote(path) else os.walk(path)):
    dirnames[:] = [d for d in dirnames if not d.startswith('incomplete')]
    if 'dataset_info.json' in filenames:
      found.append(dirpath)
  if not found:
    raise FileNotFoundError(f'{path}: no built TFDS dataset (dataset_info.json) found; build one '
                            'with `hvisnet build-dataset`')
  if len(found) > 1:
    raise ValueError(f'{path} holds {len(found)} datasets ({", ".join(sorted(found))}); point '
                     'data.tfds_dir at one of them')
  return found[0]


def load_builder(path: str) -> tfds.core.DatasetBuilder:
  return tfds.builder_from_directory(find_dataset_dir(path))


def num_identities(builder, split: str) -> int:
  ids = builder.info.metadata.get('num_ids', {})
  if split not in ids:
    raise records_lib.DataInputError(
        f'{builder.data_dir}: no split {split!r} (splits: {sorted(ids) or "none"}); was it '
        'built with hvisnet build-dataset?')
  return int(ids[split])


def _check_config(dcfg, max_instances: int) -> None:
  ph, pw = dcfg.pad_size
  if ph % 32 or pw % 32:
    raise ValueError(f'data.pad_size {tuple(dcfg.pad_size)} must be multiples of 32 (the '
                     'network stride)')
  if not dcfg.scales or min(dcfg.scales) < 32:
    raise ValueError(f'data.scales must be short-side sizes >= 32, got {dcfg.scales}')
  if max_instances < 1:
    raise ValueError(f'data.max_instances must be >= 1, got {max_instances}')
  zoom = (float(dcfg.get('zoom_in', 1.0)), float(dcfg.get('zoom_prob', 0.5)),
          float(dcfg.get('zoom_min_visible', 0.25)))
  if zoom[0] < 1 or not 0 <= zoom[1] <= 1 or not 0 < zoom[2] <= 1:
    raise ValueError(f'data.zoom_in must be >= 1 (1 = off), data.zoom_prob in [0, 1] and '
                     f'data.zoom_min_visible in (0, 1]; got {zoom[0]}, {zoom[1]}, {zoom[2]}')


def _crop_features(masks):
  """(box, inner center, centroid) of each cropped mask: the record builder's own NumPy code
  (records.instance_features), so a cut-off person's centers follow the same definition."""
  from hvisnet_jax.training import centers  # pylint: disable=g-import-not-at-top
  masks = masks.astype(bool)
  box = np.array([centers.box_of(m) for m in masks], np.float32).reshape(-1, 4)
  inner = np.array([centers.inner_center(m) for m in masks], np.float32).reshape(-1, 2)
  cen = np.array([centers.mask_centroid(m) for m in masks], np.float32).reshape(-1, 2)
  return box, inner, cen


def zoom_crop(img, masks, box, inner, cen, ids, ibox, zoom, min_visible: float):
  """Cuts a window of 1/z of the frame's height and width (a zoom-in by z once resized).

  zoom: (z, fy, fx), the window's place given as fractions of the free room. People still
  showing at least `min_visible` of their mask stay, their box and centers recomputed on
  what shows (a person cut by the frame's edge, as in many photos); people cut to a sliver
  become ignore regions, where the trainer makes no negatives.
  """
  z, fy, fx = zoom[0], zoom[1], zoom[2]
  hw = tf.shape(img)[:2]
  hwf = tf.cast(hw, tf.float32)
  ch = tf.clip_by_value(tf.cast(tf.round(hwf[0] / z), tf.int32), 1, hw[0])
  cw = tf.clip_by_value(tf.cast(tf.round(hwf[1] / z), tf.int32), 1, hw[1])
  oy = tf.minimum(tf.cast(fy * tf.cast(hw[0] - ch + 1, tf.float32), tf.int32), hw[0] - ch)
  ox = tf.minimum(tf.cast(fx * tf.cast(hw[1] - cw + 1, tf.float32), tf.int32), hw[1] - cw)
  img = img[oy:oy + ch, ox:ox + cw]
  cut = masks[:, oy:oy + ch, ox:ox + cw]                    # (n, h, w, 1) decoded PNGs
  full = tf.reduce_sum(tf.cast(masks > 0, tf.float32), [1, 2, 3])
  shown = tf.reduce_sum(tf.cast(cut > 0, tf.float32), [1, 2, 3])
  keep = shown >= min_visible * tf.maximum(full, 1.0)
  sliver = (shown > 0) & ~keep
  box, inner, cen = tf.numpy_function(_crop_features, [cut[..., 0] > 0], [tf.float32] * 3,
                                      stateful=False)
  box, inner, cen = (tf.reshape(box, [-1, 4]), tf.reshape(inner, [-1, 2]),
                     tf.reshape(cen, [-1, 2]))
  off = tf.cast(tf.stack([ox, oy, ox, oy]), tf.float32)
  size = tf.cast(tf.stack([cw, ch, cw, ch]), tf.float32)
  moved = tf.clip_by_value(ibox - off, 0.0, size)
  crowd_in = (moved[:, 2] > moved[:, 0]) & (moved[:, 3] > moved[:, 1])
  ibox = tf.concat([tf.boolean_mask(moved, crowd_in), tf.boolean_mask(box, sliver)], 0)
  return (img, tf.boolean_mask(cut, keep), tf.boolean_mask(box, keep),
          tf.boolean_mask(inner, keep), tf.boolean_mask(cen, keep),
          tf.boolean_mask(ids, keep), ibox)


def frame_fn(dcfg, max_instances: int):
  """(example, t, flip, scale index[, zoom]) -> one padded training frame.

  zoom: None, or (apply, z, fy, fx): when apply, the frame is first cut to a window of 1/z
  of its size (zoom_crop), so people appear up to z times larger and cut by the edges.
  """
  pad_h, pad_w = (int(x) for x in dcfg.pad_size)
  scales = tf.constant([float(s) for s in dcfg.scales], tf.float32)
  max_size = float(dcfg.max_size)
  min_visible = float(dcfg.get('zoom_min_visible', 0.25))
  m = max_instances

  def fn(ex, t, flip, scale_index, zoom=None):
    img = tf.io.decode_image(ex['frames'][t], channels=3, expand_animations=False)
    inst = ex['instances']
    in_frame = tf.equal(inst['frame'], tf.cast(t, tf.int32))
    sel = tf.where(in_frame & ~inst['crowd'])[:, 0]
    if zoom is None:          # only the first m are kept; a zoom may cut some of them away
      sel = sel[:m]
    n = tf.shape(sel)[0]
    # Crowd / ignore regions: their boxes, where no location is a negative.
    isel = tf.where(in_frame & inst['crowd'])[:m, 0]
    ibox = tf.gather(inst['box'], isel)

    def decode_masks():         # (n, H, W, 1) uint8, nonzero inside
      return tf.map_fn(lambda b: tf.io.decode_png(b, channels=1), tf.gather(inst['mask'], sel),
                       fn_output_signature=tf.TensorSpec([None, None, 1], tf.uint8))
    # A frame with nobody in it (people left the scene) trains as background.
    hw0 = tf.shape(img)[:2]
    masks = tf.cond(n > 0, decode_masks, lambda: tf.zeros([0, hw0[0], hw0[1], 1], tf.uint8))
    box = tf.gather(inst['box'], sel)
    inner = tf.gather(inst['inner_center'], sel)
    cen = tf.gather(inst['centroid'], sel)
    ids = tf.cast(tf.gather(inst['id'], sel), tf.int32)
    if zoom is not None:
      parts = (img, masks, box, inner, cen, ids, ibox)
      img, masks, box, inner, cen, ids, ibox = tf.cond(
          zoom[0], lambda: zoom_crop(*parts, zoom[1:], min_visible), lambda: parts)
    # At most m instances (the first ones, as the records list them), m ignore regions.
    masks, box, inner, cen, ids, ibox = masks[:m], box[:m], inner[:m], cen[:m], ids[:m], ibox[:m]
    n, ni = tf.shape(ids)[0], tf.shape(ibox)[0]

    hw = tf.cast(tf.shape(img)[:2], tf.float32)
    s = tf.reduce_min(tf.stack([scales[scale_index] / tf.reduce_min(hw),
                                max_size / tf.reduce_max(hw), pad_h / hw[0], pad_w / hw[1]]))
    nh = tf.minimum(tf.cast(tf.round(hw[0] * s), tf.int32), pad_h)
    nw = tf.minimum(tf.cast(tf.round(hw[1] * s), tf.int32), pad_w)
    sy, sx = tf.cast(nh, tf.float32) / hw[0], tf.cast(nw, tf.float32) / hw[1]
    img = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(img, (nh, nw))), 0, 255), tf.uint8)
    masks = tf.image.resize(masks, (nh, nw), method='nearest')[..., 0] > 0
    box = box * tf.stack([sx, sy, sx, sy])
    ibox = ibox * tf.stack([sx, sy, sx, sy])
    inner = inner * tf.stack([sx, sy])
    cen = cen * tf.stack([sx, sy])

    w = tf.cast(nw, tf.float32)

    def flipped():
      return (img[:, ::-1], masks[:, :, ::-1],
              tf.stack([w - box[:, 2], box[:, 1], w - box[:, 0], box[:, 3]], axis=1),
              tf.stack([w - inner[:, 0], inner[:, 1]], axis=1),
              tf.stack([w - cen[:, 0], cen[:, 1]], axis=1))
    img, masks, box, inner, cen = tf.cond(flip, flipped, lambda: (img, masks, box, inner, cen))
    ibox = tf.cond(flip, lambda: tf.stack([w - ibox[:, 2], ibox[:, 1], w - ibox[:, 0],
                                           ibox[:, 3]], axis=1), lambda: ibox)

    rows = [[0, m - n], [0, 0]]
    out = dict(
        images=tf.pad(img, [[0, pad_h - nh], [0, pad_w - nw], [0, 0]]),
        masks=tf.pad(masks, [[0, m - n], [0, pad_h - nh], [0, pad_w - nw]]),
        boxes=tf.pad(box, rows),
        inner=tf.pad(inner, rows, constant_values=np.nan),
        centroid=tf.pad(cen, rows, constant_values=np.nan),
        ids=tf.pad(ids, [[0, m - n]]),
        valid=tf.range(m) < n,
        ignore_boxes=tf.pad(ibox, [[0, m - ni], [0, 0]]),
        ignore_valid=tf.range(m) < ni)
    shapes = dict(images=(pad_h, pad_w, 3), masks=(m, pad_h, pad_w), boxes=(m, 4), inner=(m, 2),
                  centroid=(m, 2), ids=(m,), valid=(m,), ignore_boxes=(m, 4), ignore_valid=(m,))
    return {k: tf.ensure_shape(v, shapes[k]) for k, v in out.items()}
  return fn


_ZOOM_STREAM = 1_000_003


def pair_fn(dcfg, max_instances: int, seed: int, process_index: int):
  """(pair index, clip) -> two frames of the clip, stacked; randomness keyed by the index."""
  frame = frame_fn(dcfg, max_instances)
  gap, n_scales = int(dcfg.pair_gap), len(dcfg.scales)
  zoom_in, zoom_prob = float(dcfg.get('zoom_in', 1.0)), float(dcfg.get('zoom_prob', 0.5))

  def fn(i, ex):
    r = tf.random.stateless_uniform([6], seed=tf.stack([tf.constant(seed, tf.int64) * 65_537 +
                                                        process_index, i]))
    length = tf.shape(ex['frames'])[0]
    t0 = tf.minimum(tf.cast(r[0] * tf.cast(length, tf.float32), tf.int32), length - 1)
    t1 = tf.clip_by_value(t0 + tf.cast(r[1] * (2 * gap + 1), tf.int32) - gap, 0, length - 1)
    flips = (r[2:4] < 0.5) & bool(dcfg.flip)
    sc = tf.minimum(tf.cast(r[4:6] * n_scales, tf.int32), n_scales - 1)
    if zoom_in > 1.0:          # a stream of its own: without zoom the pairs stay as they were
      zr = tf.random.stateless_uniform([8], seed=tf.stack([
          tf.constant(seed, tf.int64) * 65_537 + process_index + _ZOOM_STREAM, i]))
      zooms = [(zr[k] < zoom_prob, 1.0 + zr[k + 1] * (zoom_in - 1.0), zr[k + 2], zr[k + 3])
               for k in (0, 4)]
    else:
      zooms = [None, None]
    a = frame(ex, t0, flips[0], sc[0], zooms[0])
    b = frame(ex, t1, flips[1], sc[1], zooms[1])
    return {k: tf.stack([a[k], b[k]]) for k in a}
  return fn


def _pair_stream(builder, dcfg, seed: int, process_index: int, process_count: int,
                 id_offset: int) -> tf.data.Dataset:
  """This host's infinite, shuffled stream of frame pairs from one dataset's split."""
  num_examples = builder.info.splits[dcfg.split].num_examples
  if num_examples < process_count:
    raise ValueError(f'{builder.data_dir}: split {dcfg.split!r} has {num_examples} clips, '
                     f'fewer than the {process_count} hosts')
  split = tfds.even_splits(dcfg.split, n=process_count, drop_remainder=True)[process_index]
  ds = builder.as_dataset(split=split, shuffle_files=True, decoders=_SKIP_DECODING,
                          read_config=tfds.ReadConfig(shuffle_seed=seed))
  ds = ds.repeat().shuffle(int(dcfg.shuffle_buffer), seed=seed).enumerate()
  ds = ds.map(pair_fn(dcfg, dcfg.max_instances, seed, process_index),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  if id_offset:              # identities of several datasets must not collide
    ds = ds.map(lambda p: dict(p, ids=tf.where(p['ids'] > 0, p['ids'] + id_offset, p['ids'])))
  return ds


def train_dataset(builder, dcfg, local_batch: int, seed: int, start_step: int = 0,
                  process_index: Optional[int] = None,
                  process_count: Optional[int] = None) -> tf.data.Dataset:
  """This host's infinite stream of training batches of `local_batch` frames.

  `builder` may be a list: pairs are then drawn from the datasets with probabilities
  `data.tfds_weights` (default: equal), identities offset so that they stay distinct.
  """
  if process_index is None or process_count is None:
    import jax  # pylint: disable=g-import-not-at-top
    process_index, process_count = jax.process_index(), jax.process_count()
  if local_batch % 2:
    raise ValueError(f'the per-host batch must be even (frame pairs), got {local_batch}')
  _check_config(dcfg, dcfg.max_instances)
  builders = builder if isinstance(builder, (list, tuple)) else [builder]
  streams, offset = [], 0
  for b in builders:
    streams.append(_pair_stream(b, dcfg, seed, process_index, process_count, offset))
    offset += num_identities(b, dcfg.split)
  if len(streams) == 1:
    ds = streams[0]
  else:
    weights = list(dcfg.get('tfds_weights', ()) or [1.0] * len(streams))
    if len(weights) != len(streams):
      raise ValueError(f'data.tfds_weights has {len(weights)} entries for {len(streams)} '
                       'datasets in data.tfds_dir')
    ds = tf.data.Dataset.sample_from_datasets(streams, weights=weights, seed=seed)
  pairs = local_batch // 2
  ds = ds.skip(start_step * pairs)
  ds = ds.batch(pairs, drop_remainder=True)
  ds = ds.map(lambda b: {k: tf.reshape(v, [local_batch] + v.shape[2:].as_list())
                         for k, v in b.items()})
  opts = tf.data.Options()
  opts.deterministic = True
  return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


class TfdsSource:
  """The trainer's data source over a built TFDS dataset (see train.make_source).

  `batch(step, ...)` returns this process's rows of the global batch as NumPy arrays;
  consecutive steps read one iterator, any other step restarts the stream at that step.
  """

  process_local = True

  def __init__(self, dcfg, global_batch: int, process_index: Optional[int] = None,
               process_count: Optional[int] = None):
    tf.config.set_visible_devices([], 'GPU')     # the accelerator belongs to JAX
    if process_index is None or process_count is None:
      import jax  # pylint: disable=g-import-not-at-top
      process_index, process_count = jax.process_index(), jax.process_count()
    if not dcfg.tfds_dir:
      raise ValueError("data.source is 'tfds' but data.tfds_dir is empty; set it to a dataset "
                       'built with `hvisnet build-dataset`')
    # Several datasets: a comma-separated list, mixed by data.tfds_weights.
    dirs = [d.strip() for d in str(dcfg.tfds_dir).split(',') if d.strip()]
    builders = [load_builder(d) for d in dirs]
    self.dcfg = dcfg
    self.builder = builders[0] if len(builders) == 1 else builders
    self.num_ids = sum(num_identities(b, dcfg.split) for b in builders)
    self.padded = tuple(int(x) for x in dcfg.pad_size)
    self.max_instances = int(dcfg.max_instances)
    self.local_batch = global_batch // process_count
    self.process = (process_index, process_count)
    self._it: Optional[Iterator] = None
    self._next = -1
    # data.tfds_stages ((first step, weights), ...): train.stages' own mixes (recipe.py).
    self.stages = [(0, tuple(dcfg.get('tfds_weights', ()) or ()))] + [
        (int(start), tuple(w)) for start, w in (dcfg.get('tfds_stages', ()) or ())]
    self._stage = None

  def batch(self, step: int, batch_size: int, seed: int) -> Dict[str, np.ndarray]:
    del batch_size                       # fixed at construction (per-host share)
    stage = max(i for i, (start, _) in enumerate(self.stages) if start <= step)
    if self._it is None or step != self._next or stage != self._stage:
      start, weights = self.stages[stage]
      dcfg = self.dcfg
      if stage:
        dcfg = ml_collections.ConfigDict(self.dcfg.to_dict())
        dcfg.tfds_weights = weights
      # Each stage's mix is its own stream (its own shuffle seed) from its first step: a
      # resumed run reads on exactly, and a stage starts without skipping the steps before.
      ds = train_dataset(self.builder, dcfg, self.local_batch, seed + stage,
                         start_step=step - start,
                         process_index=self.process[0], process_count=self.process[1])
      self._it = iter(tfds.as_numpy(ds))
      self._stage = stage
    self._next = step + 1
    return next(self._it)
