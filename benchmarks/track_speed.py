"""`hvisnet track` end to end, frames/s, for several models in one run on the same clips.

  python benchmarks/track_speed.py --models real runs/real/export \
      --json benchmarks/results/track_speed_cpu.json [--frames 120] [--repeats 3]

A model is a built-in name or an export folder, optionally '@[SIZE[+SIZE...]][xN][cCROWD]':
the input sizes, detections and crowd pass of `hvisnet track --input-size S[,S...]
--max-detections N --crowd-size CROWD` ('real@352+800x300'; 'real@c0': no crowd pass).

Each model tracks the first --frames frames of vtest.avi (768x576, 6-8 people) and of a
640x480 clip (one person) as `hvisnet track` does (reader thread, 2 CPU devices where 2+
cores are free, host paste, tracker); models alternate run by run (A B A B ...) so that
a slow hour of the machine weighs on both, and the median of --repeats runs is kept.
The model is compiled for the clip's frame size before the timed runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hvisnet_jax import atomic, provenance  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position

CLIPS = (('vtest.avi 768x576', 'videos/vtest.avi'),
         ('intel_asl_walk.mkv 640x480', 'real/clips/intel_asl_walk.mkv'))
# --with-crowd: a top-down plaza, 40+ people a frame, where the crowd pass runs.
CROWD_CLIP = ('anubhav_topdown_plaza_bw.mp4 1280x720 (crowd)',
              'real/clips/anubhav_topdown_plaza_bw.mp4')


def main(argv=None):
  argv = sys.argv if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--models', nargs='+', default=['real'])
  p.add_argument('--frames', type=int, default=120)
  p.add_argument('--repeats', type=int, default=3)
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--cpu-devices', type=int, default=None)
  p.add_argument('--with-crowd', action='store_true',
                 help='also a crowd clip (the frames where a crowd pass runs are recorded)')
  p.add_argument('--json', default=None)
  a = p.parse_args(argv[1:])
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import devices  # pylint: disable=g-import-not-at-top
  devices.use_cpu_devices(a.cpu_devices)
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  preds = {m: predictor_lib.Predictor.from_spec(m) for m in a.models}
  out = {}
  for label, rel in CLIPS + ((CROWD_CLIP,) if a.with_crowd else ()):
    src = os.path.join(a.shared, rel)
    cap = cv2.VideoCapture(src)
    ok, bgr = cap.read()
    cap.release()
    if not ok:
      raise ValueError(f'{src}: cannot read its first frame')
    runs, crowd = {m: [] for m in preds}, {m: [] for m in preds}
    for m, pred in preds.items():
      pred.compile_for(pred.batch_size, *bgr.shape[:2])
    for _ in range(a.repeats):
      for m, pred in preds.items():
        _, stats = app.track_source(src, pred, progress=False, max_frames=a.frames)
        runs[m].append(stats['fps'])
        crowd[m].append(stats['crowd_pass_frames'])
    out[label] = {m: dict(fps_median=float(np.median(r)), fps_runs=r, frames=a.frames,
                          devices=preds[m].batch_size,
                          inference=dict(min_size=preds[m].config.inference.min_size,
                                         max_size=preds[m].config.inference.max_size,
                                         input_sizes=list(preds[m].input_sizes),
                                         crowd_size=preds[m].crowd_size,
                                         max_detections=preds[m].config.inference.max_detections),
                          crowd_pass_frames=crowd[m])
                  for m, r in runs.items()}
    print(label, json.dumps({m: round(v['fps_median'], 2) for m, v in out[label].items()}),
          flush=True)
  if a.json:
    atomic.write_json(a.json, provenance.stamp(dict(clips=out)), indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
