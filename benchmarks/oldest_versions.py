"""The oldest library set the code runs on: a fresh virtualenv with requirements.txt, the
jax packages (and flax, which follows jax) held at older versions by pip constraints, then
the core tests and the four notebooks in light mode. Writes the versions installed and
each step's outcome.

  python benchmarks/oldest_versions.py --jax 0.9.2 --json benchmarks/results/oldest_versions.json

The floors in pyproject.toml and colab/setup_colab.py (JAX_FLOOR) are the set this passes
on. About 10 minutes on 2 cores (the install is most of it).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hvisnet_jax import atomic  # pylint: disable=wrong-import-position
from hvisnet_jax import provenance  # pylint: disable=wrong-import-position

CORE_TESTS = ['tests/model/test_model.py', 'tests/training/test_targets.py',
              'tests/training/test_losses.py', 'tests/training/test_trainer.py',
              'tests/tracking/test_tracker.py', 'tests/inference/test_ops.py',
              'tests/inference/test_predictor.py', 'tests/evaluation/test_evaluation.py',
              'tests/test_notebooks.py']
REPORTED = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'clu', 'ml-collections',
            'tensorstore', 'numpy', 'tensorflow-cpu')


def _pins(path):
  """requirements.txt as {name: line}, for replacing the held packages' lines."""
  out = {}
  for line in open(path):
    line = line.split('#', 1)[0].strip()
    if line:
      name = line.split('==')[0].split('>=')[0].split('<')[0].strip().lower()
      out[name] = line
  return out


def main() -> int:
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--jax', required=True, help='the jax and jaxlib version to hold')
  ap.add_argument('--flax', default='', help='a flax version to hold (default: what pip picks '
                  'for that jax)')
  ap.add_argument('--json', required=True)
  ap.add_argument('--venv', default='', help='where to build the virtualenv (default: temp)')
  args = ap.parse_args()
  out_dir = os.path.dirname(os.path.abspath(args.json))
  if not os.access(out_dir, os.W_OK):
    ap.error(f'--json {args.json}: {out_dir} is not writable')
  venv = args.venv or os.path.join(tempfile.mkdtemp(prefix='hvisnet-oldest-'), 'venv')
  python = os.path.join(venv, 'bin', 'python')
  held = {'jax': f'jax=={args.jax}', 'jaxlib': f'jaxlib=={args.jax}'}
  pins = _pins(os.path.join(REPO, 'requirements.txt'))
  pins.update(held)
  pins['flax'] = f'flax=={args.flax}' if args.flax else 'flax'
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as reqs:
    reqs.write('\n'.join(pins.values()) + '\n')
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as cons:
    cons.write('\n'.join(held.values()) + '\n')
  steps, t0 = {}, time.time()

  def step(name, cmd, **kw):
    s = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    steps[name] = dict(ok=r.returncode == 0, seconds=round(time.time() - s, 1),
                       tail=(r.stdout + r.stderr).strip().splitlines()[-3:])
    print(f'{name}: {"ok" if r.returncode == 0 else "FAILED"} ({steps[name]["seconds"]} s)',
          flush=True)
    return r.returncode == 0

  ok = (step('venv', [sys.executable, '-m', 'venv', venv]) and
        step('install', [python, '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
                         '-r', reqs.name, '-c', cons.name, '-r',
                         os.path.join(REPO, 'requirements-test.txt'),
                         'torch==2.13.0']) and          # notebook 03 (tests/install_test_deps.sh)
        step('package', [python, '-m', 'pip', 'install', '-q', '--no-deps', '-e', REPO]))
  versions = {}
  if ok:
    code = ('import json; from importlib import metadata as m; print(json.dumps({n: m.version(n) '
            f'for n in {REPORTED!r}}}))')
    versions = json.loads(subprocess.run([python, '-c', code], capture_output=True, text=True,
                                         check=True).stdout)
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR='')   # no programs compiled by another jax
    step('core tests and notebooks', [python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                                      *CORE_TESTS], cwd=REPO, env=env)
  for f in (reqs.name, cons.name):
    os.remove(f)
  result = provenance.stamp(dict(
      held=held, versions=versions, steps=steps, tests=CORE_TESTS,
      passed=bool(steps) and all(s['ok'] for s in steps.values()),
      seconds=round(time.time() - t0, 1)))
  result['versions_tested'] = versions
  atomic.write_json(args.json, result, indent=2)
  print(f'{"passed" if result["passed"] else "FAILED"}: {versions}; {args.json}')
  return 0 if result['passed'] else 1


if __name__ == '__main__':
  sys.exit(main())
