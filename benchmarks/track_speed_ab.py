"""`hvisnet track`'s speed at another commit against this tree's, in alternating runs.

  python benchmarks/track_speed_ab.py --old COMMIT [--new-model real] [--rounds 5] \
      --json benchmarks/results/track_speed_ab_cpu.json

A code change (not a model change) is timed here: COMMIT is checked out into a temporary
git worktree, and benchmarks/track_speed.py runs there and here by turns (old, new, old,
new, ...) with one run each, so the machine's drift from minute to minute weighs on both.
Each tree imports its own hvisnet_jax and its own built-in model. The medians per clip
are kept, with every run's figure and provenance.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hvisnet_jax import atomic, provenance  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _one_run(tree: str, model: str, shared: str, out_json: str) -> dict:
  r = subprocess.run([sys.executable, os.path.join(tree, 'benchmarks', 'track_speed.py'),
                      '--models', model, '--shared', shared, '--repeats', '1', '--json',
                      out_json], cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                     text=True)
  if r.returncode:
    raise SystemExit(f'track_speed.py in {tree} (model {model}) failed:\n{r.stderr[-2000:]}')
  with open(out_json) as f:
    return json.load(f)


def _fps(result: dict, clip: str) -> float:
  (only,) = result['clips'][clip].values()         # one model per run
  return float(only['fps_median'])


def main(argv=None):
  argv = sys.argv if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--old', required=True, help='the commit to compare with')
  p.add_argument('--old-model', default='real')
  p.add_argument('--new-model', default='real')
  p.add_argument('--rounds', type=int, default=5)
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--json', default=None)
  a = p.parse_args(argv[1:])
  if a.rounds < 1:
    p.error(f'--rounds must be >= 1, got {a.rounds}')
  shared = os.path.abspath(a.shared)
  if not os.path.isfile(os.path.join(shared, 'videos', 'vtest.avi')):
    p.error(f'--shared {a.shared}: no videos/vtest.avi there (the shared data folder)')
  if subprocess.run(['git', 'rev-parse', '--verify', '-q', f'{a.old}^{{commit}}'], cwd=REPO,
                    stdout=subprocess.DEVNULL).returncode:
    p.error(f'--old {a.old}: not a commit of {REPO}')
  runs = {'baseline_commit': [], 'this_tree': []}
  with tempfile.TemporaryDirectory() as tmp:
    old_tree = os.path.join(tmp, 'old')
    subprocess.run(['git', 'worktree', 'add', '--detach', '-q', old_tree, a.old], cwd=REPO,
                   check=True)
    try:
      for r in range(a.rounds):
        for side, tree, model in (('baseline_commit', old_tree, a.old_model),
                                  ('this_tree', REPO, a.new_model)):
          res = _one_run(tree, model, shared, os.path.join(tmp, f'{side}_{r}.json'))
          runs[side].append(res)
          print(side, r, json.dumps({c: _fps(res, c) for c in res['clips']}), flush=True)
    finally:
      subprocess.run(['git', 'worktree', 'remove', '--force', old_tree], cwd=REPO, check=False)
  clips = list(runs['this_tree'][0]['clips'])
  out = dict(baseline_commit=dict(commit=a.old, model=a.old_model),
             this_tree=dict(model=a.new_model),
             median_fps={side: {c: float(np.median([_fps(r, c) for r in rs]))
                                for c in clips} for side, rs in runs.items()},
             runs=runs, **provenance.record(argv))
  out['this_tree_over_baseline'] = {
      c: out['median_fps']['this_tree'][c] / out['median_fps']['baseline_commit'][c]
      for c in clips}
  print(json.dumps({k: out[k] for k in ('median_fps', 'this_tree_over_baseline')}, indent=1))
  if a.json:
    atomic.write_json(a.json, out, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
