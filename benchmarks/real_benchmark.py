"""Teacher vs the real student vs the old (synthetic) default, one run, same machine.

  python benchmarks/real_benchmark.py --work runs/real \
      --json benchmarks/results/real_benchmark_cpu.json

Needs the teacher's pseudo-labels of the held-out clips (configs/hvisnet_real.py's HELD_OUT)
in WORK/pseudo_val, made by `hvisnet pseudo-label CLIP ... --out runs/real/pseudo_val
--max-frames 120` (docs/training.md), and the teacher files (`hvisnet teacher fetch`). Measures:
- coco_mini val2017 persons (real masks, never trained on): mask AP, AP50, box AP;
- the held-out clips against the teacher's pseudo ground truth (identities linked by the
  tracker, people it could not label as ignore regions): HOTA, IDF1, sMOTSA, IDSW through
  trackeval, and identity stability (identities per clip, frames per identity) beside the
  pseudo ground truth's;
- end-to-end `hvisnet track` frames/s on vtest.avi (768x576) and a 640x480 clip, with the
  share of wall time spent in the network (the rest is host work: decoding, tracking,
  painting masks) and the teacher + tracker's frames/s on the same frames. The student
  runs as `hvisnet track` runs it (--cpu-devices, default 2 on 2+ cores) and on one device.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hvisnet_jax import atomic, evaluation, provenance  # pylint: disable=wrong-import-position
from hvisnet_jax.apps import bench
from hvisnet_jax.apps import track as app
from hvisnet_jax.inference import predictor as predictor_lib
from hvisnet_jax.configs import hvisnet_real  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position

SPEED_CLIPS = (('vtest.avi 768x576', 'videos/vtest.avi'),
               ('intel_asl_walk.mkv 640x480', 'real/clips/intel_asl_walk.mkv'))


def _coco_results(image_id, boxes, scores, label):
  out = []
  for i, (b, s) in enumerate(zip(boxes, scores)):
    m = label == i
    if not m.any():
      continue
    rle = evaluation.encode_mask(m)
    rle['counts'] = rle['counts'].decode()
    x1, y1, x2, y2 = (float(v) for v in b)
    out.append(dict(image_id=image_id, category_id=1, segmentation=rle, score=float(s),
                    bbox=[x1, y1, x2 - x1, y2 - y1]))
  return out


def _canvas(h, w):
  for ch, cw in ((480, 640), (640, 480), (640, 640)):
    if h <= ch and w <= cw:
      return ch, cw
  return h, w


def coco_val(shared, models, teacher):
  gt_path = os.path.join(shared, 'real/coco_mini/annotations/instances_val2017.json')
  gt = evaluation.load_json(gt_path)
  person = [c['id'] for c in gt['categories'] if c['name'] == 'person'][0]
  images = gt['images']
  results = {name: [] for name in list(models) + ['teacher', 'teacher_no_tiles']}
  times = {name: 0.0 for name in results}
  for im in images:
    bgr = cv2.imread(os.path.join(shared, 'real/coco_mini/val2017', im['file_name']))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    canvas = _canvas(h, w)
    padded = np.zeros((*canvas, 3), np.uint8)
    padded[:h, :w] = rgb
    for name, pred in models.items():
      t = time.perf_counter()
      # Ours, for the benchmark only: images are padded (bottom/right) onto one of three
      # canvases, so that the jitted predictor compiles 3 times, not once per image size.
      out = pred.predict(padded)
      out['label_map'] = out['label_map'][:h, :w]
      times[name] += time.perf_counter() - t
      v = out['valid']
      label = np.where(out['label_map'] >= 0, out['label_map'], -1)
      keep = np.flatnonzero(v)
      remap = np.full(len(v) + 1, -1)
      remap[keep] = np.arange(len(keep))
      results[name] += _coco_results(im['id'], out['boxes'][keep], out['scores'][keep],
                                     remap[label])
    for name, tiles in (('teacher', 2), ('teacher_no_tiles', 0)):
      teacher.tiles = tiles
      t = time.perf_counter()
      det, label = teacher(rgb)
      times[name] += time.perf_counter() - t
      results[name] += _coco_results(im['id'], det.boxes, det.scores, label)
  for r in results.values():
    for x in r:
      x['category_id'] = person
  n_people = sum(1 for a in gt['annotations'] if a['category_id'] == person and not a['iscrowd'])
  out = {}
  for name, res in results.items():
    segm = evaluation.evaluate_coco(gt, res) if res else {}
    box = evaluation.evaluate_coco(gt, res, iou_type='bbox') if res else {}
    out[name] = dict(mask_AP=segm.get('AP', 0.0), mask_AP50=segm.get('AP50', 0.0),
                     mask_APs=segm.get('APs', 0.0), box_AP=box.get('AP', 0.0),
                     box_AP50=box.get('AP50', 0.0), detections=len(res),
                     ms_per_image=1e3 * times[name] / len(images))
  return dict(images=len(images), people=n_people, **out)


def held_out(work, models):
  root = os.path.join(work, 'pseudo_val')
  gt = evaluation.read_mots(os.path.join(root, 'mots'))
  videos = {v['name']: v for v in evaluation.load_json(os.path.join(root, 'annotations.json'))['videos']}
  out = {}
  for name, pred in models.items():
    preds, stability = {}, {}
    for seq_name, seq in gt.items():
      res, stats = app.track_source(os.path.join(root, 'JPEGImages', seq_name), pred,
                                    progress=False)
      p = res.sequence(seq_name, seq.num_frames)
      preds[seq_name] = p
      stability[seq_name] = _stability(p)
    metrics = evaluation.evaluate_mots(gt, preds)
    keys = ('HOTA', 'IDF1', 'sMOTSA', 'MOTSA', 'IDSW', 'TP', 'FN', 'FP')
    out[name] = dict(combined={k: metrics['combined'][k] for k in keys},
                     per_sequence={s: {k: v[k] for k in keys}
                                   for s, v in metrics['per_sequence'].items()},
                     stability=stability)
  out['pseudo_ground_truth'] = dict(stability={s: _stability(q) for s, q in gt.items()},
                                    frames={s: videos[s]['length'] for s in gt})
  return out


def _stability(seq):
  """Identities in the clip and frames per identity (class 2 only)."""
  counts = {}
  for ids, classes in zip(seq.ids, seq.classes):
    for i, c in zip(ids, classes):
      if c == evaluation.PEDESTRIAN:
        counts[int(i)] = counts.get(int(i), 0) + 1
  return dict(identities=len(counts),
              frames_per_identity=float(np.mean(list(counts.values()))) if counts else 0.0)


def speed(shared, models, teacher, frames=120):
  """End-to-end frames/s over `frames` frames; network share from a separate timing."""
  from hvisnet_jax.data_pipelines import pseudo_label  # pylint: disable=g-import-not-at-top
  out = {}
  for label, rel in SPEED_CLIPS:
    src = os.path.join(shared, rel)
    row = {}
    for name, pred in models.items():
      cap = cv2.VideoCapture(src)
      ok, bgr = cap.read()
      cap.release()
      if not ok:
        raise ValueError(f'{src}: cannot read its first frame')
      pred.compile_for(pred.batch_size, *bgr.shape[:2])
      _, stats = app.track_source(src, pred, progress=False, max_frames=frames)
      share = bench.predictor_share(pred, src, stats['fps'], warmup=0, runs=10)
      row[name] = dict(fps=stats['fps'], frames=stats['frames'], devices=pred.batch_size,
                       network_ms=share['predict_ms'], network_share=share['predict_share'],
                       tracker_ms=stats['tracker_ms_per_frame'])
    tmp = os.path.join(os.path.dirname(os.path.abspath(__file__)), '.speed_tmp')
    t = time.perf_counter()
    part = pseudo_label.label_source(src, teacher, pseudo_label.Options(max_frames=frames // 4,
                                                                        tiles=2),
                                     os.path.join(tmp, 'img'))
    dt = time.perf_counter() - t
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.rmtree(tmp, ignore_errors=True)
    row['teacher'] = dict(fps=len(part['frames']) / dt, frames=len(part['frames']),
                          note='teacher (2x2 tiles) + tracker + masks, as pseudo-label runs it')
    out[label] = row
  return out


SECTIONS = ('coco_val2017', 'held_out_clips_vs_teacher', 'speed')


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--work', default='runs/real')
  p.add_argument('--json', default='benchmarks/results/real_benchmark_cpu.json')
  p.add_argument('--student', default='real', help="export dir or built-in name")
  p.add_argument('--cpu-devices', type=int, default=None,
                 help='as hvisnet track --cpu-devices (default: 2 on 2+ cores)')
  p.add_argument('--only', nargs='+', choices=SECTIONS, default=None,
                 help='re-run these sections only; the others are kept from --json, and '
                      '"sections_run" records when each section was measured')
  a = p.parse_args()
  previous = {}
  if a.only:
    if not os.path.isfile(a.json):
      p.error(f'--only keeps the other sections of {a.json}, which does not exist')
    previous = evaluation.load_json(a.json)
    missing = [k for k in SECTIONS if k not in a.only and k not in previous]
    if missing:
      p.error(f'--only keeps the other sections of {a.json}, but it has no {missing[0]!r}; '
              f'run without --only (or add {missing[0]} to it)')
  from hvisnet_jax.inference import devices  # pylint: disable=g-import-not-at-top
  devices.use_cpu_devices(a.cpu_devices)
  from hvisnet_jax.data_pipelines import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  teacher = teacher_lib.Teacher(tiles=2)
  student = predictor_lib.Predictor.from_export(a.student)
  models = {'student': student,
            'synthetic_model': predictor_lib.Predictor.from_export('synthetic')}
  one_device = {'student_one_device': predictor_lib.Predictor(
      student.config, student.variables, devices=jax.devices()[:1])}
  t0 = time.perf_counter()
  result = dict(device=jax.devices()[0].device_kind, cpu_count=os.cpu_count(),
                devices=len(jax.devices()),
                host=platform.machine(), jax=jax.__version__, student=a.student,
                held_out_clips=list(hvisnet_real.HELD_OUT))
  now = time.strftime('%Y-%m-%dT%H:%M:%S')
  runs = dict(previous.get('sections_run') or
              {k: previous.get('time', 'before sections_run was kept') for k in SECTIONS
               if k in previous})
  for section in SECTIONS:
    if a.only and section not in a.only:
      result[section] = previous[section]
      continue
    if section == 'coco_val2017':
      result[section] = coco_val(a.shared, models, teacher)
      print(json.dumps(result[section], indent=1))
    elif section == 'held_out_clips_vs_teacher':
      result[section] = held_out(a.work, models)
      print(json.dumps({k: v.get('combined') for k, v in result[section].items()}, indent=1))
    else:
      result[section] = speed(a.shared, dict(models, **one_device), teacher)
      print(json.dumps(result[section], indent=1))
    runs[section] = now
  result['sections_run'] = runs
  result['wall_s'] = time.perf_counter() - t0
  atomic.write_json(a.json, provenance.stamp(result), indent=1)


if __name__ == '__main__':
  main()
