"""The wheel's package list covers every package folder (a missing one installs a CLI
that cannot import its own commands; CI's wheel smoke run, .ci/wheel_smoke.sh, proves
the installed package works)."""
import os
import tomllib

from conftest import REPO


def test_every_package_folder_is_in_the_wheel():
  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    tool = tomllib.load(f)['tool']['setuptools']
  mapped = tool['package-dir']
  listed = set(tool['packages'])
  found = set()
  for top in ['hvisnet_jax', *mapped.values()]:
    for root, dirs, files in os.walk(os.path.join(REPO, top)):
      dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
      if '__init__.py' in files:
        rel = os.path.relpath(root, REPO).replace(os.sep, '/')
        for name, folder in mapped.items():
          if rel == folder or rel.startswith(folder + '/'):
            rel = name.replace('.', '/') + rel[len(folder):]
        found.add(rel.replace('/', '.'))
  assert found == listed, (sorted(found - listed), sorted(listed - found))
  assert 'data_pipelines' not in listed          # never a top-level module in site-packages


def test_the_wheels_lower_bounds_admit_the_pinned_set():
  """pyproject's dependencies (lower bounds, what a preinstalled runtime is checked against)
  name the same packages as requirements.txt, and every pinned version satisfies them."""
  from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top
  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    wheel = {Requirement(r).name.lower(): Requirement(r)
             for r in tomllib.load(f)['project']['dependencies']}
  pinned = {}
  for line in open(os.path.join(REPO, 'requirements.txt')):
    line = line.split('#', 1)[0].strip()
    if line:
      r = Requirement(line)
      pinned[r.name.lower()] = r
  assert set(wheel) == set(pinned)
  for name, req in pinned.items():
    exact = [s.version for s in req.specifier if s.operator == '==']
    for version in exact:
      assert wheel[name].specifier.contains(version), (name, version, str(wheel[name]))
