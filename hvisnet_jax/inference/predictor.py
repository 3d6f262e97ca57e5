"""Per-frame inference: any HxW RGB frame in, padded instances in that frame's coordinates out.

Frames are resized on the host (short side to `min_size`, long side capped at
`max_size`); padding to a multiple of 32, the network and post-processing run inside one
jitted function per input shape (jit's own cache compiles each frame size once). Masks
are pasted into the frame and the label map made on the host by default
(inference.paste='host', host_paste.py), or inside jit ('device').

configure(input_size=[352, 800]) runs each frame at several sizes and keeps each person
from the pass that suits its height (multiscale.py): distant crowds and people close up.
A crowd pass (inference.crowd_size, configure(crowd_size=...)) does the same only on the
frames where the first pass sees a crowd of small people, so that ordinary footage keeps
the first size's speed.

Batches are split over the predictor's devices (data parallel, NamedSharding); on a CPU,
`use_cpu_devices` splits the host into several XLA devices so that frames run side by
side: XLA runs one frame's small convolutions on about one core (2 cores: 1.5-1.9x the
frames per second of one device, benchmarks/real_benchmark.py).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from typing import Any, Dict, NamedTuple, Optional, Tuple

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hvisnet_jax import atomic, storage
from hvisnet_jax.model import hvisnet as model_lib
from hvisnet_jax.inference import export as export_lib
from hvisnet_jax.inference import host_paste
from hvisnet_jax.inference import multiscale
from hvisnet_jax.inference import postprocess

# Committed models: 'real' (the default; MobileNetV2 student distilled on real footage,
# configs/hvisnet_real.py) and 'synthetic' (tiny DLA, trained on synthetic cartoons).
MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models')
BUILT_IN_MODELS = ('real', 'synthetic')
DEFAULT_MODEL = 'real'


def model_dir(name_or_dir: Optional[str] = None) -> str:
  """A built-in model's name ('real', 'synthetic'; None = the default) or an export directory."""
  name_or_dir = name_or_dir or DEFAULT_MODEL
  if name_or_dir in BUILT_IN_MODELS:
    return os.path.join(MODELS_DIR, name_or_dir)
  return name_or_dir


def _replaceable_export(path: str) -> bool:
  """An empty folder, or one an export wrote (config.json + variables/ [+ train_log.jsonl])."""
  if storage.is_remote(path):
    entries = {f.split('/')[0] for f in storage.walk(path)}
  elif not os.path.isdir(path) or os.path.islink(path):
    return False
  else:
    entries = set(os.listdir(path))
  return not entries or ('config.json' in entries and
                         entries <= {'config.json', 'variables', 'train_log.jsonl'})


@contextlib.contextmanager
def local_model_dir(name_or_dir: Optional[str] = None):
  """model_dir(name_or_dir) as a local folder: a remote export (gs://...) is downloaded into
  a temporary one for the duration."""
  directory = model_dir(name_or_dir)
  if not storage.is_remote(directory):
    yield directory
    return
  directory = storage.location(directory)
  if not storage.isfile(storage.join(directory, 'config.json')):
    raise FileNotFoundError(f'{directory}: not an exported model (no config.json)')
  with tempfile.TemporaryDirectory(prefix='hvisnet-model-') as tmp:
    storage.download_tree(directory, tmp)
    yield tmp


OUTPUT_KEYS = ('boxes', 'scores', 'embeddings', 'valid', 'label_map', 'mask_logits',
               'mask_boxes')


def resize_plan(height: int, width: int, icfg: ml_collections.ConfigDict):
  """(resized_h, resized_w), (padded_h, padded_w) for a frame of height x width."""
  scale = icfg.min_size / min(height, width)
  if max(height, width) * scale > icfg.max_size:
    scale = icfg.max_size / max(height, width)
  rh, rw = max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))
  d = icfg.size_divisibility
  return (rh, rw), (-(-rh // d) * d, -(-rw // d) * d)


def check_frames(frames: Any, batched: bool) -> np.ndarray:
  """Validates frames, returning an ndarray; raises ValueError saying what was expected."""
  arr = np.asarray(frames)
  want = '(N, H, W, 3)' if batched else '(H, W, 3)'
  rank = 4 if batched else 3
  if arr.ndim != rank or arr.shape[-1] != 3:
    raise ValueError(f'expected an RGB frame{"s" if batched else ""} of shape {want}, got '
                     f'shape {arr.shape}')
  if arr.size == 0:
    raise ValueError(f'expected a non-empty frame of shape {want}, got shape {arr.shape}')
  if arr.dtype != np.uint8:
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
      raise ValueError(f'expected uint8 or real-valued pixels, got dtype {arr.dtype}')
    if not np.isfinite(arr).all():
      raise ValueError('frame holds non-finite values (NaN or inf); expected pixel values '
                       'in [0, 255]')
    if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
      # A [0, 1] float image read as [0, 255] is black: the model would find nobody.
      global _WARNED_UNIT_RANGE
      if not _WARNED_UNIT_RANGE:
        logging.warning('float frames with values in [0, 1]: scaled by 255 (the model '
                        'expects pixel values in [0, 255]; pass uint8 to avoid this guess)')
        _WARNED_UNIT_RANGE = True
      arr = arr.astype(np.float32) * 255.0
  return arr


_WARNED_UNIT_RANGE = False


class Pending(NamedTuple):
  """Inference started by Predictor.dispatch; Predictor.collect finishes it."""
  outputs: Dict[str, jax.Array]    # device arrays, batched (padded to the device count)
  frame_hw: Tuple[int, int]
  count: int                       # frames given to dispatch
  more_sizes: Tuple['Pending', ...] = ()   # the same frames at the larger input sizes
  frames: Optional[np.ndarray] = None      # kept for a crowd pass (collect decides)


def check_crowd_size(crowd_size: Optional[int], sizes) -> None:
  """A crowd pass's short side against the input sizes it would run beside (ValueError)."""
  if crowd_size is not None and (int(crowd_size) != crowd_size or crowd_size < 0):
    raise ValueError(f'crowd size must be a whole number of pixels (0 = none), got {crowd_size}')
  if crowd_size and len(sizes) > 1:
    raise ValueError('a crowd pass runs beside one input size; several input sizes already '
                     f'run on every frame (got sizes {list(sizes)} and crowd size {crowd_size})')
  if crowd_size and crowd_size <= sizes[0]:
    raise ValueError(f'the crowd size ({crowd_size}) must exceed the input size ({sizes[0]})')


def default_cpu_devices() -> int:
  """2 where the process may use 2+ cores: measured on 2 cores only (README, speed)."""
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:           # not on Linux
    cores = os.cpu_count() or 1
  return min(2, cores)


def use_cpu_devices(n: Optional[int] = None) -> None:
  """Splits the host CPU into n XLA devices (default: default_cpu_devices()).

  Must run before JAX executes anything (JAX fixes its devices then); the CLI calls it
  first thing. Accelerator backends are unaffected.
  """
  n = default_cpu_devices() if n is None else n
  if n < 1:
    raise ValueError(f'--cpu-devices must be at least 1, got {n}')
  try:
    jax.config.update('jax_num_cpu_devices', n)
  except RuntimeError as e:        # JAX already started: keep its devices, say so
    logging.warning('could not split the CPU into %d devices: %s', n, e)


def overlay(base, loaded, source, path=()):
  """`base` with every leaf present in `loaded` replaced, checking names and shapes."""
  if not isinstance(loaded, dict):
    if not hasattr(base, 'shape') or tuple(base.shape) != tuple(np.shape(loaded)):
      raise ValueError(f'{source}: {"/".join(path)} has shape {np.shape(loaded)}, the config '
                       f'expects {getattr(base, "shape", "a sub-tree")}')
    return jnp.asarray(loaded, base.dtype)
  if not isinstance(base, dict):
    raise ValueError(f'{source}: {"/".join(path)} is a sub-tree, the config expects a tensor')
  out = dict(base)
  for k, v in loaded.items():
    if k not in base:
      raise ValueError(f'{source}: {"/".join(path + (k,))} does not exist in the model config')
    out[k] = overlay(base[k], v, source, path + (k,))
  return out


class Predictor:
  """Jitted HVISNet inference with fixed-size outputs per frame.

  Outputs (numpy, per frame; N = inference.max_detections, instances by descending score):
    boxes (N, 4) x1,y1,x2,y2 in frame pixels; scores (N,); embeddings (N, D), unit norm;
    valid (N,) bool (a detection with an empty mask, or a duplicate hidden under a
    higher-scoring one, is not valid); label_map (H, W) int32, the index of the instance
    owning each pixel or -1; mask_logits (N, R, R), the blender's output inside
    mask_boxes (N, 4), each box grown by model.blendmask.box_margin (the box itself at 0).
  """

  def __init__(self, config: ml_collections.ConfigDict, variables: Dict[str, Any],
               devices: Optional[Any] = None):
    """devices: where batches run, split along the batch (default: every local device of
    JAX's default backend); a batch is padded to a multiple of their number."""
    self.config = config
    self.devices = list(devices if devices is not None else jax.local_devices())
    mesh = Mesh(np.array(self.devices), ('data',))
    self._batch_sharding = NamedSharding(mesh, PartitionSpec('data'))
    self.variables = jax.device_put(variables, NamedSharding(mesh, PartitionSpec()))
    # Attentions and embeddings only where an instance is kept (FCOSBlendHead).
    self.model = model_lib.HVISNet(config.model, train=False, dense_instance_outputs=False)
    self._dispatched = False      # settings are read when a frame size is first traced
    self._more_sizes = []         # Predictors at larger input sizes (configure)
    self._crowd = None            # the crowd pass's Predictor (inference.crowd_size)
    self.crowd_frames = 0         # frames that ran the crowd pass so far
    self._set_crowd(int(config.inference.get('crowd_size', 0) or 0))

  @classmethod
  def from_export(cls, directory: str = None):
    """An exported model (config.json + variables/): a directory, or a built-in model's
    name ('real', the default, or 'synthetic'; see BUILT_IN_MODELS)."""
    import json  # pylint: disable=g-import-not-at-top
    if storage.is_remote(model_dir(directory)):
      with local_model_dir(directory) as local:
        return cls.from_export(local)
    directory = model_dir(directory)
    cfg_path = os.path.join(directory, 'config.json')
    if not os.path.isfile(cfg_path):
      raise FileNotFoundError(f'{directory}: not an exported model (no config.json)')
    with open(cfg_path) as f:
      config = ml_collections.ConfigDict(json.load(f))
    # The shapes alone (no compile, no computation) are the template an export fills.
    base = jax.eval_shape(lambda: model_lib.init_variables(config.model, jax.random.PRNGKey(0)))
    loaded = export_lib.load_variables(os.path.join(directory, 'variables'))
    variables = overlay(base, loaded, directory)
    missing = [jax.tree_util.keystr(k) for k, v in jax.tree_util.tree_leaves_with_path(variables)
               if isinstance(v, jax.ShapeDtypeStruct)]
    if missing:
      raise ValueError(f'{directory}: the export lacks {len(missing)} tensors of its config '
                       f'(first: {missing[0]})')
    return cls(config, variables)

  @classmethod
  def from_spec(cls, spec: str):
    """The benchmarks' model spec 'NAME_OR_DIR[@[SIZE[+SIZE...]][xN][cCROWD]]'
    ('real@352+800x300', 'real@c0'): an export (from_export) run at those input sizes,
    keeping N detections, with a crowd pass at short side CROWD (0 = none)."""
    name, _, size = spec.partition('@')
    size, _, crowd = size.partition('c')
    size, _, max_det = size.partition('x')
    try:
      sizes = [int(v) for v in size.split('+')] if size else None
      max_det = int(max_det) if max_det else None
      crowd = int(crowd) if crowd else None
    except ValueError:
      raise ValueError(f'model spec {spec!r}: expected NAME[@[SIZE[+SIZE...]][xN][cCROWD]], '
                       "e.g. 'real@352+800x300' or 'real@c0'") from None
    pred = cls.from_export(None if name == DEFAULT_MODEL else name)
    pred.configure(input_size=sizes, max_detections=max_det, crowd_size=crowd)
    return pred

  def configure(self, input_size=None, max_detections: Optional[int] = None,
                crowd_size: Optional[int] = None) -> None:
    """Inference settings other than the model's, before the first frame.

    input_size: the short side frames run at (the long side capped in the model's own
    proportion) instead of `inference.min_size`: larger finds smaller people (crowds) at
    the network's cost, which grows with the pixels. Several sizes (ascending, e.g.
    (352, 800)) run every frame at each and keep each person from the size that suits its
    height (multiscale.py): distant crowds from the larger, people close up from the
    smaller, at the cost of all passes. max_detections: people kept per frame (each pass
    keeps as many); each slot costs its mask and embedding whether filled or not (on 2 CPU
    cores 300 slots instead of 100 cost about a fifth of the frame rate). crowd_size: the
    short side of the crowd pass (0 = none; default: the model's inference.crowd_size),
    run only on frames where the first size finds a crowd (see crowd_frames_of); off when
    several input sizes already run on every frame.
    """
    if self._dispatched:
      raise RuntimeError('configure() must come before the first frame (compiled shapes '
                         'keep the settings they were traced with)')
    icfg = self.config.inference
    sizes = ([] if input_size is None else
             list(input_size) if isinstance(input_size, (list, tuple)) else [input_size])
    for size in sizes:
      if int(size) != size or size < 64:
        raise ValueError(f'input size must be a whole number of pixels >= 64, got {size}')
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
      raise ValueError(f'input sizes must ascend (the first is the smallest), got {sizes}')
    check_crowd_size(crowd_size, sizes or [icfg.min_size])
    if (len(sizes) > 1 or crowd_size) and not self._blend_on_host:
      raise ValueError('several input sizes need inference.paste and inference.blend '
                       "'host' (the passes are merged on the host)")
    if max_detections is not None:
      if int(max_detections) != max_detections or max_detections < 1:
        raise ValueError(f'max detections must be a whole number >= 1, got {max_detections}')
      icfg.max_detections = int(max_detections)
    shapes = [(int(s), self._long_side(s)) for s in sizes]
    if shapes:
      icfg.update(min_size=shapes[0][0], max_size=shapes[0][1])
    else:                         # keep the larger sizes, with the new max_detections
      shapes = [None] + [(p.config.inference.min_size, p.config.inference.max_size)
                         for p in self._more_sizes]
    self._more_sizes = []
    for short, long_side in shapes[1:]:
      self._more_sizes.append(self._at_size(short, long_side))
    if crowd_size is None:        # the model's, where it still exceeds the input size
      crowd_size = int(icfg.get('crowd_size', 0) or 0)
      if self._more_sizes or crowd_size <= icfg.min_size:
        crowd_size = 0
    icfg.crowd_size = int(crowd_size)
    self._set_crowd(int(crowd_size))

  def _long_side(self, short: int) -> int:
    """The long-side cap for short side `short`, in the model's own proportion."""
    icfg = self.config.inference
    d = icfg.size_divisibility
    return -(-round(short * icfg.max_size / icfg.min_size) // d) * d

  def _at_size(self, short: int, long_side: int, max_detections: Optional[int] = None):
    """This model at another input size (a pass of several sizes, or the crowd pass)."""
    config = ml_collections.ConfigDict(self.config.to_dict())
    config.inference.update(min_size=short, max_size=long_side, crowd_size=0)
    if max_detections:
      config.inference.max_detections = max_detections
    return Predictor(config, self.variables, self.devices)

  def _set_crowd(self, size: int) -> None:
    self._crowd = None
    if size:
      if not self._blend_on_host:
        raise ValueError("a crowd pass needs inference.paste and inference.blend 'host' (the "
                         'passes are merged on the host); set inference.crowd_size 0')
      icfg = self.config.inference
      slots = max(int(icfg.get('crowd_max_detections', 300)), int(icfg.max_detections))
      self._crowd = self._at_size(size, self._long_side(size), slots)

  @property
  def crowd_size(self) -> Optional[int]:
    """The crowd pass's short side, or None when there is none."""
    return int(self._crowd.config.inference.min_size) if self._crowd else None

  def crowd_frames_of(self, out: Dict[str, np.ndarray], frame_hw) -> np.ndarray:
    """(batch,) bool: the frames whose first pass found a crowd: at least
    inference.crowd_min_people people scored >= crowd_min_score and under
    crowd_max_height_px of the first pass's input tall: a distant crowd, of which a student
    that finds that many small people misses more. Pedestrians at mid range (vtest.avi) or a
    close crowd do not qualify: there the larger pass finds little more and takes clutter
    for people (docs/results.md, "A crowd pass")."""
    icfg = self.config.inference
    h = frame_hw[0]
    scale = resize_plan(h, frame_hw[1], icfg)[0][0] / h
    tall = (out['boxes'][..., 3] - out['boxes'][..., 1]) * scale
    small = out['valid'] & (out['scores'] >= icfg.get('crowd_min_score', 0.25)) & (
        tall < icfg.get('crowd_max_height_px', 40))
    return small.sum(-1) >= icfg.get('crowd_min_people', 8)

  @property
  def input_sizes(self) -> Tuple[int, ...]:
    """The short sides each frame runs at (one unless configure() was given several)."""
    return tuple(int(p.config.inference.min_size) for p in [self] + self._more_sizes)

  def export(self, directory: str, train_log: str = None, dtype: str = 'float32') -> None:
    """Writes config.json + variables/ (what from_export reads), whole or not at all.

    dtype 'bfloat16' halves the files (from_export casts back to float32). `directory`
    must be new, empty or an earlier export, which is replaced whole; a folder holding
    anything else is refused, and nothing this call did not write is deleted.

    A remote `directory` (gs://...) is written locally, then uploaded with config.json last;
    an earlier export there loses its config.json first, so no half-replaced export loads.
    """
    directory = storage.location(directory)
    if storage.exists(directory) and not _replaceable_export(directory):
      raise FileExistsError(
          f'{directory}: exists and is not an hvisnet export (an export holds only config.json, '
          'variables/ and train_log.jsonl); choose another output folder or empty this one')
    if storage.is_remote(directory) or (train_log and storage.is_remote(train_log)):
      with tempfile.TemporaryDirectory(prefix='hvisnet-export-') as tmp:
        log = None
        if train_log and storage.exists(train_log):
          log = os.path.join(tmp, 'train_log.jsonl')
          with open(log, 'w') as f:
            f.write(storage.read_text(train_log))
        local = directory if not storage.is_remote(directory) else os.path.join(tmp, 'export')
        self.export(local, train_log=log, dtype=dtype)
        if storage.is_remote(directory):
          earlier = storage.walk(directory)
          storage.remove_files(directory, [f for f in earlier if f == 'config.json'])
          storage.remove_files(directory, [f for f in earlier if f != 'config.json'])
          storage.upload_tree(local, directory)
      return
    parent, name = os.path.split(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = atomic.staging_dir(parent, f'.{name}.partial-')
    try:
      with atomic.errors_name(directory):
        self._write_export(tmp, directory, parent, name, train_log, dtype)
    except BaseException:
      shutil.rmtree(tmp, ignore_errors=True)
      raise

  def _write_export(self, tmp, directory, parent, name, train_log, dtype):
    """Fills the staging folder `tmp`, then swaps it in for `directory` (an earlier export
    is set aside first and removed once the new one is in place)."""
    variables = self.variables
    if dtype != 'float32':
      variables = jax.tree.map(lambda x: np.asarray(x).astype(jnp.dtype(dtype))
                               if jnp.issubdtype(x.dtype, jnp.floating) else x, variables)
    export_lib.save_variables(os.path.join(tmp, 'variables'), variables)
    with open(os.path.join(tmp, 'config.json'), 'w') as f:
      f.write(self.config.to_json(indent=2, sort_keys=True))
    if train_log:
      shutil.copy(train_log, os.path.join(tmp, 'train_log.jsonl'))
    old = None
    if os.path.lexists(directory):       # an earlier export (checked above): set it aside
      old = tempfile.mkdtemp(dir=parent, prefix=f'.{name}.old-')
      os.replace(directory, os.path.join(old, name))
    os.replace(tmp, directory)
    if old:
      shutil.rmtree(old, ignore_errors=True)

  @classmethod
  def from_files(cls, config_spec: str, variables_path: str = None, seed: int = 0):
    """Config file[:arg] plus an orbax variables directory (see export_lib.save_variables).

    A checkpoint holding only some modules (e.g. the backbone from `hvisnet convert-torch`)
    fills those modules; the rest keep their initialisation from `seed`. Shapes must match
    the config, or the error names the first mismatched tensor.
    """
    from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
    config = config_defaults.load_config(config_spec)
    variables = model_lib.init_variables(config.model, jax.random.PRNGKey(seed))
    if variables_path:
      loaded = export_lib.load_variables(variables_path)
      variables = overlay(variables, loaded, variables_path)
    return cls(config, variables)

  @functools.partial(jax.jit, static_argnums=(0, 3))
  def _run(self, variables, frames, frame_hw):
    """`frames` already at the network's size (resize_plan of `frame_hw`, the size of the
    frames given to dispatch); boxes and label maps come back at `frame_hw`."""
    h, w = frame_hw
    icfg, mcfg = self.config.inference, self.config.model
    (rh, rw), (ph, pw) = resize_plan(h, w, icfg)
    x = frames.astype(jnp.float32)
    x = jnp.pad(x, ((0, 0), (0, ph - rh), (0, pw - rw), (0, 0)))
    outputs = self.model.apply(variables, x)
    head = {col: tree['head'] for col, tree in variables.items() if 'head' in tree}
    # Blending on the host: for the valid instances only (host_paste.blend).
    det = postprocess.detect(outputs, mcfg, icfg, (ph, pw), (rh, rw), head,
                             blend=not self._blend_on_host)
    if self._blend_on_host:
      det['bases'], det['blend_windows'] = outputs['bases'], det['mask_boxes']
    sx, sy = w / rw, h / rh
    boxes = det['boxes'] * jnp.array([sx, sy, sx, sy], jnp.float32)
    boxes = jnp.minimum(boxes, jnp.array([w, h, w, h], jnp.float32))
    det['boxes'] = boxes
    # Masks live in their windows (the boxes grown by model.blendmask.box_margin); a
    # window may reach past the frame (pasting clips it).
    windows = det['mask_boxes'] * jnp.array([sx, sy, sx, sy], jnp.float32)
    det['mask_boxes'] = windows
    if self._paste_on_host:
      return det
    if icfg.get('paste_at_input_resolution', False) and (rh, rw) != (h, w):
      # Ours: masks pasted at the network's input resolution, the label map then scaled to
      # the frame by nearest neighbour. Pasting every instance at full frame size costs
      # more than the whole MobileNetV2 network on a CPU (vtest.avi: 290 of 396 ms).
      small = windows * jnp.array([1 / sx, 1 / sy, 1 / sx, 1 / sy], jnp.float32)
      label, det['valid'] = postprocess.paste_and_label(
          det['mask_logits'], small, det['valid'], rh, rw, icfg.mask_thresh,
          icfg.get('min_visible_fraction', 0.0))
      rows = jnp.minimum(((jnp.arange(h) + 0.5) * (rh / h)).astype(jnp.int32), rh - 1)
      cols = jnp.minimum(((jnp.arange(w) + 0.5) * (rw / w)).astype(jnp.int32), rw - 1)
      det['label_map'] = label[:, rows][:, :, cols]
    else:
      det['label_map'], det['valid'] = postprocess.paste_and_label(
          det['mask_logits'], windows, det['valid'], h, w, icfg.mask_thresh,
          icfg.get('min_visible_fraction', 0.0))
    return det

  # jit on a bound method hashes `self`; identity hashing keeps one cache per predictor.
  __hash__ = object.__hash__

  @property
  def _paste_on_host(self) -> bool:
    where = self.config.inference.get('paste', 'host')
    if where not in ('host', 'device'):
      raise ValueError(f"inference.paste is {where!r}; expected 'host' or 'device'")
    return where == 'host'

  @property
  def _blend_on_host(self) -> bool:
    where = self.config.inference.get('blend', 'host')
    if where not in ('host', 'device'):
      raise ValueError(f"inference.blend is {where!r}; expected 'host' or 'device'")
    return where == 'host' and self._paste_on_host

  @property
  def batch_size(self) -> int:
    """Frames per dispatch that keep every device busy (track_source sends this many)."""
    return len(self.devices)

  def dispatch(self, frames: np.ndarray) -> Pending:
    """Starts inference on a batch (N, H, W, 3) without waiting for it (see collect)."""
    frames = raw = check_frames(frames, batched=True)
    count, (h, w) = len(frames), frames.shape[1:3]
    more = tuple(p.dispatch(frames) for p in self._more_sizes)
    (rh, rw), _ = resize_plan(h, w, self.config.inference)
    if (rh, rw) != (h, w):
      # On the host: OpenCV's area resize takes 2.6 ms for a 576x768 frame, XLA's
      # antialiased resize (dense resampling matrices) 18 ms on 2 CPU cores.
      interp = cv2.INTER_AREA if rh < h else cv2.INTER_LINEAR
      frames = np.stack([cv2.resize(f, (rw, rh), interpolation=interp) for f in frames])
    pad = -count % self.batch_size
    if pad:
      frames = np.concatenate([frames, np.zeros((pad, *frames.shape[1:]), frames.dtype)])
    frames = jax.device_put(frames, self._batch_sharding)
    self._dispatched = True
    kept = raw if self._crowd is not None else None
    return Pending(self._run(self.variables, frames, (h, w)), (h, w), count, more, kept)

  def collect(self, pending: Pending) -> Dict[str, np.ndarray]:
    """Waits for dispatched inference: dict of numpy arrays with a leading batch axis."""
    out = self.readback(pending)
    if pending.more_sizes:
      passes = [self.blend(out)] + [p.blend(p.readback(m))
                                    for p, m in zip(self._more_sizes, pending.more_sizes)]
      h, w = pending.frame_hw
      scales = [resize_plan(h, w, p.config.inference)[0][0] / h for p in [self] + self._more_sizes]
      icfg = self.config.inference
      out = multiscale.merge(passes, multiscale.height_bands(scales, icfg.get(
          'multiscale_split_px', multiscale.SPLIT_PX)), icfg.nms_iou, icfg.max_detections)
    elif self._crowd is not None and pending.frames is not None:
      out = self._with_crowd_pass(out, pending)
    return self.paste(out, pending.frame_hw)

  def _with_crowd_pass(self, out, pending: Pending):
    """The crowd pass on the frames that need it (waited for here: a frame's need is
    known only from its first pass), merged as several input sizes are."""
    crowded = self.crowd_frames_of(out, pending.frame_hw)
    if not crowded.any():
      return out
    self.crowd_frames += int(crowded.sum())
    idx = np.flatnonzero(crowded)
    crowd = self._crowd.blend(self._crowd.readback(self._crowd.dispatch(pending.frames[idx])))
    base = self.blend(out)
    h, w = pending.frame_hw
    scales = [resize_plan(h, w, p.config.inference)[0][0] / h for p in (self, self._crowd)]
    icfg = self.config.inference
    bands = multiscale.height_bands(scales, icfg.get('multiscale_split_px', multiscale.SPLIT_PX))
    slots = self._crowd.config.inference.max_detections
    pick = lambda d, rows: {k: d[k][rows] for k in multiscale.INSTANCE_KEYS + ('valid',)}
    merged = multiscale.merge([pick(base, idx), crowd], bands, icfg.nms_iou, slots)
    calm = np.flatnonzero(~crowded)
    alone = multiscale.merge([pick(base, calm)], [(0.0, np.inf)], icfg.nms_iou, slots)
    res = {k: np.zeros((len(crowded),) + merged[k].shape[1:], merged[k].dtype) for k in merged}
    for k in res:
      res[k][idx], res[k][calm] = merged[k], alone[k]
    return res

  @staticmethod
  def readback(pending: Pending) -> Dict[str, np.ndarray]:
    """The device's outputs as numpy (waits for them); masks not yet pasted when
    inference.paste is 'host'."""
    return {k: np.asarray(v)[:pending.count] for k, v in pending.outputs.items()}

  def paste(self, out: Dict[str, np.ndarray], frame_hw) -> Dict[str, np.ndarray]:
    """Adds the label maps on the host (inference.paste 'host'; a no-op otherwise)."""
    if 'label_map' in out:
      return out
    icfg = self.config.inference
    out = self.blend(out)
    pasted = [host_paste.paste_and_label(out['mask_logits'][b], out['mask_boxes'][b],
                                         out['valid'][b], *frame_hw, icfg.mask_thresh,
                                         icfg.get('min_visible_fraction', 0.0))
              for b in range(len(out['valid']))]
    # Each frame's map stays in Fortran order (host_paste: what COCO RLE scans).
    return dict(out, label_map=np.stack([p[0].T for p in pasted]).transpose(0, 2, 1),
                valid=np.stack([p[1] for p in pasted]))

  def blend(self, out: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Read-back outputs with the valid instances' mask logits blended on the host
    (inference.blend 'host'; a no-op when the device blended). The caller's dict stays as
    it was (bench replays it)."""
    if 'bases' not in out:
      return out
    bm = self.config.model.blendmask
    res = self.config.inference.get('mask_resolution', 0) or bm.pooler_resolution
    out = dict(out)
    bases, attn, windows = (out.pop(k) for k in ('bases', 'attentions', 'blend_windows'))
    out['mask_logits'] = np.stack([
        host_paste.blend(bases[b], attn[b], windows[b], out['valid'][b], bm.attn_size, res)
        for b in range(len(out['valid']))])
    return out

  def predict_batch(self, frames: np.ndarray) -> Dict[str, np.ndarray]:
    """Batch (N, H, W, 3) -> dict of numpy arrays with a leading batch axis."""
    return self.collect(self.dispatch(frames))

  def predict(self, frame: np.ndarray) -> Dict[str, np.ndarray]:
    """One frame (H, W, 3) -> dict of numpy arrays (see the class docstring)."""
    frame = check_frames(frame, batched=False)
    return {k: v[0] for k, v in self.predict_batch(frame[None]).items()}

  def compile_for(self, batch: int, height: int, width: int) -> None:
    """Compiles ahead of the first frame of a given shape (e.g. before a video starts)."""
    pending = self.dispatch(np.zeros((batch, height, width, 3), np.uint8))
    jax.block_until_ready([pending.outputs] + [m.outputs for m in pending.more_sizes])
    if self._crowd is not None:
      self._crowd.compile_for(batch, height, width)
