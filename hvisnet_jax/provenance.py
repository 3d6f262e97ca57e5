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


# The instruction sets XLA's CPU code uses for convolutions and matrix products: two
# machines both called "AMD EPYC" or "Intel Xeon" differ in these and in speed.
ISA_FLAGS = ('sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16',
             'avx512_fp16', 'avx_vnni', 'amx_tile', 'amx_bf16', 'amx_int8', 'asimd', 'sve')


def _cpuinfo() -> dict:
  """The first processor's fields of /proc/cpuinfo ({} elsewhere)."""
  fields = {}
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if not line.strip():
          if fields:
            break
          continue
        key, _, value = line.partition(':')
        fields[key.strip()] = value.strip()
  except OSError:
    pass
  return fields


def _cpu_model() -> str:
  return (_cpuinfo().get('model name') or platform.processor() or platform.machine())


def cpu_details() -> dict:
  """What tells one CPU from another of the same name: vendor, family/model/stepping (the
  generation), clock and the instruction sets present."""
  info = _cpuinfo()
  flags = set((info.get('flags') or info.get('Features') or '').split())
  out = dict(vendor=info.get('vendor_id', platform.machine()),
             family_model_stepping='/'.join(info.get(k, '?') for k in
                                            ('cpu family', 'model', 'stepping')),
             isa=[f for f in ISA_FLAGS if f in flags])
  if info.get('cpu MHz'):
    out['mhz'] = float(info['cpu MHz'])
  return out


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
              machine=dict(cpu=_cpu_model(), cpu_details=cpu_details(), cores=os.cpu_count(),
                           accelerator=_accelerator(), system=platform.platform()),
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


def load_rows(path: Optional[str]) -> dict:
  """A result file that several runs add rows to ({'models': {...}, provenance}), or a new
  one: the benchmarks that compare models one invocation at a time merge into it."""
  out = {}
  if path and os.path.exists(path):
    from hvisnet_jax import evaluation  # pylint: disable=g-import-not-at-top
    out = evaluation.load_json(path)
  out.setdefault('models', {})
  return out


def save_rows(path: Optional[str], out: dict, argv: Optional[Sequence[str]] = None) -> None:
  """Writes `out` (load_rows) whole, stamped with this run's provenance; no path: nothing."""
  if path:
    from hvisnet_jax import atomic  # pylint: disable=g-import-not-at-top
    out.update(record(argv))
    atomic.write_json(path, out, indent=1)
