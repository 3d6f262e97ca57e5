"""Deterministic synthetic human videos with exact visible masks and identities.

No public human video dataset can be downloaded here and HVIS was never released, so
this renders its own: articulated figures (head, torso, arms, legs) with walking
cycles, sitting and riding poses, per-person clothing colours and textures, walking
across a textured background with distractor shapes, overlapping each other (including
pairs of similar size one behind the other, whose box centers nearly coincide: the
paper's ambiguous case), leaving the frame and coming back, and passing behind static
occluders. Ground truth is the visible mask after occlusion, by painting people far to
near and occluders last into an id map.

Same arguments, same bytes: every random draw comes from a Generator seeded by
(seed, video index), and JPEGs are encoded by OpenCV with a fixed quality.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Dict, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from hvisnet_jax import atomic, evaluation

PRESETS = {
    # people per video, height range (fraction of frame height, min 20 px), share walking in
    # pairs, occluders, share that turn back after leaving.
    'easy': dict(people=(2, 4), height=(0.3, 0.7), pair_share=0.0, occluders=(0, 1),
                 returners=0.3, sit_ride=0.2, speed=(0.6, 1.4)),
    'crowd': dict(people=(6, 10), height=(0.12, 0.9), pair_share=0.6, occluders=(1, 2),
                  returners=0.4, sit_ride=0.2, speed=(0.5, 1.5)),
}
MIN_VISIBLE_PX = 16          # smaller visible slivers are not annotated
JPEG_QUALITY = 92


@dataclasses.dataclass
class Person:
  pid: int
  height: float
  x: float                 # foot point, image pixels
  y: float
  vx: float
  vy: float
  phase: float
  pose: str                # walk | sit | ride
  skin: Tuple[int, int, int]
  hair: Tuple[int, int, int]
  shirt: Tuple[int, int, int]
  shirt2: Tuple[int, int, int]
  pants: Tuple[int, int, int]
  texture: str             # solid | stripes | checks
  start: int
  returns: bool
  turned: bool = False


def _color(rng) -> Tuple[int, int, int]:
  hsv = np.uint8([[[rng.integers(0, 180), rng.integers(60, 256), rng.integers(60, 256)]]])
  return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _background(rng, h, w):
  """Low-frequency colour noise, a tiled or striped floor texture and distractor shapes."""
  base = rng.uniform(40, 200, (4, 4, 3)).astype(np.float32)
  img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
  img += cv2.resize(rng.normal(0, 18, (h // 8 + 1, w // 8 + 1, 3)).astype(np.float32), (w, h))
  yy, xx = np.mgrid[:h, :w]
  period = rng.integers(12, 40)
  if rng.uniform() < 0.5:
    img += 14 * (((xx // period) + (yy // period)) % 2)[..., None]
  else:
    img += 10 * np.sin(2 * np.pi * (xx * rng.uniform(-1, 1) + yy) / period)[..., None]
  img = np.clip(img, 0, 255).astype(np.uint8)
  for _ in range(rng.integers(3, 9)):          # distractors: not people, never annotated
    c = _color(rng)
    cx, cy = int(rng.uniform(0, w)), int(rng.uniform(0, h))
    r = int(rng.uniform(0.03, 0.12) * min(h, w)) + 2
    kind = rng.integers(3)
    if kind == 0:
      cv2.circle(img, (cx, cy), r, c, -1, cv2.LINE_AA)
    elif kind == 1:
      cv2.rectangle(img, (cx - r, cy - r // 2), (cx + r, cy + r // 2), c, -1)
    else:
      pts = np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], -1).astype(np.int32)[None] \
          if (a := np.sort(rng.uniform(0, 2 * np.pi, 5))) is not None else None
      cv2.fillPoly(img, pts, c, cv2.LINE_AA)
  return img


def _occluders(rng, n, h, w):
  """Static foreground objects (pillars, boxes) drawn over people: (mask, colour) pairs."""
  out = []
  for _ in range(n):
    mask = np.zeros((h, w), np.uint8)
    ow = int(rng.uniform(0.06, 0.14) * w)
    x0 = int(rng.uniform(0.1, 0.9) * w - ow / 2)
    if rng.uniform() < 0.5:                       # pillar, full height
      cv2.rectangle(mask, (x0, 0), (x0 + ow, h), 1, -1)
    else:                                         # crate standing on the ground
      top = int(rng.uniform(0.4, 0.75) * h)
      cv2.rectangle(mask, (x0, top), (x0 + int(ow * 1.8), h), 1, -1)
    out.append((mask.astype(bool), _color(rng)))
  return out


def _limb(canvas, p0, p1, thick, value):
  cv2.line(canvas, tuple(int(round(v)) for v in p0), tuple(int(round(v)) for v in p1),
           value, max(1, int(round(thick))), cv2.LINE_AA if canvas.ndim == 3 else cv2.LINE_8)


def _skeleton(p: Person, t: int):
  """Body parts in image coordinates as (kind, geometry) for frame t."""
  h, x, y = p.height, p.x, p.y
  s = 1 if p.vx >= 0 else -1
  a = np.sin(p.phase + 0.35 * t * max(0.3, abs(p.vx)) / max(h / 60, 0.5))
  hip = np.array([x, y - 0.5 * h])
  shoulder = np.array([x, y - 0.8 * h])
  parts = []
  if p.pose == 'walk':
    for side in (-1, 1):
      ang = 0.45 * a * side
      knee = hip + 0.26 * h * np.array([np.sin(ang), np.cos(ang)])
      foot = knee + 0.25 * h * np.array([np.sin(ang - 0.25 * abs(a)), np.cos(ang)])
      parts += [('leg', hip, knee, 0.075 * h), ('leg', knee, foot, 0.065 * h)]
  else:            # sit / ride: thighs forward, shins down
    seat = hip + np.array([0, 0.1 * h]) if p.pose == 'ride' else hip + np.array([0, 0.22 * h])
    hip = seat
    shoulder = seat - np.array([0, 0.3 * h])
    for side in (-1, 1):
      knee = hip + np.array([s * 0.24 * h, 0.02 * h * side])
      pedal = 0.08 * h * np.sin(p.phase + 0.3 * t + side) if p.pose == 'ride' else 0
      foot = knee + np.array([0.04 * h * s, 0.24 * h + pedal])
      parts += [('leg', hip, knee, 0.075 * h), ('leg', knee, foot, 0.065 * h)]
  parts.append(('torso', shoulder, hip, 0.2 * h))
  for side in (-1, 1):
    ang = -0.5 * a * side if p.pose == 'walk' else 0.6 * s
    elbow = shoulder + np.array([0.02 * h * side, 0]) + 0.16 * h * np.array([np.sin(ang),
                                                                              np.cos(ang)])
    hand = elbow + 0.15 * h * np.array([np.sin(ang + 0.3 * s), np.cos(ang + 0.3 * s)])
    parts += [('arm', shoulder, elbow, 0.05 * h), ('arm', elbow, hand, 0.045 * h)]
  parts.append(('head', shoulder - np.array([0, 0.11 * h]), 0.075 * h))
  return parts


def _draw_person(frame, idmap, p: Person, t: int, slot: int):
  """Paints person p (colours into frame, `slot` into idmap) for frame t."""
  h_img, w_img = idmap.shape
  parts = _skeleton(p, t)
  part_map = np.zeros((h_img, w_img), np.uint8)
  codes = {'leg': 1, 'torso': 2, 'arm': 3, 'head': 4}
  for kind, *geo in parts:
    if kind == 'head':
      c, r = geo
      cv2.circle(part_map, (int(round(c[0])), int(round(c[1]))), max(1, int(round(r))), 4, -1)
    else:
      _limb(part_map, geo[0], geo[1], geo[2], codes[kind])
  on = part_map > 0
  if not on.any():
    return
  yy, xx = np.nonzero(on)
  colours = np.zeros((len(yy), 3), np.float32)
  code = part_map[yy, xx]
  colours[code == 1] = p.pants
  colours[code == 3] = p.shirt
  colours[code == 4] = p.skin
  torso = code == 2
  if p.texture == 'stripes':
    band = ((yy[torso] - p.y) // max(2, int(p.height * 0.04))) % 2 == 0
  elif p.texture == 'checks':
    k = max(2, int(p.height * 0.05))
    band = (((yy[torso] // k) + (xx[torso] // k)) % 2) == 0
  else:
    band = np.ones(torso.sum(), bool)
  colours[torso] = np.where(band[:, None], np.float32(p.shirt), np.float32(p.shirt2))
  top = yy < p.y - 0.97 * p.height if p.pose == 'walk' else np.zeros_like(yy, bool)
  colours[(code == 4) & top] = p.hair
  shade = 0.85 + 0.15 * np.cos((xx - p.x) / max(p.height * 0.1, 1))
  frame[yy, xx] = np.clip(colours * shade[:, None], 0, 255).astype(np.uint8)
  idmap[yy, xx] = slot


def _bike(frame, p: Person):
  h = p.height
  for dx in (-0.28, 0.28):
    c = (int(p.x + dx * h), int(p.y - 0.1 * h))
    cv2.circle(frame, c, max(2, int(0.1 * h)), (30, 30, 30), max(1, int(0.02 * h)), cv2.LINE_AA)


def _make_people(rng, preset, h, w, frames) -> List[Person]:
  cfg = PRESETS[preset]
  n = int(rng.integers(cfg['people'][0], cfg['people'][1] + 1))
  people: List[Person] = []
  while len(people) < n:
    height = max(20.0, rng.uniform(*cfg['height']) * h)
    direction = 1 if rng.uniform() < 0.5 else -1
    speed = rng.uniform(*cfg['speed']) * max(1.0, height / 40) * direction
    start = int(rng.integers(0, max(1, frames // 3)))
    x = rng.uniform(0.05, 0.95) * w if rng.uniform() < 0.6 else (-0.1 * w if direction > 0
                                                                  else 1.1 * w)
    y = float(np.clip(rng.uniform(0.5, 1.05) * h, height * 0.9, h * 1.05))
    pose = 'walk' if rng.uniform() > cfg['sit_ride'] else ('sit' if rng.uniform() < 0.5
                                                           else 'ride')
    if pose == 'sit':
      speed *= 0.0 if rng.uniform() < 0.5 else 0.3
    tex = ('solid', 'stripes', 'checks')[int(rng.integers(3))]
    base = dict(height=height, x=x, y=y, vx=speed, vy=rng.uniform(-0.1, 0.1),
                phase=rng.uniform(0, 2 * np.pi), pose=pose, start=start,
                returns=rng.uniform() < cfg['returners'])
    people.append(Person(pid=len(people) + 1, skin=_skin(rng), hair=_color(rng),
                         shirt=_color(rng), shirt2=_color(rng), pants=_color(rng),
                         texture=tex, **base))
    if len(people) < n and rng.uniform() < cfg['pair_share']:
      # A companion of similar size one step behind: box centers nearly coincide.
      follow = dict(base, height=height * rng.uniform(0.92, 1.05),
                    x=x - direction * height * rng.uniform(0.03, 0.12),
                    y=y - height * rng.uniform(0.01, 0.05), phase=base['phase'] + np.pi)
      people.append(Person(pid=len(people) + 1, skin=_skin(rng), hair=_color(rng),
                           shirt=_color(rng), shirt2=_color(rng), pants=_color(rng),
                           texture=tex if rng.uniform() < 0.3 else 'solid', **follow))
  return people


def _skin(rng):
  tones = [(60, 90, 140), (90, 130, 180), (120, 160, 210), (40, 60, 100), (150, 190, 230)]
  b, g, r = tones[int(rng.integers(len(tones)))]
  j = rng.integers(-15, 16, 3)
  return tuple(int(np.clip(v + d, 0, 255)) for v, d in zip((b, g, r), j))


def _step(p: Person, w: int):
  p.x += p.vx
  p.y += p.vy
  margin = 0.4 * p.height
  if p.returns and not p.turned and (p.x > w + margin or p.x < -margin):
    p.vx, p.turned = -p.vx, True             # gone for a while, then comes back


@dataclasses.dataclass
class Video:
  name: str
  frames: List[np.ndarray]                   # BGR uint8
  masks: Dict[int, List]                     # pid -> per-frame bool mask or None
  feet: Dict[int, List]                      # pid -> per-frame (x, y) foot point or None

  def ground_truth(self):
    """The MOTS ground truth (id 2000 + pid, class 2) as an evaluation.Sequence."""
    h, w = self.frames[0].shape[:2]
    seq = evaluation.Sequence.empty(self.name, len(self.frames), h, w)
    for pid, masks in sorted(self.masks.items()):
      for t, m in enumerate(masks):
        if m is not None:
          seq.add(t, evaluation.mots_object_id(pid), m)
    return seq

  def write_mp4(self, path: str, fps: float = 10.0) -> None:
    """The frames as an mp4 (what `hvisnet track` reads). MPEG-4 Part 2, as the synthetic
    figures were measured on: its compression is part of what the model sees."""
    from hvisnet_jax import video as video_lib  # pylint: disable=g-import-not-at-top
    writer = video_lib.VideoWriter(path, fps, self.frames[0].shape[:2], codec='mp4v')
    for f in self.frames:
      writer.write(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    writer.close()


def render_video(seed: int, index: int, frames: int, height: int, width: int,
                 preset: str) -> Video:
  """Renders one video; deterministic in (seed, index, frames, height, width, preset)."""
  if preset not in PRESETS:
    raise ValueError(f'preset must be one of {sorted(PRESETS)}, got {preset!r}')
  rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
  bg = _background(rng, height, width)
  occ = _occluders(rng, int(rng.integers(PRESETS[preset]['occluders'][0],
                                         PRESETS[preset]['occluders'][1] + 1)), height, width)
  people = _make_people(rng, preset, height, width, frames)
  out = Video(f'{preset}_{seed:04d}_{index:04d}', [], {p.pid: [] for p in people},
              {p.pid: [] for p in people})
  noise_seed = rng.integers(1 << 31)
  for t in range(frames):
    frame = bg.copy()
    idmap = np.zeros((height, width), np.int32)
    active = [p for p in people if t >= p.start]
    for p in sorted(active, key=lambda q: q.y):          # far (higher up) to near
      if p.pose == 'ride':
        _bike(frame, p)
      _draw_person(frame, idmap, p, t, p.pid)
    for mask, colour in occ:
      frame[mask] = colour
      idmap[mask] = 0
    noise = np.random.default_rng([noise_seed, t]).normal(0, 3, frame.shape)
    out.frames.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    for p in people:
      m = idmap == p.pid
      visible = p in active and m.sum() >= MIN_VISIBLE_PX
      out.masks[p.pid].append(m if visible else None)
      out.feet[p.pid].append((p.x, p.y) if p in active else None)
    for p in active:
      _step(p, width)
  return out


def ground_homography(height: int, width: int) -> np.ndarray:
  """Image pixels -> ground-plane metres: a camera looking down at the plane at an angle.

  ETH/UCY convention: H maps (row, col, 1) to world (x, y, w).
  """
  src = np.float32([[height, 0], [height, width], [height * 0.3, width * 0.8],
                    [height * 0.3, width * 0.2]])
  dst = np.float32([[0, 0], [8, 0], [8, 12], [0, 12]])
  return cv2.getPerspectiveTransform(src, dst).astype(np.float64)


SYNTH_MARKER = '.hvisnet-synth'


def _check_replaceable(out_dir: str) -> None:
  """out_dir may be new, empty, or an earlier `hvisnet synth` output (its marker file);
  anything else is the user's and is refused before any work."""
  if not os.path.lexists(out_dir):
    return
  if not os.path.isdir(out_dir) or os.path.islink(out_dir):
    raise FileExistsError(f'{out_dir}: exists and is not a folder; choose another --out')
  entries = os.listdir(out_dir)
  if entries and SYNTH_MARKER not in entries:
    raise FileExistsError(f'{out_dir}: holds files that hvisnet synth did not write '
                          f'({", ".join(sorted(entries)[:5])}); choose a new or empty --out')


def write_dataset(out_dir: str, videos: int, frames: int, height: int, width: int,
                  preset: str, seed: int, progress=None) -> Dict[str, int]:
  """Writes JPEGImages/, annotations.json (YouTube-VIS), mots/ and trajectories/ to out_dir.

  Everything goes to a temporary directory first and is moved into place at the end, so an
  interrupted run never leaves a directory that looks complete.
  """
  if videos < 1 or frames < 1:
    raise ValueError(f'need at least one video and one frame, got videos={videos} '
                     f'frames={frames}')
  if height < 32 or width < 32:
    raise ValueError(f'frame size must be at least 32x32, got {height}x{width}')
  _check_replaceable(out_dir)
  parent = os.path.dirname(os.path.abspath(out_dir)) or '.'
  os.makedirs(parent, exist_ok=True)
  tmp = atomic.staging_dir(parent, '.synth-')
  try:
    with atomic.errors_name(out_dir):
      return _write_into(tmp, out_dir, parent, videos, frames, height, width, preset, seed,
                         progress)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def _write_into(tmp, out_dir, parent, videos, frames, height, width, preset, seed, progress):
  """write_dataset's work in the staging folder `tmp`, swapped in for out_dir at the end."""
  ann = {'info': {'description': f'hvisnet-jax synthetic {preset} videos, seed {seed}'},
         'categories': [{'id': 1, 'name': 'person', 'supercategory': 'person'}],
         'videos': [], 'annotations': []}
  hmat = ground_homography(height, width)
  os.makedirs(os.path.join(tmp, 'mots'))
  os.makedirs(os.path.join(tmp, 'trajectories'))
  np.savetxt(os.path.join(tmp, 'trajectories', 'H.txt'), hmat, fmt='%.10e')
  stats = {'videos': videos, 'frames': 0, 'instances': 0, 'masks': 0}
  for v in range(videos):
    video = render_video(seed, v, frames, height, width, preset)
    vdir = os.path.join(tmp, 'JPEGImages', video.name)
    os.makedirs(vdir)
    names = []
    for t, img in enumerate(video.frames):
      ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
      assert ok
      with open(os.path.join(vdir, f'{t:05d}.jpg'), 'wb') as f:
        f.write(buf.tobytes())
      names.append(f'{video.name}/{t:05d}.jpg')
    vid = v + 1
    ann['videos'].append({'id': vid, 'name': video.name, 'file_names': names,
                          'height': height, 'width': width, 'length': frames})
    mots_lines, traj_rows = [], []
    for pid in sorted(video.masks):
      seq_masks = video.masks[pid]
      if all(m is None for m in seq_masks):
        continue
      segs, boxes, areas = [], [], []
      for t, m in enumerate(seq_masks):
        if m is None:
          segs.append(None), boxes.append(None), areas.append(None)
          continue
        rle = evaluation.encode_mask(m)
        counts = rle['counts'].decode()
        segs.append({'size': [height, width], 'counts': counts})
        boxes.append([float(b) for b in mask_utils.toBbox(rle)])
        areas.append(float(mask_utils.area(rle)))
        obj = evaluation.mots_object_id(pid)
        mots_lines.append((t + 1, obj, f'{t + 1} {obj} 2 {height} {width} {counts}'))
        stats['masks'] += 1
      ann['annotations'].append({'id': len(ann['annotations']) + 1, 'video_id': vid,
                                 'category_id': 1, 'iscrowd': 0, 'height': height,
                                 'width': width, 'segmentations': segs, 'bboxes': boxes,
                                 'areas': areas, 'track_id': pid})
      stats['instances'] += 1
      feet = video.feet[pid]
      for t, foot in enumerate(feet):
        if foot is None:
          continue
        wx, wy = _to_world(hmat, foot)
        nxt = feet[t + 1] if t + 1 < len(feet) and feet[t + 1] is not None else foot
        nx, ny = _to_world(hmat, nxt)
        traj_rows.append((t, pid, wx, 0.0, wy, nx - wx, 0.0, ny - wy))
    with open(os.path.join(tmp, 'mots', f'{video.name}.txt'), 'w') as f:
      f.writelines(line + '\n' for _, _, line in sorted(mots_lines))
    with open(os.path.join(tmp, 'trajectories', f'{video.name}.txt'), 'w') as f:
      for r in sorted(traj_rows):
        f.write(f'{r[0]:.8e} {r[1]:.8e} ' + ' '.join(f'{x:.8e}' for x in r[2:]) + '\n')
    stats['frames'] += frames
    if progress:
      progress(v + 1, videos)
  with open(os.path.join(tmp, 'annotations.json'), 'w') as f:
    json.dump(ann, f)
  with open(os.path.join(tmp, SYNTH_MARKER), 'w') as f:
    f.write('written by hvisnet synth; a later synth run may replace this folder\n')
  old = None
  if os.path.lexists(out_dir):               # empty or an earlier synth output (checked)
    old = tempfile.mkdtemp(prefix='.synth-old-', dir=parent)
    os.replace(out_dir, os.path.join(old, 'previous'))
  os.replace(tmp, out_dir)
  if old:
    shutil.rmtree(old, ignore_errors=True)
  return stats


def _to_world(hmat, pt):
  """Foot point (col, row) -> world (x, y), ETH/UCY convention."""
  v = hmat @ np.array([pt[1], pt[0], 1.0])
  return v[0] / v[2], v[1] / v[2]
