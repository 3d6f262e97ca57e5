"""Per-frame inference: any HxW RGB frame in, padded instances in its coordinates out.

Frames are resized on the host (inputs.py), then padding, the network and decoding run in
one jitted function per input shape; masks are pasted and the label map made on the host
(host_paste.py) or in jit. configure(input_size=[352, 800]) runs several sizes and keeps
each person from the one that suits its height; a crowd pass does so only on frames with
a distant crowd (multiscale.py). Batches are split over the devices (NamedSharding; on a
CPU, devices.py splits the host). Loading is loading.py's, writing an export export.py's.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, NamedTuple, Optional, Tuple

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hvisnet_jax.model import hvisnet as model_lib
from hvisnet_jax.inference import export as export_lib
from hvisnet_jax.inference import host_paste
from hvisnet_jax.inference.inputs import check_frames, check_settings, resize_plan
from hvisnet_jax.inference import multiscale
from hvisnet_jax.inference import postprocess

# inference.crowd_full_share of a model exported before it existed (config_defaults).
CROWD_FULL_SHARE = 0.8

OUTPUT_KEYS = ('boxes', 'scores', 'embeddings', 'valid', 'label_map', 'mask_logits',
               'mask_boxes')


class Pending(NamedTuple):
  """Inference started by Predictor.dispatch; Predictor.collect finishes it."""
  outputs: Dict[str, jax.Array]    # device arrays, batched (padded to the device count)
  frame_hw: Tuple[int, int]
  count: int                       # frames given to dispatch
  more_sizes: Tuple['Pending', ...] = ()   # the same frames at the larger input sizes
  frames: Optional[np.ndarray] = None      # kept for a crowd pass (collect decides)


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
    self._replicated = NamedSharding(mesh, PartitionSpec())
    self.variables = jax.device_put(variables, self._replicated)
    # Attentions and embeddings only where an instance is kept (FCOSBlendHead).
    self.model = model_lib.HVISNet(config.model, train=False, dense_instance_outputs=False)
    self._dispatched = False      # settings are read when a frame size is first traced
    self._more_sizes = []         # Predictors at larger input sizes (configure)
    self._crowd = None            # the crowd pass's Predictor (inference.crowd_size)
    self.crowd_frames = 0         # frames that ran the crowd pass so far
    self._compiled = set()        # (batch, height, width) compiled by compile_for
    self._set_crowd(int(config.inference.get('crowd_size', 0) or 0))

  @classmethod
  def from_export(cls, directory: str = None) -> 'Predictor':
    """An exported model: a folder (local or gs://) or a built-in name (loading.py)."""
    from hvisnet_jax.inference import loading  # pylint: disable=g-import-not-at-top
    return loading.load_export(directory)

  @classmethod
  def from_spec(cls, spec: str) -> 'Predictor':
    """The benchmarks' spec 'NAME_OR_DIR[@[SIZE[+SIZE...]][xN][cCROWD]]' (loading.py)."""
    from hvisnet_jax.inference import loading  # pylint: disable=g-import-not-at-top
    return loading.load_spec(spec)

  @classmethod
  def from_files(cls, config_spec: str, variables_path: str = None, seed: int = 0):
    """A config file[:arg] with an orbax variables folder, or initialised (loading.py)."""
    from hvisnet_jax.inference import loading  # pylint: disable=g-import-not-at-top
    return loading.load_files(config_spec, variables_path, seed)

  def export(self, directory: str, train_log: str = None, dtype: str = 'float32') -> None:
    """config.json + variables/ in `directory`, whole or not at all (export.py)."""
    export_lib.write_export(self, directory, train_log=train_log, dtype=dtype)

  def set_variables(self, variables: Dict[str, Any]) -> None:
    """New weights of the same shapes, in this predictor and its other input sizes, keeping
    every compiled shape: the trainer's evaluators reuse one predictor, since a new one per
    evaluation compiles every frame size again and the old executables stay in jit's cache
    (after a few evaluations XLA could no longer map memory for new code)."""
    self.variables = jax.device_put(variables, self._replicated)
    for p in self._more_sizes + ([self._crowd] if self._crowd is not None else []):
      p.variables = self.variables

  def configure(self, input_size=None, max_detections: Optional[int] = None,
                crowd_size: Optional[int] = None) -> None:
    """Inference settings other than the model's, before the first frame (each checked by
    inputs.check_settings, which says what they mean): input sizes, people kept per frame,
    the crowd pass's short side (0 = none; default: the model's)."""
    if self._dispatched:
      raise RuntimeError('configure() must come before the first frame (compiled shapes '
                         'keep the settings they were traced with)')
    icfg = self.config.inference
    sizes = check_settings(input_size, max_detections, crowd_size, icfg.min_size)
    if (len(sizes) > 1 or crowd_size) and not self._blend_on_host:
      raise ValueError('several input sizes need inference.paste and inference.blend '
                       "'host' (the passes are merged on the host)")
    if max_detections is not None:
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
      share = icfg.get('crowd_full_share', CROWD_FULL_SHARE)
      if not 0 <= share <= 1:
        raise ValueError('inference.crowd_full_share must be a share of the first pass\'s '
                         f'slots in [0, 1] (0 = only the size rule), got {share!r}')
      slots = max(int(icfg.get('crowd_max_detections', 300)), int(icfg.max_detections))
      self._crowd = self._at_size(size, self._long_side(size), slots)

  @property
  def crowd_size(self) -> Optional[int]:
    """The crowd pass's short side, or None when there is none."""
    return int(self._crowd.config.inference.min_size) if self._crowd else None

  def crowd_frames_of(self, out: Dict[str, np.ndarray], frame_hw) -> np.ndarray:
    """(batch,) bool: the frames whose first pass found a crowd. Either a distant one: at
    least inference.crowd_min_people people scored >= crowd_min_score and under
    crowd_max_height_px of the first pass's input tall, of which a student that finds that
    many small people misses more; pedestrians at mid range (vtest.avi) or a close crowd do
    not qualify: there the larger pass finds little more and takes clutter for people. Or a
    dense one: such people in at least crowd_full_share of the first pass's slots, which
    then dropped people for want of slots. The size rule reads one model's box heights
    (a model trained on other data boxes the same far crowd taller); a full pass does not
    (docs/results.md, "A crowd pass")."""
    icfg = self.config.inference
    h = frame_hw[0]
    scale = resize_plan(h, frame_hw[1], icfg)[0][0] / h
    tall = (out['boxes'][..., 3] - out['boxes'][..., 1]) * scale
    confident = out['valid'] & (out['scores'] >= icfg.get('crowd_min_score', 0.25))
    crowded = (confident & (tall < icfg.get('crowd_max_height_px', 40))).sum(-1) >= icfg.get(
        'crowd_min_people', 8)
    share = float(icfg.get('crowd_full_share', CROWD_FULL_SHARE) or 0)
    if share > 0:
      crowded |= confident.sum(-1) >= max(1, int(np.ceil(share * out['valid'].shape[-1])))
    return crowded

  @property
  def input_sizes(self) -> Tuple[int, ...]:
    """The short sides each frame runs at (one unless configure() was given several)."""
    return tuple(int(p.config.inference.min_size) for p in [self] + self._more_sizes)

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
      label, det['valid'] = postprocess.paste_and_label_in_jit(
          det['mask_logits'], small, det['valid'], rh, rw, icfg.mask_thresh,
          icfg.get('min_visible_fraction', 0.0))
      rows = jnp.minimum(((jnp.arange(h) + 0.5) * (rh / h)).astype(jnp.int32), rh - 1)
      cols = jnp.minimum(((jnp.arange(w) + 0.5) * (rw / w)).astype(jnp.int32), rw - 1)
      det['label_map'] = label[:, rows][:, :, cols]
    else:
      det['label_map'], det['valid'] = postprocess.paste_and_label_in_jit(
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
    return multiscale.merge_crowd_pass(base, crowd, crowded, bands, icfg.nms_iou,
                                       self._crowd.config.inference.max_detections)

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
    """Compiles ahead of the first frame of a given shape (e.g. before a video starts); a
    shape compiled before costs nothing."""
    if (batch, height, width) in self._compiled:
      return
    self._compiled.add((batch, height, width))
    pending = self.dispatch(np.zeros((batch, height, width, 3), np.uint8))
    jax.block_until_ready([pending.outputs] + [m.outputs for m in pending.more_sizes])
    if self._crowd is not None:
      self._crowd.compile_for(batch, height, width)
