"""The tracker's settings, and the one function every caller builds them with.

Defaults are the authors' FairMOT-based tracker's (docs/design.md); the settings marked
"ours" are additions, each measured in docs/tracker.md ("Settings"). A model carries its
own overrides in its config's `tracker` section (score thresholds belong to the detector
whose scores they cut); `for_model` applies them, then the caller's.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from hvisnet_jax.tracking.kalman import CHI2_95_4DOF, CHI2_99_4DOF


@dataclasses.dataclass
class TrackerConfig:
  """One field per setting; docs/tracker.md says why each non-default value was chosen."""
  det_thresh: float = 0.4            # detections below this are ignored altogether
  new_track_thresh: float = 0.5      # score needed to start a track
  embedding_thresh: float = 0.7      # stage 1's cost threshold (FairMOT uses 0.4)
  iou_thresh: float = 0.5            # stage 2's IoU-distance threshold
  unconfirmed_iou_thresh: float = 0.7  # a track seen once needs this IoU distance
  motion_weight: float = 0.02        # lambda of stage 1's fused cost (1-l)*emb + l*maha
  motion_gate: float = CHI2_99_4DOF  # ours: squared Mahalanobis gate (authors: chi2 0.95)
  tracked_keeps_overlap: bool = True  # ours: a tracked track keeps a detection it overlaps
  iou_weight: float = 0.0            # optional: IoU tie-breaker in stage 1 (off)
  ema_alpha: float = 0.9             # EMA of a track's embedding
  gallery_size: int = 30             # ours: features kept beside the EMA (0 = EMA only)
  track_buffer: int = 30             # frames at 30 fps a lost track is kept
  fps: float = 30.0                  # the source's frame rate (scales track_buffer)
  duplicate_iou_dist: float = 0.15   # tracked and lost tracks closer than this: duplicates
  reid_after_lost: int = 15          # ours: lost longer than this -> appearance alone
  reid_thresh: float = 0.4           # the cosine threshold of that re-identification
  low_det_thresh: Optional[float] = None  # optional: ByteTrack's weak second chance (off)
  low_iou_thresh: float = 0.5        # the IoU distance for those weak detections
  coast_seconds: float = 0.2         # ours: a track missed this briefly is still reported
  coast_min_len: int = 3             # ... once it was seen in this many frames
  camera_motion: bool = False        # ours: the camera's motion moves the predictions
  std_weight_position: float = 1.0 / 20   # Kalman noise: std of position = h / 20
  std_weight_velocity: float = 1.0 / 160  # Kalman noise: std of velocity = h / 160

  @property
  def max_time_lost(self) -> int:
    return int(self.fps / 30.0 * self.track_buffer)

  @property
  def coast_frames(self) -> int:
    return int(round(self.coast_seconds * self.fps))


# The authors' matching, without our changes to it: one EMA feature, re-identification by
# appearance alone after 5 lost frames, the chi2 0.95 gate, no overlap rule. The
# pseudo-labeller's linking tracker uses it (the labels were made with it, and ground
# truth that moved with the tracker under test would measure nothing), and so do the
# benchmarks' "authors" rows.
AUTHORS_MATCHING = dict(gallery_size=0, reid_after_lost=5, motion_gate=CHI2_95_4DOF,
                        tracked_keeps_overlap=False)


def build(section: Optional[Mapping[str, Any]] = None, source: str = 'tracker settings',
          **overrides) -> TrackerConfig:
  """The defaults, then `section` (e.g. a model config's `tracker` section, checked by
  name: `source` says where it came from in the error), then `overrides`."""
  section = dict(section or {})
  names = {f.name for f in dataclasses.fields(TrackerConfig)}
  unknown = sorted((set(section) | set(overrides)) - names)
  if unknown:
    raise ValueError(f'{source}: unknown tracker setting {unknown[0]!r}; expected one of '
                     f'{", ".join(sorted(names))}')
  return TrackerConfig(**{**section, **overrides})


def model_section(model_config) -> dict:
  """A model config's `tracker` section (TrackerConfig fields) as a dict; {} if none."""
  section = model_config.get('tracker') or {}
  return dict(section.to_dict() if hasattr(section, 'to_dict') else section)


def for_model(model_config, **overrides) -> TrackerConfig:
  """The tracker a model runs with: its config's `tracker` section over the defaults, then
  the caller's overrides (the source's fps, a command's options)."""
  return build(model_section(model_config), "the model config's tracker section", **overrides)
