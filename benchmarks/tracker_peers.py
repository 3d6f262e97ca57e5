"""Our tracker against the trackers people use, on real pedestrian motion.

  pip install -r benchmarks/requirements-peers.txt   # or: pip install -e .[peers]
  python benchmarks/tracker_peers.py --out benchmarks/results/tracker_peers_cpu.json
  python benchmarks/tracker_peers.py --seeds 0-9 --trackers 'hvisnet-jax,boxmot DeepOcSort'
      # the same over 10 detector seeds x 2 re-ID qualities: identity switches swing with
      # the seed far more than HOTA does, so they are compared summed over runs
  python benchmarks/tracker_peers.py --speed-only          # random walks, median of 3

Input, identical for every tracker (seeded):
- Real motion: the ETH (seq_eth, seq_hotel) and UCY (zara01) trajectories of
  ../shared/data/eth_ucy, interpolated from their 2.5 Hz annotation to the videos' own
  frame rates (seq_eth 15 fps: annotated every 6th frame at 0.4 s; seq_hotel and zara01
  25 fps: every 10th), a window of each, projected into the image with the inverse of
  H.txt (the foot point; docs/design.md, "ETH/UCY trajectories").
- Box size: the ground plane's local scale at the foot point (pixels per metre, from the
  Jacobian of the inverse homography) times 1.7 m gives the box height, 0.4 x height its
  width; the foot point is the box's bottom centre. People far from the camera get small
  boxes, near ones large, as in the videos (the same scale that places them).
- A simulated detector: each person is occluded by the boxes of people nearer the camera
  (larger foot y); a detection is missed with probability 0.08 + 0.7 x occluded
  fraction, and a miss continues with probability 0.5 (bursts). Boxes jitter (5% of
  size, Gaussian), scores fall with occlusion (0.9 - 0.5 x occluded + N(0, 0.08)), about
  one false positive per frame (scores 0.2-0.65, random embeddings), and 64-d
  embeddings carry identity plus noise, mixed with the occluder's in proportion to the
  overlap. Two re-ID qualities: `clean` (noise of norm 0.35 on a unit vector; two
  sightings of one person at cosine similarity about 0.9) and `noisy` (norm 0.8, about
  0.6, closer to a real re-ID feature on small, blurred people).

Every tracker runs at its published defaults on those detections: hvisnet-jax's Tracker
(TrackerConfig at the sequence fps); deep-sort-realtime's DeepSort (embedder=None, our
embeddings; outputs as its README: confirmed tracks); roboflow trackers' SORT,
ByteTrack, OC-SORT and BoT-SORT (frame_rate set; BoT-SORT's camera-motion compensation
off: there are no frames); boxmot's ByteTrack, BoT-SORT, OC-SORT, StrongSORT and Deep
OC-SORT, the last three with our embeddings (camera-motion compensation off where it
can be; StrongSORT's ECC sees a blank frame). boxmot must be installed without its
dependencies (they pull a CUDA torch and replace OpenCV 5): `pip install --no-deps
boxmot==25.0.0 filterpy==1.4.5 lapx==0.11.1`; torchvision, which it imports, falls back
to tests/torchvision_stub.py.
Scoring: trackeval's HOTA, CLEAR and Identity on box IoU (hvisnet_jax.evaluation.
evaluate_box_tracks); time: the update calls only, per frame. Speed alone: random walks
of 10, 50 and 200 people, 100 frames each.

Real clips (`--real WORK`, the held-out clips' labels in WORK/pseudo_val, docs/training.md): the built-in real model's
detections on the five held-out clips (valid ones: boxes, scores, 64-d embeddings), the
same input for every tracker, at 30 fps as in tracker_real_ablation.py (ours with the
model's own tracker settings, as `hvisnet track` runs it). Each tracker's
output box is matched one-to-one to the frame's detections (IoU >= 0.5) and takes that
detection's mask; an output with no detection under it (a prediction through a miss)
has no mask. Scored by trackeval's MOTS metrics against the teacher's pseudo ground
truth, whose ignore regions count as neither hit nor false positive.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hvisnet_jax import atomic, provenance  # pylint: disable=wrong-import-position
from hvisnet_jax import evaluation  # pylint: disable=wrong-import-position
from hvisnet_jax.apps import extract  # pylint: disable=wrong-import-position
from hvisnet_jax.tracking import tracker as tracker_lib  # pylint: disable=wrong-import-position
from hvisnet_jax.tracking import config as tracking_config, masks as masks_lib  # pylint: disable=wrong-import-position

from shared_data import SHARED  # pylint: disable=wrong-import-position
ETH_UCY = os.path.join(SHARED, 'eth_ucy')
# name: (annotation frame step, video fps, image (h, w), first annotated frame, frames)
SEQUENCES = {'seq_eth': (6, 15.0, (480, 640), 780, 1500),
             'seq_hotel': (10, 25.0, (576, 720), 1, 1500),
             'zara01': (10, 25.0, (576, 720), 1, 1250)}
PERSON_HEIGHT_M, ASPECT, EMB_DIM = 1.7, 0.4, 64
REID_NOISE = {'clean': 0.35, 'noisy': 0.8}


# --------------------------------------------------------------------------- the scene

def scene(name: str):
  """Per video frame: (pids (N,), boxes (N, 4)) of the people inside the image."""
  _, fps, (h, w), start, frames = SEQUENCES[name]
  d = os.path.join(ETH_UCY, name)
  rows = extract.read_obsmat(os.path.join(d, 'obsmat.txt'))
  hom = extract.read_homography(os.path.join(d, 'H.txt'))
  out = [([], []) for _ in range(frames)]
  for pid in np.unique(rows[:, 1]):
    sel = rows[rows[:, 1] == pid]
    sel = sel[np.argsort(sel[:, 0])]
    vf = sel[:, 0] - start              # obsmat numbers video frames (annotated every step)
    lo, hi = max(int(np.ceil(vf.min())), 0), min(int(np.floor(vf.max())), frames - 1)
    if lo > hi:
      continue
    t = np.arange(lo, hi + 1)
    xy = np.c_[np.interp(t, vf, sel[:, 2]), np.interp(t, vf, sel[:, 4])]
    foot = extract.world_to_image(hom, xy)
    scale = _pixels_per_metre(hom, xy)
    bh = PERSON_HEIGHT_M * scale
    bw = ASPECT * bh
    boxes = np.c_[foot[:, 0] - bw / 2, foot[:, 1] - bh, foot[:, 0] + bw / 2, foot[:, 1]]
    inside = (foot[:, 0] >= 0) & (foot[:, 0] < w) & (foot[:, 1] >= 0) & (foot[:, 1] < h)
    for f, b, ok in zip(t, boxes, inside):
      if ok:
        out[f][0].append(int(pid))
        out[f][1].append(np.clip(b, [0, 0, 0, 0], [w, h, w, h]))
  return [(np.array(p, int), np.array(b, float).reshape(-1, 4)) for p, b in out], fps


def _pixels_per_metre(hom, xy):
  """sqrt(|det J|) of world -> image at each point: the ground plane's local scale."""
  e = 0.05
  p0 = extract.world_to_image(hom, xy)
  px = extract.world_to_image(hom, xy + [e, 0])
  py = extract.world_to_image(hom, xy + [0, e])
  jx, jy = (px - p0) / e, (py - p0) / e
  return np.sqrt(np.abs(jx[:, 0] * jy[:, 1] - jx[:, 1] * jy[:, 0]))


# --------------------------------------------------------------------------- a moving camera

def camera_path(frames: int, fps: float, hw, seed: int):
  """Per frame, the 2x3 similarity from the still camera's image to a moving camera's: a
  pan that sways and changes speed (two sines, 7 s and 2.1 s periods, up to 17% of the
  width), a slow tilt, and a zoom between 0.85x and 1.15x about the centre (9 s)."""
  h, w = hw
  rng = np.random.default_rng(seed)
  ph = rng.uniform(0, 2 * np.pi, 4)
  out = []
  for t in range(frames):
    sec = t / fps
    dx = 0.12 * w * np.sin(2 * np.pi * sec / 7 + ph[0]) + 0.05 * w * np.sin(
        2 * np.pi * sec / 2.1 + ph[1])
    dy = 0.04 * h * np.sin(2 * np.pi * sec / 5 + ph[2])
    z = 1 + 0.15 * np.sin(2 * np.pi * sec / 9 + ph[3])
    out.append(np.array([[z, 0, (1 - z) * w / 2 + dx], [0, z, (1 - z) * h / 2 + dy]]))
  return out


def through_camera(pids, boxes, warp, hw):
  """A frame's people as the moving camera sees them (foot point inside the image)."""
  h, w = hw
  if not len(boxes):
    return pids, boxes
  z, tx, ty = warp[0, 0], warp[0, 2], warp[1, 2]
  moved = boxes * z + [tx, ty, tx, ty]
  fx, fy = (moved[:, 0] + moved[:, 2]) / 2, moved[:, 3]
  inside = (fx >= 0) & (fx < w) & (fy >= 0) & (fy < h)
  return pids[inside], np.clip(moved[inside], 0, [w, h, w, h])


def background(hw, seed: int):
  """A textured, static world for the moving camera to film (blurred noise at two scales:
  corners for optical flow); people are not drawn."""
  import cv2  # pylint: disable=g-import-not-at-top
  h, w = hw
  rng = np.random.default_rng(seed)
  fine = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 2)
  coarse = cv2.resize(rng.uniform(0, 255, (h // 16, w // 16)).astype(np.float32), (w, h))
  img = cv2.normalize(0.6 * fine + 0.4 * coarse, None, 0, 255, cv2.NORM_MINMAX)
  return img.astype(np.uint8)


def filmed(world, warp):
  """The frame the moving camera films (RGB), the world's edges mirrored past them."""
  import cv2  # pylint: disable=g-import-not-at-top
  h, w = world.shape
  gray = cv2.warpAffine(world, warp, (w, h), borderMode=cv2.BORDER_REFLECT)
  return np.repeat(gray[..., None], 3, axis=2)


# --------------------------------------------------------------------------- the detector

def occluded_fraction(boxes):
  """Fraction of each box covered by the union of boxes with a lower bottom edge (nearer)."""
  n = len(boxes)
  out = np.zeros(n)
  for i in range(n):
    x1, y1, x2, y2 = boxes[i]
    area = max((x2 - x1) * (y2 - y1), 1e-9)
    nearer = boxes[boxes[:, 3] > y2]
    if not len(nearer):
      continue
    # Rasterise at 1/8 of the box for the union (boxes are small; exact enough here).
    gx = np.linspace(x1, x2, 9)[:-1] + (x2 - x1) / 16
    gy = np.linspace(y1, y2, 9)[:-1] + (y2 - y1) / 16
    px, py = np.meshgrid(gx, gy)
    cov = np.zeros(px.shape, bool)
    for b in nearer:
      cov |= (px >= b[0]) & (px <= b[2]) & (py >= b[1]) & (py <= b[3])
    out[i] = cov.mean() if area > 0 else 0.0
  return out


class Detector:
  """Seeded detections of a scene: misses (occlusion, bursts), jitter, FPs, embeddings."""

  def __init__(self, seed: int, image_hw, reid_noise: float):
    self.rng = np.random.default_rng(seed)
    self.reid_noise = reid_noise
    self.h, self.w = image_hw
    self.identity = {}
    self.missing = set()

  def _identity(self, pid):
    if pid not in self.identity:
      v = self.rng.normal(size=EMB_DIM)
      self.identity[pid] = v / np.linalg.norm(v)
    return self.identity[pid]

  def __call__(self, pids, boxes):
    rng = self.rng
    occ = occluded_fraction(boxes) if len(boxes) else np.zeros(0)
    keep_boxes, scores, embs = [], [], []
    missing = set()
    for i, pid in enumerate(pids):
      p_miss = 0.5 if pid in self.missing else 0.08 + 0.7 * occ[i]
      if rng.random() < p_miss:
        missing.add(pid)
        continue
      b = boxes[i]
      size = np.r_[b[2] - b[0], b[3] - b[1], b[2] - b[0], b[3] - b[1]]
      keep_boxes.append(b + rng.normal(0, 0.05, 4) * size)
      scores.append(float(np.clip(0.9 - 0.5 * occ[i] + rng.normal(0, 0.08), 0.05, 1.0)))
      e = self._identity(pid) + rng.normal(0, self.reid_noise / np.sqrt(EMB_DIM), EMB_DIM)
      if occ[i] > 0:           # the occluder's appearance leaks in
        nearer = [j for j in range(len(pids)) if boxes[j, 3] > boxes[i, 3] and
                  _iou(boxes[j], b) > 0]
        if nearer:
          j = max(nearer, key=lambda j: _iou(boxes[j], b))
          e = (1 - occ[i]) * e + occ[i] * self._identity(pids[j])
      embs.append(e / np.linalg.norm(e))
    self.missing = missing
    for _ in range(rng.poisson(1.0)):
      ref = boxes[rng.integers(len(boxes))] if len(boxes) else np.array([0, 0, 20, 50.0])
      bh, bw = (ref[3] - ref[1]) * rng.uniform(0.7, 1.3), (ref[2] - ref[0]) * rng.uniform(0.7, 1.3)
      x, y = rng.uniform(0, self.w - bw), rng.uniform(0, self.h - bh)
      keep_boxes.append(np.array([x, y, x + bw, y + bh]))
      scores.append(float(rng.uniform(0.2, 0.65)))
      v = rng.normal(size=EMB_DIM)
      embs.append(v / np.linalg.norm(v))
    return (np.array(keep_boxes, float).reshape(-1, 4), np.array(scores, float),
            np.array(embs, float).reshape(-1, EMB_DIM))


def _iou(a, b):
  return float(tracker_lib.iou_matrix(a[None], b[None])[0, 0])


from peer_trackers import make_trackers  # pylint: disable=wrong-import-position


def run_sequences(seqs, seed, reid_noise, only=None, moving=False):
  """moving: the scene through camera_path's moving camera; every tracker gets the filmed
  frames too (camera-motion compensation on where a tracker has it)."""
  inputs, paths, worlds = {}, {}, {}
  for name in seqs:
    frames, fps = scene(name)
    hw = SEQUENCES[name][2]
    if moving:
      paths[name] = camera_path(len(frames), fps, hw, seed + sum(map(ord, name)))
      worlds[name] = background(hw, seed)
      frames = [through_camera(p, b, m, hw) for (p, b), m in zip(frames, paths[name])]
    det = Detector(seed + sum(map(ord, name)), hw, reid_noise)
    inputs[name] = (frames, fps, [det(p, b) for p, b in frames])
  names = [n for n, _ in make_trackers(25.0, frames=moving)[0] if not only or n in only]
  results, timing = {}, {}
  for tname in names:
    preds, secs, nframes = {}, 0.0, 0
    for name, (frames, fps, dets) in inputs.items():
      trk = dict(make_trackers(fps, SEQUENCES[name][2], frames=moving)[0])[tname]()
      out = []
      for k, (boxes, scores, embs) in enumerate(dets):
        image = filmed(worlds[name], paths[name][k]) if moving else None
        t0 = time.perf_counter()
        res = trk.update(boxes, scores, embs, frame=image)
        secs += time.perf_counter() - t0
        out.append((np.array([r[0] for r in res], int),
                    np.array([r[1] for r in res], float).reshape(-1, 4)))
      preds[name] = out
      nframes += len(frames)
    gt = {n: [(p, b) for p, b in v[0]] for n, v in inputs.items()}
    results[tname] = evaluation.evaluate_box_tracks(gt, preds)
    results[tname]['uses_embeddings'] = trk.uses_embeddings
    timing[tname] = dict(seconds=secs, ms_per_frame=1e3 * secs / nframes, frames=nframes)
    c = results[tname]['combined']
    print(f'{tname:22s} HOTA {100 * c["HOTA"]:.1f} IDF1 {100 * c["IDF1"]:.1f} MOTA '
          f'{100 * c["MOTA"]:.1f} IDSW {c["IDSW"]} {timing[tname]["ms_per_frame"]:.2f} ms/frame',
          flush=True)
  stats = {n: dict(frames=len(v[0]), fps=v[1], people_per_frame=float(np.mean(
      [len(p) for p, _ in v[0]])), detections_per_frame=float(np.mean([len(d[1]) for d in v[2]])))
      for n, v in inputs.items()}
  return results, timing, stats


def run_seeds(seqs, seeds, only=None):
  """Every tracker over several detector seeds x both re-ID qualities: per run and summed
  (identity switches, with HOTA, AssA, IDF1 and MOTA averaged over the runs)."""
  keys = ('HOTA', 'AssA', 'IDF1', 'MOTA', 'IDSW')
  runs = {}
  for seed in seeds:
    for quality, noise in REID_NOISE.items():
      print(f'-- seed {seed}, re-ID {quality}', flush=True)
      results, _, _ = run_sequences(seqs, seed, noise, only)
      for tname, r in results.items():
        runs.setdefault(tname, {})[f'{seed}/{quality}'] = dict(
            {k: r['combined'][k] for k in keys},
            per_sequence={n: {k: v[k] for k in keys} for n, v in r['per_sequence'].items()})
  summary = {}
  for tname, per in runs.items():
    summary[tname] = {k: (int(sum(v[k] for v in per.values())) if k == 'IDSW' else
                          float(np.mean([v[k] for v in per.values()]))) for k in keys}
    summary[tname]['IDSW_per_run'] = [int(v['IDSW']) for v in per.values()]
    summary[tname]['IDSW_per_sequence'] = {
        n: int(sum(v['per_sequence'][n]['IDSW'] for v in per.values())) for n in seqs}
    summary[tname]['HOTA_per_sequence'] = {
        n: float(np.mean([v['per_sequence'][n]['HOTA'] for v in per.values()])) for n in seqs}
    summary[tname]['uses_embeddings'] = results[tname]['uses_embeddings']
    c = summary[tname]
    print(f'{tname:22s} IDSW {c["IDSW"]} HOTA {100 * c["HOTA"]:.1f} AssA {100 * c["AssA"]:.1f} '
          f'IDF1 {100 * c["IDF1"]:.1f} MOTA {100 * c["MOTA"]:.1f}', flush=True)
  return dict(seeds=list(seeds), summary=summary, runs=runs)


def run_speed(people=(10, 50, 200), frames=100, seed=0, only=None):
  """ms per frame on random walks of N people (boxes 20x50 px in a 4000 x 4000 plane)."""
  rng = np.random.default_rng(seed)
  out = {}
  for n in people:
    xy = rng.uniform(0, 4000, (n, 2))
    ident = rng.normal(size=(n, EMB_DIM))
    ident /= np.linalg.norm(ident, axis=1, keepdims=True)
    vel = rng.normal(0, 2, (n, 2))
    seq = []
    for _ in range(frames):
      xy = xy + vel
      boxes = np.c_[xy, xy + [20, 50]] + rng.normal(0, 0.5, (n, 4))
      e = ident + rng.normal(0, 0.05, ident.shape)
      seq.append((boxes, np.full(n, 0.9), e / np.linalg.norm(e, axis=1, keepdims=True)))
    for tname, make in make_trackers(25.0)[0]:
      if only and tname not in only:
        continue
      trk = make()
      t0 = time.perf_counter()
      for boxes, scores, embs in seq:
        trk.update(boxes, scores, embs)
      out.setdefault(tname, {})[str(n)] = 1e3 * (time.perf_counter() - t0) / frames
  return out


def real_clip_inputs(work: str, model: str = 'real'):
  """The teacher's pseudo ground truth of the held-out clips and the student's detections."""
  from hvisnet_jax import video  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
  root = os.path.join(work, 'pseudo_val')
  gt = evaluation.read_mots(os.path.join(root, 'mots'))
  pred = predictor.Predictor.from_export(model)
  settings = tracking_config.model_section(pred.config)
  clips = {}
  for name in sorted(gt):
    reader = video.FrameReader(os.path.join(root, 'JPEGImages', name))
    frames, hw = [], None
    for i, f in reader:
      if f is None:
        continue
      hw = f.shape[:2]
      out = {k: v[0] for k, v in pred.predict_batch(f[None]).items()}
      ok = np.flatnonzero(out['valid'])
      frames.append((i, out['boxes'][ok], out['scores'][ok], out['embeddings'][ok], ok,
                     out['label_map']))
    reader.close()
    clips[name] = (hw, frames)
  return gt, clips, settings


def run_real(work: str, only=None):
  """Every tracker on the student's detections of the held-out real clips (MOTS metrics)."""
  from scipy.optimize import linear_sum_assignment  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.evaluation import results  # pylint: disable=g-import-not-at-top
  gt, clips, settings = real_clip_inputs(work)
  names = [n for n, _ in make_trackers(30.0)[0] if not only or n in only]
  keys = ('HOTA', 'DetA', 'AssA', 'IDF1', 'sMOTSA', 'MOTSA', 'IDSW', 'TP', 'FN', 'FP')
  results = {}
  for tname in names:
    preds, secs, nframes = {}, 0.0, 0
    for name, (hw, frames) in clips.items():
      trk = dict(make_trackers(30.0, hw, ours=settings)[0])[tname]()
      result = results.TrackResult(*hw)
      for i, boxes, scores, embs, det_index, label in frames:
        t0 = time.perf_counter()
        res = trk.update(boxes, scores, embs)
        secs += time.perf_counter() - t0
        nframes += 1
        assigned, out_boxes = {}, {}
        if res and len(boxes):
          iou = tracker_lib.iou_matrix([b for _, b in res], boxes)
          for r, c in zip(*linear_sum_assignment(-iou)):
            if iou[r, c] >= 0.5:
              assigned[int(det_index[c])] = res[r][0]
              out_boxes[res[r][0]] = boxes[c]
        result.add_id_map(i, masks_lib.track_id_map(label, assigned), out_boxes, {})
      preds[name] = result.sequence(name, gt[name].num_frames)
    m = evaluation.evaluate_mots(gt, preds)
    results[tname] = dict(combined={k: m['combined'][k] for k in keys},
                          per_sequence={s: {k: v[k] for k in keys}
                                        for s, v in m['per_sequence'].items()},
                          uses_embeddings=trk.uses_embeddings,
                          ms_per_frame=1e3 * secs / max(nframes, 1))
    c = results[tname]['combined']
    print(f'{tname:22s} HOTA {100 * c["HOTA"]:.1f} IDF1 {100 * c["IDF1"]:.1f} sMOTSA '
          f'{100 * c["sMOTSA"]:.1f} IDSW {c["IDSW"]} FP {c["FP"]} FN {c["FN"]}', flush=True)
  return dict(clips={n: len(f) for n, (_, f) in clips.items()}, results=results)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--out', default=os.path.join(REPO, 'benchmarks', 'results',
                                                'tracker_peers_cpu.json'))
  ap.add_argument('--sequences', default=','.join(SEQUENCES))
  ap.add_argument('--seed', type=int, default=0)
  ap.add_argument('--seeds', default='', metavar='A-B',
                  help='instead: every detector seed A..B x both re-ID qualities, summed '
                       '(identity switches swing with the seed far more than HOTA); '
                       'writes ..._seeds_cpu.json')
  ap.add_argument('--no-speed', action='store_true')
  ap.add_argument('--speed-only', action='store_true',
                  help='instead: only the random-walk speed runs (10 / 50 / 200 people) of '
                       'every tracker, median of --repeats; writes ..._speed_cpu.json')
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--trackers', default='', help='comma-separated names (default: all)')
  ap.add_argument('--moving-camera', action='store_true',
                  help='instead: the same scenes through a panning, swaying, zooming camera '
                       '(frames given to every tracker); writes ..._moving_cpu.json')
  ap.add_argument('--real', metavar='WORK', default='',
                  help='instead: the held-out real clips of WORK/pseudo_val (docs/training.md)')
  a = ap.parse_args()
  only = [t for t in a.trackers.split(',') if t]
  # Bad arguments stop here, before any tracker or model is built.
  modes = [m for m, on in (('--real', a.real), ('--speed-only', a.speed_only),
                           ('--seeds', a.seeds), ('--moving-camera', a.moving_camera)) if on]
  if len(modes) > 1:
    ap.error(f'{" and ".join(modes)} each pick a different benchmark; give one')
  if a.seeds:
    first, _, last = a.seeds.partition('-')
    if not (first.isdigit() and (not last or last.isdigit())) or int(last or first) < int(first):
      ap.error(f'--seeds {a.seeds!r}: expected A-B with whole numbers A <= B (or one seed A)')
    seeds = range(int(first), int(last or first) + 1)
  if a.repeats < 1:
    ap.error(f'--repeats {a.repeats}: expected at least 1')
  installed = [n for n, _ in make_trackers(25.0, frames=a.moving_camera)[0]]
  unknown = sorted(set(only) - set(installed))
  if unknown:
    ap.error(f'--trackers: {unknown[0]!r} is not one of the installed trackers '
             f'({", ".join(installed)})')
  machine = f'{platform.machine()}, {os.cpu_count()} cores'

  def out_path(suffix):
    """--out if given, else the default file's name with `suffix` for this benchmark."""
    return a.out if a.out != ap.get_default('out') else a.out.replace('_cpu.json', suffix)

  if a.real:
    out = out_path('_real_cpu.json')
    report = run_real(a.real, only)
    report.update(command=f'python benchmarks/tracker_peers.py --real {a.real}', machine=machine)
    atomic.write_json(out, provenance.stamp(report), indent=1)
    print(f'wrote {out}')
    return
  if a.speed_only:
    out = out_path('_speed_cpu.json')
    runs = [run_speed(only=only) for _ in range(a.repeats)]
    median = {t: {n: float(np.median([r[t][n] for r in runs])) for n in runs[0][t]}
              for t in runs[0]}
    for t, v in median.items():
      print(f'{t:22s} ' + ' / '.join(f'{v[n]:.2f}' for n in v) + ' ms per frame', flush=True)
    atomic.write_json(out, provenance.stamp(dict(
        ms_per_frame_median=median, runs=runs, people=[10, 50, 200],
        command='python benchmarks/tracker_peers.py --speed-only', machine=machine)), indent=1)
    print(f'wrote {out}')
    return
  if a.seeds:
    out = out_path('_seeds_cpu.json')
    report = run_seeds(a.sequences.split(','), seeds, only)
    report.update(command=f'python benchmarks/tracker_peers.py --seeds {a.seeds}' +
                  (f" --trackers '{a.trackers}'" if a.trackers else ''), machine=machine)
    atomic.write_json(out, provenance.stamp(report), indent=1)
    print(f'wrote {out}')
    return
  if a.moving_camera:
    out = out_path('_moving_cpu.json')
    results, timing = {}, {}
    for quality, noise in REID_NOISE.items():
      print(f'-- moving camera, re-ID {quality} (noise {noise})')
      results[quality], timing[quality], stats = run_sequences(
          a.sequences.split(','), a.seed, noise, only, moving=True)
    atomic.write_json(out, provenance.stamp(dict(
        sequences=stats, results=results, timing=timing, seed=a.seed, machine=machine,
        camera=camera_path.__doc__.strip(),
        command='python benchmarks/tracker_peers.py --moving-camera' +
        (f" --trackers '{a.trackers}'" if a.trackers else ''))), indent=1)
    print(f'wrote {out}')
    return
  results, timing = {}, {}
  for quality, noise in REID_NOISE.items():
    print(f'-- re-ID {quality} (noise {noise})')
    results[quality], timing[quality], stats = run_sequences(a.sequences.split(','), a.seed,
                                                             noise, only)
  speed = {} if a.no_speed else run_speed()
  _, missing = make_trackers(25.0)
  versions = {}
  for pkg in ('deep-sort-realtime', 'trackers', 'supervision', 'numpy', 'scipy'):
    try:
      from importlib import metadata  # pylint: disable=g-import-not-at-top
      versions[pkg] = metadata.version(pkg)
    except Exception:  # pylint: disable=broad-except
      pass
  report = dict(sequences=stats, results=results, timing=timing, speed_ms_per_frame=speed,
                not_run=missing, seed=a.seed, versions=versions,
                machine=machine,
                command='python benchmarks/tracker_peers.py')
  atomic.write_json(a.out, provenance.stamp(report), indent=1)
  print(f'wrote {a.out}')


if __name__ == '__main__':
  main()
