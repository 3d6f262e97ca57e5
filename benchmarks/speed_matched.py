"""The student beside the packaged YOLO at the input size that runs as fast: warm timings,
then both on every people set, in one run.

  python benchmarks/speed_matched.py --json benchmarks/results/speed_matched_cpu.json \
      [--student real] [--yolo-sizes 256 320 384 416] [--frames 60] [--images 40]

1. Warm timing, compilation excluded, on the same frames for every model:
   - per video frame: vtest.avi (768x576) at its own size (no padding for either model),
     five frames first to compile, then the median over --frames frames of the model
     alone, and of the video pipeline (decoding in FrameReader's thread, the model, our
     tracker: the student's embeddings, YOLO with the HSV appearance the pseudo-labeller
     uses);
   - per image: coco_mini val2017's first --images photos (several sizes), each run twice
     and the second timed (a new shape compiles on its first run).
   YOLO is our Flax port of the packaged yolov5s-seg at each letterbox size (long side).
2. The YOLO size whose warm time per video frame is closest to the student's is the match.
3. people_benchmark.py's sets (coco, ccp, mall, shtech) for the student and that YOLO,
   with people_benchmark's own wrappers, in this run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hvisnet_jax import atomic, evaluation, provenance  # pylint: disable=wrong-import-position
import people_benchmark  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position


def _student(spec):
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  pred = predictor_lib.Predictor.from_spec(spec)

  def run(rgb):
    out = pred.predict(rgb)
    keep = out['valid']
    return out['boxes'][keep], out['scores'][keep], out['embeddings'][keep]
  return run


def _yolo(size):
  from hvisnet_jax.data_pipelines import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.data_pipelines import yolo_teacher  # pylint: disable=g-import-not-at-top
  teacher = yolo_teacher.make('yolov5s-seg', mask_source='yolo', size=size)

  def run(rgb):
    det, _ = teacher(rgb)
    return det.boxes, det.scores, teacher_lib.appearance(rgb, det.boxes)
  return run


def _ms(fn, *args):
  t = time.perf_counter()
  fn(*args)
  return 1e3 * (time.perf_counter() - t)


def video_timing(run, source, frames):
  """(model alone, whole pipeline) median ms per frame on `frames` frames of `source`."""
  from hvisnet_jax import video  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.tracking import tracker as tracker_lib  # pylint: disable=g-import-not-at-top
  reader = video.FrameReader(source, count=frames + 5)
  rgbs = [f for _, f in reader]
  for f in rgbs[:5]:                                   # compile for this frame size
    run(f)
  alone = [_ms(run, f) for f in rgbs[5:]]
  trk = tracker_lib.Tracker()
  reader = video.FrameReader(source, start=5, count=frames)
  per_frame, t = [], time.perf_counter()
  for _, f in reader:
    trk.update(*run(f))
    now = time.perf_counter()
    per_frame.append(1e3 * (now - t))
    t = now
  return float(np.median(alone)), float(np.median(per_frame))


def image_timing(run, shared, images):
  gt = evaluation.load_json(os.path.join(shared, 'real', 'coco_mini', 'annotations',
                                         'instances_val2017.json'))
  times = []
  for im in gt['images'][:images]:
    rgb = people_benchmark._rgb(os.path.join(shared, 'real', 'coco_mini', 'val2017',  # pylint: disable=protected-access
                                             im['file_name']))
    run(rgb)                                           # compile for this shape
    times.append(_ms(run, rgb))
  return float(np.median(times))


def main(argv=None):
  argv = sys.argv if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--student', default='real')
  p.add_argument('--yolo-sizes', type=int, nargs='+', default=[256, 320, 384, 416])
  p.add_argument('--frames', type=int, default=60)
  p.add_argument('--images', type=int, default=40)
  p.add_argument('--sets', nargs='+', default=list(people_benchmark.SETS),
                 choices=list(people_benchmark.SETS))
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--min-score', type=float, default=0.25)
  p.add_argument('--json', default=None)
  a = p.parse_args(argv[1:])
  source = os.path.join(a.shared, 'videos', 'vtest.avi')
  timing = {}
  candidates = [(a.student, _student(a.student))] + [
      (f'yolov5s-seg:yolo@{s}', _yolo(s)) for s in a.yolo_sizes]
  for name, run in candidates:
    alone, pipeline = video_timing(run, source, a.frames)
    timing[name] = dict(video_ms_per_frame=alone, pipeline_ms_per_frame=pipeline,
                        image_ms=image_timing(run, a.shared, a.images))
    print(name, json.dumps(timing[name]), flush=True)
  student_ms = timing[a.student]['video_ms_per_frame']
  match = min((n for n in timing if n != a.student),
              key=lambda n: abs(timing[n]['video_ms_per_frame'] - student_ms))
  print('speed-matched:', match, flush=True)
  sets = {}
  for spec in (a.student, match):
    seg = people_benchmark.make_segmenter(spec)
    sets[spec] = {s: people_benchmark.SETS[s](a.shared, seg, a.min_score) for s in a.sets}
    print(spec, json.dumps(sets[spec]), flush=True)
  res = provenance.stamp(dict(timing=timing, speed_matched=match, sets=sets,
                              frames=a.frames, images=a.images, min_score=a.min_score),
                         argv)
  if a.json:
    atomic.write_json(a.json, res, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
