"""Proof of learning: train on synthetic videos on the CPU, evaluate on held-out seeds.

  python benchmarks/train_synthetic.py --config configs/hvisnet_tiny.py \
      --workdir /tmp/hvis_easy --out benchmarks/results/train_synthetic_easy.json \
      [--export hvisnet_jax/models/synthetic] [--override train.steps=700 ...]

Held-out videos use seed --eval-seed (1000 by default), never used for training (training
videos come from data.seed). Writes the training wall time, the final losses, mask AP
(pycocotools) and MOTS/HOTA (trackeval via hvisnet eval's API, frame-to-frame linking by
mask IoU) to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax

from hvisnet_jax import atomic, config_defaults, provenance
from hvisnet_jax import main as main_lib
from hvisnet_jax.inference import predictor
from hvisnet_jax.synthetic import heldout_eval as synthetic_eval
from hvisnet_jax.training import trainer as train


def _apply_override(config, text):
  key, _, value = text.partition('=')
  node = config
  *path, leaf = key.split('.')
  for p in path:
    node = node[p]
  old = node[leaf]
  node[leaf] = type(old)(value) if not isinstance(old, bool) else value.lower() == 'true'


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--config', default='configs/hvisnet_tiny.py')
  p.add_argument('--workdir', required=True)
  p.add_argument('--out', required=True)
  p.add_argument('--override', nargs='*', default=[])
  p.add_argument('--eval-videos', type=int, default=4)
  p.add_argument('--eval-frames', type=int, default=40)
  p.add_argument('--eval-seed', type=int, default=1000)
  p.add_argument('--export', default=None, help='copy the trained model here (config + params)')
  p.add_argument('--eval-only', action='store_true',
                 help='evaluate the latest checkpoint in --workdir without training; keeps '
                      'the training figures already in --out')
  a = p.parse_args()

  config = config_defaults.load_config(a.config)
  for o in a.override:
    _apply_override(config, o)
  config.inference.min_visible_fraction = config.inference.get('min_visible_fraction', 0.5)
  previous = {}
  if a.eval_only:
    with open(a.out) as f:
      previous = json.load(f)
    config.train.steps = previous['steps']        # nothing left to train
  t0 = time.perf_counter()
  state = train.train_and_evaluate(config, a.workdir, main_lib.make_source(config))
  train_s = previous.get('train_wall_s', time.perf_counter() - t0)
  with open(os.path.join(a.workdir, 'metrics.jsonl')) as f:
    log = [json.loads(line) for line in f]
  variables = train.inference_variables(state)
  pred = predictor.Predictor(config, variables)
  d = config.data
  t1 = time.perf_counter()
  metrics = synthetic_eval.evaluate_predictor(pred, d.preset, a.eval_videos, a.eval_frames,
                                              d.height, d.width, a.eval_seed)
  result = dict(
      config=a.config, overrides=a.override, preset=d.preset,
      strategy=config.targets.strategy, eliminate_ambiguous=config.targets.eliminate_ambiguous,
      steps=int(state.step), batch_size=config.train.batch_size,
      train_wall_s=train_s, eval_wall_s=time.perf_counter() - t1,
      device=jax.devices()[0].device_kind, cpu_count=os.cpu_count(),
      host=platform.machine(), jax=jax.__version__,
      train_videos=dict(count=d.videos, frames=d.frames, seed=d.seed),
      eval_videos=dict(count=a.eval_videos, frames=a.eval_frames, seed=a.eval_seed),
      first_log=log[0], last_log=log[-1],
      inference={k: config.inference[k] for k in ('score_thresh', 'nms_iou', 'max_detections',
                                                  'min_visible_fraction')
                 if k in config.inference},
      **metrics)
  atomic.write_json(a.out, provenance.stamp(result), indent=2)
  if a.export:
    pred.export(
        a.export, train_log=os.path.join(a.workdir, 'metrics.jsonl'))
  print(json.dumps({k: result[k] for k in ('steps', 'train_wall_s')}, indent=1))
  print('tracker', json.dumps(result['mots']['combined']))
  print('iou linking', json.dumps(result['mots_iou_linking']['combined']))
  print('mask AP', json.dumps(result['mask_ap']))


if __name__ == '__main__':
  main()
