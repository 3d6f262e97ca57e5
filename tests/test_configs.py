"""Configs by name: from the installed package, or from a source checkout's configs/."""
import importlib.util
import os

import pytest

from hvisnet_jax import config_defaults
from conftest import REPO


def test_builtin_config_by_name_from_a_checkout_without_install(monkeypatch, tmp_path):
  # The repository on PYTHONPATH, not pip-installed: no hvisnet_jax.configs package to
  # find, and the working directory has no configs/ either.
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'hvisnet_jax.configs'
                      else real_find_spec(name, *a))
  monkeypatch.chdir(tmp_path)
  path = config_defaults.builtin_config_path('hvisnet_tiny')
  assert os.path.samefile(path, os.path.join(REPO, 'configs', 'hvisnet_tiny.py'))
  assert config_defaults.load_config('hvisnet_tiny.py').model.backbone.name


def test_unknown_config_name_says_what_was_looked_for():
  with pytest.raises(FileNotFoundError, match='no built-in config nope.py'):
    config_defaults.load_config('nope')
