"""Training batches straight from the synthetic generator, in NumPy (no tensorflow).

Videos are rendered once (with a JPEG round trip, so training sees what `hvisnet synth`
writes) and kept with RLE masks. A batch is a pure function of (seed, step): half the
batch size in videos, two frames from each (the identity loss needs the same person in
different frames), random horizontal flips. Resuming at step s therefore resumes the
data stream exactly.

Batch layout (fixed shapes, ground truth padded to max_instances with `valid`):
  images (B, H, W, 3) uint8 RGB; boxes (B, M, 4) float32 x1,y1,x2,y2; masks (B, M, H, W)
  bool; inner (B, M, 2) and centroid (B, M, 2) float32 (NaN when absent); ids (B, M)
  int32 global identity (1..num_ids, 0 = padding); valid (B, M) bool.
"""
from __future__ import annotations

from typing import Dict, List

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from hvisnet_jax import evaluation
from hvisnet_jax.training import centers
from hvisnet_jax.synthetic import synth


class SyntheticSource:
  """Rendered synthetic videos and a deterministic batch sampler over them."""

  def __init__(self, preset: str, videos: int, frames: int, height: int, width: int,
               seed: int, max_instances: int, size_divisibility: int = 32):
    self.height, self.width = height, width
    d = size_divisibility
    self.padded = (-(-height // d) * d, -(-width // d) * d)
    self.max_instances = max_instances
    self.frames: List[List[dict]] = []       # per video, per frame: image + instances
    self.num_ids = 0
    for v in range(videos):
      video = synth.render_video(seed, v, frames, height, width, preset)
      id_base = self.num_ids
      self.num_ids += len(video.masks)
      per_frame = []
      for t, img in enumerate(video.frames):
        _, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, synth.JPEG_QUALITY])
        rgb = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        inst = []
        for pid, ms in sorted(video.masks.items()):
          if ms[t] is not None:
            inst.append(dict(rle=evaluation.encode_mask(ms[t]),
                             gid=id_base + pid))
        per_frame.append(dict(image=rgb, instances=inst))
      self.frames.append(per_frame)

  def batch(self, step: int, batch_size: int, seed: int) -> Dict[str, np.ndarray]:
    if batch_size % 2:
      raise ValueError(f'batch_size must be even (frame pairs), got {batch_size}')
    rng = np.random.default_rng([seed, step])
    out = self._empty(batch_size)
    for i in range(batch_size // 2):
      v = int(rng.integers(len(self.frames)))
      n = len(self.frames[v])
      t0 = int(rng.integers(n))
      t1 = int(np.clip(t0 + rng.integers(-8, 9), 0, n - 1))
      for j, t in enumerate((t0, t1)):
        self._fill(out, 2 * i + j, self.frames[v][t], flip=bool(rng.uniform() < 0.5))
    return out

  def _empty(self, b):
    m, (h, w) = self.max_instances, self.padded
    return dict(images=np.zeros((b, h, w, 3), np.uint8),
                boxes=np.zeros((b, m, 4), np.float32),
                masks=np.zeros((b, m, h, w), bool),
                inner=np.full((b, m, 2), np.nan, np.float32),
                centroid=np.full((b, m, 2), np.nan, np.float32),
                ids=np.zeros((b, m), np.int32), valid=np.zeros((b, m), bool))

  def _fill(self, out, i, frame, flip):
    img = frame['image'][:, ::-1] if flip else frame['image']
    out['images'][i, :self.height, :self.width] = img
    for k, inst in enumerate(frame['instances'][:self.max_instances]):
      m = mask_utils.decode(inst['rle']).astype(bool)
      if flip:
        m = m[:, ::-1]
      out['masks'][i, k, :self.height, :self.width] = m
      out['boxes'][i, k] = centers.box_of(m)
      out['inner'][i, k] = centers.inner_center(m)
      out['centroid'][i, k] = centers.mask_centroid(m)
      out['ids'][i, k] = inst['gid']
      out['valid'][i, k] = True
