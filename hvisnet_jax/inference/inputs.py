"""What a Predictor accepts: frames checked (shape, dtype, range) and resized, and a crowd
pass's size checked against the input sizes it runs beside. Each check lives here once."""
from __future__ import annotations

import logging
from typing import Any, Optional

import ml_collections
import numpy as np


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


def check_crowd_size(crowd_size: Optional[int], sizes) -> None:
  """A crowd pass's short side against the input sizes it would run beside (ValueError)."""
  if crowd_size is not None and (int(crowd_size) != crowd_size or crowd_size < 0):
    raise ValueError(f'crowd size must be a whole number of pixels (0 = none), got {crowd_size}')
  if crowd_size and len(sizes) > 1:
    raise ValueError('a crowd pass runs beside one input size; several input sizes already '
                     f'run on every frame (got sizes {list(sizes)} and crowd size {crowd_size})')
  if crowd_size and crowd_size <= sizes[0]:
    raise ValueError(f'the crowd size ({crowd_size}) must exceed the input size ({sizes[0]})')


def check_settings(input_size, max_detections: Optional[int], crowd_size: Optional[int],
                   model_size: int) -> list:
  """The inference settings a user may give, checked together; returns the input sizes.

  input_size: the short side frames run at (the long side capped in the model's own
  proportion) instead of the model's `model_size`: larger finds smaller people at the
  network's cost, which grows with the pixels. Several sizes (ascending, e.g. (352, 800))
  run every frame at each and keep each person from the size that suits its height.
  max_detections: people kept per frame; each slot costs its mask and embedding whether
  filled or not (on 2 CPU cores 300 slots instead of 100 cost about a fifth of the rate).
  crowd_size: the short side of a second pass on frames where the first finds a distant
  crowd (0 = none); it runs beside one input size only.
  """
  sizes = ([] if input_size is None else
           list(input_size) if isinstance(input_size, (list, tuple)) else [input_size])
  for size in sizes:
    if int(size) != size or size < 64:
      raise ValueError(f'expected input sizes that are whole numbers of pixels >= 64, got {size}')
  if any(b <= a for a, b in zip(sizes, sizes[1:])):
    raise ValueError(f'expected input sizes in ascending order (352,800), got {sizes}')
  if max_detections is not None and (int(max_detections) != max_detections or
                                     max_detections < 1):
    raise ValueError(f'max detections must be a whole number >= 1, got {max_detections}')
  check_crowd_size(crowd_size, sizes or [model_size])
  return sizes
