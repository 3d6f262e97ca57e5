"""How a result was made: command line, commit, machine, date and library versions.

Every JSON under benchmarks/results carries these fields (tests/test_docs.py checks), so a
figure can be found again and compared only with figures from the same kind of machine.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Optional, Sequence

_LIBRARIES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy', 'scipy',
              'opencv-python', 'tensorflow-cpu', 'torch')


def _cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _commit() -> str:
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=here, capture_output=True,
                         text=True, timeout=10, check=False)
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=here,
                           capture_output=True, text=True, timeout=10, check=False)
  except (OSError, subprocess.SubprocessError):
    return 'unknown (not a git checkout)'
  sha = out.stdout.strip()
  if not sha:
    return 'unknown (not a git checkout)'
  return sha + ('+uncommitted changes' if dirty.stdout.strip() else '')


def _accelerator() -> str:
  if 'jax' not in sys.modules:
    return 'not queried (jax not imported)'
  import jax  # pylint: disable=g-import-not-at-top
  d = jax.devices()[0]
  return f'{len(jax.devices())} x {d.device_kind}' if d.platform != 'cpu' else 'none (CPU)'


def record(argv: Optional[Sequence[str]] = None) -> dict:
  """The provenance fields of a result made now by the command `argv` (default sys.argv)."""
  argv = list(sys.argv if argv is None else argv)
  if argv and argv[0].endswith('.py'):
    argv[0] = os.path.relpath(argv[0]) if os.path.isabs(argv[0]) else argv[0]
    command = 'python ' + ' '.join(argv)
  else:
    command = ' '.join(['hvisnet' if a.endswith('hvisnet') else a for a in argv])
  versions = {'python': platform.python_version()}
  for lib in _LIBRARIES:
    try:
      versions[lib] = importlib.metadata.version(lib)
    except importlib.metadata.PackageNotFoundError:
      pass
  return dict(command=command, commit=_commit(),
              machine=dict(cpu=_cpu_model(), cores=os.cpu_count(), accelerator=_accelerator(),
                           system=platform.platform()),
              date=datetime.date.today().isoformat(), versions=versions)


def stamp(result: dict, argv: Optional[Sequence[str]] = None) -> dict:
  """`result` with the provenance fields added (its own 'versions' entries are kept)."""
  prov = record(argv)
  out = dict(result)
  own = out.get('versions') if isinstance(out.get('versions'), dict) else {}
  out.update({k: v for k, v in prov.items() if k != 'versions'})
  out['versions'] = {**prov['versions'], **own}
  if isinstance(result.get('machine'), str):
    out['machine'] = dict(prov['machine'], note=result['machine'])
  return out
