"""The tracker's additions on real footage: the built-in real model's detections on the
five held-out clips, tracked with each variant, scored against the teacher's pseudo
ground truth (MOTS metrics by trackeval).

  python benchmarks/tracker_real_ablation.py --work runs/real   # after WORK/pseudo_val (docs/training.md)

The network runs once per frame (cached); only the tracker changes between variants.
"""
import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hvisnet_jax import atomic, evaluation, provenance, video  # pylint: disable=wrong-import-position
from hvisnet_jax.apps import track as app  # pylint: disable=wrong-import-position
from hvisnet_jax.evaluation import results  # pylint: disable=wrong-import-position
from hvisnet_jax.inference import predictor  # pylint: disable=wrong-import-position
from hvisnet_jax.tracking import tracker as tracker_lib  # pylint: disable=wrong-import-position
from hvisnet_jax.tracking import config as tracking_config, masks as masks_lib  # pylint: disable=wrong-import-position
from hvisnet_jax.tracking.kalman import CHI2_95_4DOF  # pylint: disable=wrong-import-position

VARIANTS = {
    "default (as shipped: the model's tracker settings, new_track_thresh=0.6)": {},
    "the authors' new_track_thresh (0.5)": dict(new_track_thresh=0.5),
    "the authors' motion gate, chi2 0.95 (motion_gate=9.4877)":
        dict(motion_gate=CHI2_95_4DOF),
    'without the overlap rule (tracked_keeps_overlap=False)': dict(tracked_keeps_overlap=False),
    'neither (motion_gate 9.49, tracked_keeps_overlap off)': dict(motion_gate=CHI2_95_4DOF,
                                                    tracked_keeps_overlap=False),
    'IoU tie-breaker in stage 1 (iou_weight=0.3)': dict(iou_weight=0.3),
    'weak-detection pass (low_det_thresh=0.1)': dict(low_det_thresh=0.1),
    'coasting masks (--carry-masks)': {},
    'weak pass + coasting masks': dict(low_det_thresh=0.1),
}
CARRY = {'coasting masks (--carry-masks)', 'weak pass + coasting masks'}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--work', default='runs/real')
  ap.add_argument('--model', default='real')
  ap.add_argument('--json', default=os.path.join(REPO, 'benchmarks', 'results',
                                                 'tracker_real_ablation_cpu.json'))
  a = ap.parse_args()
  root = os.path.join(a.work, 'pseudo_val')
  gt = evaluation.read_mots(os.path.join(root, 'mots'))
  pred = predictor.Predictor.from_export(a.model)
  outputs = {}
  for name in gt:
    reader = video.FrameReader(os.path.join(root, 'JPEGImages', name))
    outputs[name] = [(i, f.shape[:2], {k: v[0] for k, v in pred.predict_batch(f[None]).items()})
                     for i, f in reader if f is not None]
    reader.close()
  report = {}
  for variant, kw in VARIANTS.items():
    preds = {}
    for name, frames in outputs.items():
      trk = tracker_lib.Tracker(tracking_config.for_model(pred.config, fps=30.0, **kw))
      carry = masks_lib.MaskCarrier()
      result = results.TrackResult(*frames[0][1])
      for i, _, out in frames:
        assigned = trk.update(out['boxes'], out['scores'], out['embeddings'], out['valid'])
        id_map = masks_lib.track_id_map(out['label_map'], assigned)
        boxes = {tid: out['boxes'][d] for d, tid in assigned.items()}
        if variant in CARRY:
          id_map = carry(id_map, boxes, trk.coasting())
        result.add_id_map(i, id_map, boxes, {})
      preds[name] = result.sequence(name, gt[name].num_frames)
    m = evaluation.evaluate_mots(gt, preds)
    keys = ('HOTA', 'IDF1', 'sMOTSA', 'MOTSA', 'IDSW', 'TP', 'FN', 'FP')
    report[variant] = dict(combined={k: m['combined'][k] for k in keys},
                           per_sequence={s: {k: v[k] for k in keys}
                                         for s, v in m['per_sequence'].items()})
    print(variant, {k: round(m['combined'][k], 3) for k in keys}, flush=True)
  atomic.write_json(a.json, provenance.stamp(dict(model=a.model, clips=sorted(gt),
                                                 variants=report)), indent=1)


if __name__ == '__main__':
  main()
