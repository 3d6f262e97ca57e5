"""Trajectory-guided extraction of one person (the surveillance use case of seeds/002).

A person's world trajectory (ETH/UCY obsmat: rows `frame pid pos_x pos_z pos_y v_x v_z
v_y`, metres, z unused) is projected into the image with the inverse of H.txt, linearly
interpolated between annotated frames, and matched frame by frame to the nearest track's
foot point (bottom centre of its box). That track's mask is the person's mask in that
frame. Unlike seeds/002, no per-person fine-tuning is needed: the tracker already
segments everyone, the trajectory only says who.

ETH/UCY convention (checked by projecting the shipped trajectories onto each sequence's
reference frame): H maps image (row, col, 1) to world (x, y, w).
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional

import cv2
import numpy as np

from hvisnet_jax import atomic, evaluation


class TrajectoryError(ValueError):
  pass


def read_obsmat(path: str) -> np.ndarray:
  """(N, 8) float array; a line with another column count or a non-number is an error."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such trajectory file')
  rows = []
  with open(path) as f:
    for lineno, line in enumerate(f, 1):
      parts = line.split()
      if not parts:
        continue
      if len(parts) != 8:
        raise TrajectoryError(f'{path}:{lineno}: expected 8 columns "frame pid pos_x pos_z '
                              f'pos_y v_x v_z v_y", got {len(parts)}')
      try:
        rows.append([float(x) for x in parts])
      except ValueError:
        raise TrajectoryError(f'{path}:{lineno}: non-numeric value in {line.strip()!r}') from None
  if not rows:
    raise TrajectoryError(f'{path}: no trajectory rows')
  return np.asarray(rows)


def read_homography(path: str) -> np.ndarray:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such homography file')
  try:
    h = np.loadtxt(path, ndmin=2)
  except ValueError as e:
    raise TrajectoryError(f'{path}: not a matrix of numbers ({e})') from None
  if h.shape != (3, 3) or not np.isfinite(h).all():
    raise TrajectoryError(f'{path}: expected a 3x3 homography, got shape {h.shape}')
  # Scale-free: H and c*H are the same mapping, so judge the conditioning, not det(H).
  if np.linalg.cond(h) > 1e12:
    raise TrajectoryError(f'{path}: the homography is singular (condition number '
                          f'{np.linalg.cond(h):.1e})')
  return h


def world_to_image(h: np.ndarray, world_xy: np.ndarray) -> np.ndarray:
  """World (x, y) metres -> image (col, row) pixels, ETH/UCY convention."""
  w = np.c_[world_xy, np.ones(len(world_xy))]
  p = (np.linalg.inv(h) @ w.T).T
  rc = p[:, :2] / p[:, 2:]
  return rc[:, ::-1]


def image_to_world(h: np.ndarray, col_row: np.ndarray) -> np.ndarray:
  cr = np.asarray(col_row, float).reshape(-1, 2)
  p = (h @ np.c_[cr[:, ::-1], np.ones(len(cr))].T).T
  return p[:, :2] / p[:, 2:]


def person_image_path(rows: np.ndarray, h: np.ndarray, pid: int, frame_offset: int = 0,
                      frame_step: int = 1, source: str = 'trajectories') -> Dict[int, np.ndarray]:
  """{video frame: (col, row)} for person pid, interpolated between annotated frames."""
  sel = rows[rows[:, 1] == pid]
  if not len(sel):
    pids = np.unique(rows[:, 1]).astype(int)
    raise TrajectoryError(f'{source}: pid {pid} is not in the file ({len(pids)} pids, '
                          f'{pids.min()}..{pids.max()})')
  if frame_step <= 0:
    raise TrajectoryError(f'--frame-step must be positive, got {frame_step}')
  sel = sel[np.argsort(sel[:, 0])]
  vid = (sel[:, 0] - frame_offset) / frame_step
  img = world_to_image(h, sel[:, [2, 4]])
  out = {}
  first, last = int(np.ceil(vid.min())), int(np.floor(vid.max()))
  for f in range(max(first, 0), last + 1):
    out[f] = np.array([np.interp(f, vid, img[:, 0]), np.interp(f, vid, img[:, 1])])
  return out


def associate(path: Dict[int, np.ndarray], frames, max_distance: Optional[float] = None):
  """{frame: track id} choosing, per frame, the track whose foot point is nearest the path.

  `frames` is a list, per frame, of {track id: {'box': x1,y1,x2,y2, ...}}. max_distance in
  pixels; by default half the candidate's box height.
  """
  chosen = {}
  for f, xy in path.items():
    if f >= len(frames) or not frames[f]:
      continue
    best, best_d = None, np.inf
    for tid, det in frames[f].items():
      box = det['box']
      if box is None:
        continue
      foot = np.array([(box[0] + box[2]) / 2, box[3]])
      d = float(np.linalg.norm(foot - xy))
      limit = max_distance if max_distance is not None else 0.5 * (box[3] - box[1])
      if d <= limit and d < best_d:
        best, best_d = tid, d
    if best is not None:
      chosen[f] = best
  return chosen


def extract_person_to_dir(source, predictor, trajectories: str, homography: str, pid: int,
                          out_dir: str, frame_offset: int = 0, frame_step: int = 1,
                          max_distance: Optional[float] = None, progress: bool = True,
                          overwrite: bool = False) -> Dict:
  """Tracks `source`, picks person `pid` by trajectory, writes PNG masks and MOTS txt.

  `predictor` may be a callable returning one, so that every input is checked before the
  model is built (the slow part).
  """
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  path = check_person_inputs(source, trajectories, homography, pid, frame_offset, frame_step)
  atomic.check_output_dir(out_dir, overwrite, 'extract-person')
  predictor = predictor() if callable(predictor) else predictor
  result, _ = app.track_source(source, predictor, progress=progress)
  chosen = associate(path, result.frames, max_distance)
  return write_person(out_dir, result, chosen, int(pid), path, overwrite)


def check_person_inputs(source, trajectories, homography, pid, frame_offset=0, frame_step=1):
  """The person's image path {video frame: (col, row)}, after checking that the files parse
  and that the path meets the video's frames (else a hint on --frame-offset/--frame-step)."""
  from hvisnet_jax import video as video_lib  # pylint: disable=g-import-not-at-top
  rows = read_obsmat(trajectories)
  h = read_homography(homography)
  path = person_image_path(rows, h, int(pid), frame_offset, frame_step, trajectories)
  reader = video_lib.FrameReader(source)
  n = reader.frame_count
  reader.close()
  if n and not any(f < n for f in path):
    sel = rows[rows[:, 1] == int(pid)][:, 0]
    raise TrajectoryError(
        f'{trajectories}: person {pid} is annotated at obsmat frames {int(sel.min())}..'
        f'{int(sel.max())}, which with --frame-offset {frame_offset} and --frame-step '
        f'{frame_step} are video frames {min(path) if path else "none"}..'
        f'{max(path) if path else ""}, but {source} has {n} frames; set --frame-offset to '
        'the obsmat frame number of the first video frame (and --frame-step to obsmat frames '
        'per video frame)')
  return path


def write_person(out_dir, result, chosen: Dict[int, int], pid: int, path,
                 overwrite: bool = False) -> Dict:
  pid = int(pid)
  from pycocotools import mask as mask_utils  # pylint: disable=g-import-not-at-top
  with atomic.staged_output(out_dir, overwrite, 'extract-person') as tmp:
    seq = evaluation.Sequence.empty(f'person{pid}', len(result.frames), result.height,
                                    result.width)
    os.makedirs(os.path.join(tmp, 'masks'))
    for f, tid in sorted(chosen.items()):
      rle = result.frames[f][tid]['rle']
      seq.add(f, evaluation.mots_object_id(pid), rle)
      cv2.imwrite(os.path.join(tmp, 'masks', f'{f:05d}.png'), mask_utils.decode(rle) * 255)
    evaluation.write_mots_txt(os.path.join(tmp, f'person{pid}.txt'), seq)
    in_video = sum(1 for f in path if f < len(result.frames))
    summary = dict(pid=pid, frames_on_trajectory=in_video,
                   frames_on_trajectory_beyond_video=len(path) - in_video,
                   frames_with_mask=len(chosen),
                   track_ids={str(f): int(t) for f, t in sorted(chosen.items())})
    with open(os.path.join(tmp, 'summary.json'), 'w') as fh:
      json.dump(summary, fh, indent=1)
  return summary
