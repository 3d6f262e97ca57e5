"""Shared fixtures: a tiny model initialised once per session, paths to ../shared/data."""
import os
import subprocess
import sys
import tempfile

# XLA's persistent compilation cache, shared with the subprocesses some tests start (they
# inherit the environment): a train step compiled once is loaded, not recompiled. Keys hash
# the program, the jax version and the flags, so a cached entry is never a wrong one.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'hvisnet_jax_test_xla_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')

import jax
import ml_collections
import pytest

from hvisnet_jax import config_defaults
from hvisnet_jax.model import hvisnet as model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), 'shared', 'data')
MULTIDEVICE_HELPER = os.path.join(REPO, 'tests', 'multidevice_helper.py')


def run_multidevice(args, devices, **kw):
  """tests/multidevice_helper.py ARGS in a subprocess with `devices` CPU devices."""
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
             JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, MULTIDEVICE_HELPER, *args], env=env,
                        capture_output=True, text=True, timeout=600, **kw)


def assert_ok(r):
  assert r.returncode == 0, r.stderr[-3000:]


def tiny_config(**inference) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict(dict(model=config_defaults.tiny_model_config(),
                                       inference=config_defaults.inference_config()))
  cfg.inference.update(min_size=96, max_size=160, max_detections=20, **inference)
  return cfg


def detecting_variables(variables):
  """Tiny-model variables that detect: an untrained net scores ~0.005 and predicts empty
  masks. With threshold 0 (tiny_config(score_thresh=0.0)) these give boxes of two strides
  each way (bbox_pred bias 2) and bases set to a constant 5, so every mask logit is 5."""
  params = jax.tree.map(lambda x: x, variables['params'])
  params['basis']['bases']['kernel'] = 0.0 * params['basis']['bases']['kernel']
  params['basis']['bases']['bias'] = 0.0 * params['basis']['bases']['bias'] + 5.0
  params['head']['bbox_pred']['bias'] = params['head']['bbox_pred']['bias'] + 2.0
  return dict(variables, params=params)


@pytest.fixture(scope='session')
def tiny_variables():
  return model.init_variables(config_defaults.tiny_model_config(), jax.random.PRNGKey(0))


@pytest.fixture(scope='session')
def shared_data():
  if not os.path.isdir(SHARED_DATA):
    pytest.fail(f'{SHARED_DATA} is missing: tests expect ../shared/data beside the repo')
  return SHARED_DATA
