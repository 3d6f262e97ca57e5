"""Identity through camera motion: ../shared/data/real/davis_people, one labelled person each.

  python benchmarks/davis_people.py --json benchmarks/results/davis_people_cpu.json \
      [--model real] [--variants default cmc carry cmc+carry]

DAVIS-2016 clips filmed by moving, panning, zooming cameras (11 sequences, 25-91 frames,
854x480), each with one annotated foreground object that is (or holds) a person. Each
variant runs `hvisnet track`'s pipeline (track_source) with the model's own tracker
settings and then:
- best-instance J: per frame, the best IoU of any predicted person mask with the
  annotation, averaged over the sequence: what the detector alone allows;
- best-track J: the one track whose masks (empty where it is absent) best match the
  annotation over the whole sequence: what a user following one identity gets;
- identities: how many tracks were the annotated person's best match (IoU >= 0.5) in
  some frame.
Variants: `default` (the model's settings), `cmc` (camera-motion compensation on),
`carry` (a missed person reported at the prediction, --carry-masks), `cmc+carry`.
Note: the clips' frames are among the real model's training footage (labelled by the
teacher, not by these annotations); the identities a tracker keeps are what is measured.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import cv2
import numpy as np
from pycocotools import mask as mask_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from hvisnet_jax import atomic, provenance  # pylint: disable=wrong-import-position

from shared_data import SHARED  # pylint: disable=wrong-import-position
DAVIS = os.path.join(SHARED, 'real', 'davis_people')
VARIANTS = {'default': dict(), 'cmc': dict(camera_motion=True),
            'carry': dict(carry_masks=True), 'cmc+carry': dict(camera_motion=True,
                                                                carry_masks=True)}


def _iou(a, b):
  u = np.logical_or(a, b).sum()
  return float(np.logical_and(a, b).sum() / u) if u else 1.0


def score_sequence(result, truth):
  """(best-instance J, best-track J, identities, best track id) of one sequence."""
  n = len(truth)
  per_frame_best, track_iou, best_ids = [], {}, set()
  for t in range(n):
    dets = result.frames[t] if t < len(result.frames) else {}
    ious = {tid: _iou(mask_utils.decode(d['rle']).astype(bool), truth[t])
            for tid, d in dets.items()}
    per_frame_best.append(max(ious.values(), default=0.0 if truth[t].any() else 1.0))
    for tid, v in ious.items():
      track_iou.setdefault(tid, np.zeros(n))[t] = v
    if ious:
      tid = max(ious, key=ious.get)
      if ious[tid] >= 0.5:
        best_ids.add(tid)
  empty = np.array([0.0 if m.any() else 1.0 for m in truth])
  # A track is empty where absent: IoU 0 with a visible person, 1 with nobody labelled.
  track_j = {tid: float(np.where(v > 0, v, empty).mean()) for tid, v in track_iou.items()}
  best_track = max(track_j, key=track_j.get) if track_j else None
  return (float(np.mean(per_frame_best)), track_j.get(best_track, float(empty.mean())),
          len(best_ids), best_track)


def main():
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--model', default='real')
  p.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
  p.add_argument('--json', default=None)
  a = p.parse_args()
  from hvisnet_jax.inference import devices  # pylint: disable=g-import-not-at-top
  devices.use_cpu_devices()
  pred = predictor.Predictor.from_export(a.model)
  seqs = sorted(d for d in os.listdir(DAVIS) if os.path.isdir(os.path.join(DAVIS, d)))
  truth = {s: [cv2.imread(f, cv2.IMREAD_GRAYSCALE) > 127 for f in
               sorted(glob.glob(os.path.join(DAVIS, s, 'Annotations', '*.png')))] for s in seqs}
  out = {}
  for variant in a.variants:
    rows = {}
    for s in seqs:
      result, stats = app.track_source(os.path.join(DAVIS, s, 'JPEGImages'), pred,
                                       progress=False, **VARIANTS[variant])
      j_inst, j_track, ids, _ = score_sequence(result, truth[s])
      rows[s] = dict(frames=len(truth[s]), best_instance_J=round(j_inst, 4),
                     best_track_J=round(j_track, 4), identities=ids,
                     fps=round(stats['fps'], 2))
    mean = {k: float(np.mean([r[k] for r in rows.values()]))
            for k in ('best_instance_J', 'best_track_J', 'identities')}
    out[variant] = dict(mean=mean, per_sequence=rows)
    print(variant, json.dumps(mean), flush=True)
  res = provenance.stamp(dict(model=a.model, sequences=len(seqs), results=out))
  if a.json:
    atomic.write_text(a.json, json.dumps(res, indent=1))


if __name__ == '__main__':
  main()
