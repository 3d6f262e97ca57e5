"""Installs hvisnet-jax into a runtime that already has its own jax (Colab), keeping that jax.

  python colab/setup_colab.py [REPO_DIR]      # REPO_DIR: the clone (default: this file's parent)

A Colab runtime ships an accelerator build of jax. Installing flax, optax, orbax-checkpoint
and clu unconstrained can make pip replace it with the newest CPU build (the classic way a
GPU/TPU notebook silently runs on the CPU). So this script pins the jax packages already
installed (jax, jaxlib and any jax plugin: jax-cuda12-plugin, libtpu, ...) as pip
constraints, lets pip pick the versions of the rest that fit them, installs the package
from the clone without dependencies, then prints the jax version and device it will run on.
A runtime whose jax is older than JAX_FLOOR is refused in one line saying what to do.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata

# The oldest jax this package is tested on (benchmarks/results/oldest_versions.json).
JAX_FLOOR = (0, 9, 2)
JAX_PACKAGES = re.compile(r'^(jax|jaxlib|jax[-_].*|libtpu.*)$')


def installed_jax_packages():
  """{name: version} of the jax packages in this environment (the first of each on sys.path,
  the one that imports, where a virtualenv shadows the system's)."""
  out = {}
  for dist in metadata.distributions():
    name = (dist.metadata['Name'] or '').lower()
    if JAX_PACKAGES.match(name) and name not in out:
      out[name] = dist.version
  return out


def _version_tuple(text):
  return tuple(int(p) for p in re.findall(r'\d+', text)[:3])


def main(argv) -> int:
  repo = os.path.abspath(argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  jax_pkgs = installed_jax_packages()
  if 'jax' not in jax_pkgs:
    print('no jax in this runtime: install the pinned set instead '
          f'(pip install -r {repo}/requirements.txt)', file=sys.stderr)
    return 2
  if _version_tuple(jax_pkgs['jax']) < JAX_FLOOR:
    floor = '.'.join(map(str, JAX_FLOOR))
    print(f"this runtime's jax {jax_pkgs['jax']} is older than hvisnet's floor {floor}: "
          f'upgrade it (pip install -U "jax[cuda12]>={floor}" on a GPU runtime, '
          f'"jax[tpu]>={floor}" on a TPU one), then restart the runtime', file=sys.stderr)
    return 2
  with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as f:
    f.write(''.join(f'{name}=={version}\n' for name, version in sorted(jax_pkgs.items())))
    constraints = f.name
  try:
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-r',
                    os.path.join(repo, 'colab', 'requirements-colab.txt'), '-c', constraints],
                   check=True)
  finally:
    os.remove(constraints)
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '-e', repo],
                 check=True)
  after = installed_jax_packages()
  if after != jax_pkgs:                  # the constraints make this impossible; say so if not
    print(f'warning: the jax packages changed: {jax_pkgs} -> {after}', file=sys.stderr)
  probe = ('import jax; d = jax.devices()[0]; '
           'print(f"hvisnet-jax installed; jax {jax.__version__} on {d.platform}: {d.device_kind}")')
  subprocess.run([sys.executable, '-c', probe], check=True)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
