"""colab/setup_colab.py, the notebooks' install step: a runtime's own jax is kept.

The "preinstalled" runtime is a virtualenv over this machine's packages with an older jax
(0.10.0, the floor, against the pinned 0.10.2) installed in it, as Colab brings its own."""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import REPO

SETUP = os.path.join(REPO, 'colab', 'setup_colab.py')
RUNTIME_JAX = '0.10.0'


def _load_setup():
  spec = importlib.util.spec_from_file_location('setup_colab', SETUP)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _jax_version(python):
  return subprocess.run([python, '-c', 'import jax; print(jax.__version__)'], capture_output=True,
                        text=True, check=True).stdout.strip()


@pytest.fixture(scope='module')
def runtime(tmp_path_factory):
  venv = tmp_path_factory.mktemp('runtime') / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', str(venv)], check=True)
  python = str(venv / 'bin' / 'python')
  subprocess.run([python, '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
                  f'jax=={RUNTIME_JAX}', f'jaxlib=={RUNTIME_JAX}'], check=True)
  assert _jax_version(python) == RUNTIME_JAX
  return python


def test_setup_keeps_the_runtimes_jax_and_says_where_it_runs(runtime, tmp_path):
  r = subprocess.run([runtime, SETUP, REPO], capture_output=True, text=True, cwd=tmp_path,
                     timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  assert f'hvisnet-jax installed; jax {RUNTIME_JAX} on cpu' in r.stdout
  assert 'warning' not in r.stderr
  assert _jax_version(runtime) == RUNTIME_JAX
  # The package works on that jax: a frame through the built-in real model.
  code = ('import numpy as np; from hvisnet_jax.inference import predictor; '
          'p = predictor.Predictor.from_export(); '
          'out = p.predict(np.zeros((120, 160, 3), np.uint8)); print(out["boxes"].shape)')
  r = subprocess.run([runtime, '-c', code], capture_output=True, text=True, cwd=tmp_path,
                     timeout=600)
  assert r.returncode == 0 and r.stdout.strip().endswith(')'), r.stderr[-3000:]


def test_constraints_pin_every_installed_jax_package():
  setup = _load_setup()
  found = setup.installed_jax_packages()
  assert found['jax'] == _jax_version(sys.executable) and 'jaxlib' in found
  assert all(setup.JAX_PACKAGES.match(name) for name in found)
  assert setup.JAX_PACKAGES.match('jax-cuda12-plugin') and setup.JAX_PACKAGES.match('libtpu')
  assert not setup.JAX_PACKAGES.match('jaxtyping')        # not a jax build


def test_a_jax_below_the_floor_is_one_line_saying_what_to_do(monkeypatch, capsys):
  setup = _load_setup()
  old = '0.4.38'
  assert setup._version_tuple(old) < setup.JAX_FLOOR  # pylint: disable=protected-access
  monkeypatch.setattr(setup, 'installed_jax_packages', lambda: {'jax': old, 'jaxlib': old})
  monkeypatch.setattr(setup.subprocess, 'run', lambda *a, **k: pytest.fail('installed anyway'))
  assert setup.main(['setup_colab.py', REPO]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and f'jax {old} is older than' in err[0] and 'pip install -U' in err[0]
