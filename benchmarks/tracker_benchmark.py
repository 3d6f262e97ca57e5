"""Tracker cost per frame with 10, 50 and 200 people, pinned to one CPU core.

  python benchmarks/tracker_benchmark.py --out benchmarks/results/tracker_cpu.json

Thin wrapper over hvisnet_jax.apps.bench.bench_tracker that limits BLAS to one thread and pins
the process to one core before numpy loads.
"""
import os

for var in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
  os.environ.setdefault(var, '1')

import argparse  # pylint: disable=wrong-import-position
import json  # pylint: disable=wrong-import-position
import platform  # pylint: disable=wrong-import-position

from hvisnet_jax import atomic, provenance  # pylint: disable=wrong-import-position
from hvisnet_jax.apps import bench  # pylint: disable=wrong-import-position


def main():
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument('--out', required=True)
  p.add_argument('--frames', type=int, default=200)
  p.add_argument('--warmup', type=int, default=20)
  a = p.parse_args()
  if hasattr(os, 'sched_setaffinity'):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  rows = [bench.bench_tracker(n, a.frames, a.warmup) for n in (10, 50, 200)]
  result = dict(cores=1, host=platform.processor() or platform.machine(),
                python=platform.python_version(), results=rows,
                targets_ms={'10': 1.0, '50': 5.0})
  atomic.write_json(a.out, provenance.stamp(result), indent=2)
  print(json.dumps(rows, indent=1))


if __name__ == '__main__':
  main()
