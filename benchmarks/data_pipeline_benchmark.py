"""Dataset build time and training-pipeline throughput, written as JSON.

  python benchmarks/data_pipeline_benchmark.py --json benchmarks/results/data_pipeline_cpu.json

Builds a synthetic YouTube-VIS dataset (crowd preset, 480x640) and the real COCO/OCHuman
samples, then times the tf.data training pipeline at short side 512 (images per second
delivered as padded NumPy batches, what the trainer consumes), on whatever CPU cores the
machine has.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from hvisnet_jax.data_pipelines import builders, pipeline  # noqa: E402
from hvisnet_jax import atomic, config_defaults, provenance  # noqa: E402
from hvisnet_jax.synthetic import synth

HERE = os.path.dirname(os.path.abspath(__file__))
from shared_data import SHARED  # pylint: disable=wrong-import-position


def throughput(builder, batch: int, batches: int, warmup: int, short: int, pad) -> dict:
  d = config_defaults.data_config()
  d.update(source='tfds', scales=(short,), max_size=1024, pad_size=pad, max_instances=16)
  ds = pipeline.train_dataset(builder, d, batch, seed=0, process_index=0, process_count=1)
  it = iter(tfds.as_numpy(ds))
  for _ in range(warmup):
    next(it)
  t0 = time.perf_counter()
  inst = 0
  for _ in range(batches):
    b = next(it)
    inst += int(b['valid'].sum())
  dt = time.perf_counter() - t0
  return dict(images_per_s=batch * batches / dt, instances_per_image=inst / (batch * batches),
              batch=batch, batches=batches, short_side=short, pad_size=list(pad))


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument('--videos', type=int, default=10)
  p.add_argument('--frames', type=int, default=50)
  p.add_argument('--batch', type=int, default=16)
  p.add_argument('--batches', type=int, default=30)
  p.add_argument('--json', default=None)
  args = p.parse_args(argv)
  tf.config.set_visible_devices([], 'GPU')
  work = tempfile.mkdtemp(prefix='hvisnet-data-bench-')
  src = os.path.join(work, 'synth')
  synth.write_dataset(src, args.videos, args.frames, 480, 640, 'crowd', seed=0)
  t0 = time.perf_counter()
  syn = builders.build('ytvis', src, os.path.join(work, 'tfds_synth'))
  build_s = time.perf_counter() - t0
  n_frames = args.videos * args.frames
  n_masks = sum(len(ex['instances']['id']) for ex in tfds.as_numpy(
      syn.as_dataset(split='train', decoders=pipeline._SKIP_DECODING)))  # pylint: disable=protected-access
  res = dict(
      device=f'CPU: {os.cpu_count()} cores ({platform.processor() or platform.machine()})',
      tensorflow=tf.__version__, tfds=tfds.__version__,
      build=dict(source=f'synthetic crowd YouTube-VIS, {args.videos} videos x {args.frames} '
                        'frames, 480x640', frames=n_frames, masks=n_masks, seconds=build_s,
                 seconds_per_1000_frames=1000 * build_s / n_frames,
                 seconds_per_1000_masks=1000 * build_s / n_masks),
      pipeline={})
  res['pipeline']['synthetic_480x640'] = throughput(syn, args.batch, args.batches, 3, 512,
                                                    (512, 704))
  coco_dir = os.path.join(SHARED, 'coco_ochuman_samples', 'coco')
  if os.path.isdir(coco_dir):
    coco = builders.build('coco', coco_dir, os.path.join(work, 'tfds_coco'),
                          splits={'train': 'test_coco.json'})
    res['pipeline']['coco_val2017_samples'] = throughput(coco, args.batch, args.batches, 3, 512,
                                                         (704, 704))
  text = json.dumps(provenance.stamp(res), indent=2)
  print(text)
  if args.json:
    atomic.write_text(args.json, text + '\n')
  return 0


if __name__ == '__main__':
  sys.exit(main())
