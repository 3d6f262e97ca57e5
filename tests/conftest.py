"""Shared fixtures: a tiny model initialised once per session, paths to ../shared/data."""
import os
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


def tiny_config(**inference) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict(dict(model=config_defaults.tiny_model_config(),
                                       inference=config_defaults.inference_config()))
  cfg.inference.update(min_size=96, max_size=160, max_detections=20, **inference)
  return cfg


@pytest.fixture(scope='session')
def tiny_variables():
  return model.init_variables(config_defaults.tiny_model_config(), jax.random.PRNGKey(0))


@pytest.fixture(scope='session')
def shared_data():
  if not os.path.isdir(SHARED_DATA):
    pytest.fail(f'{SHARED_DATA} is missing: tests expect ../shared/data beside the repo')
  return SHARED_DATA
