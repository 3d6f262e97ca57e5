"""A stand-in for torchvision so that `import timm` works where torchvision has no CPU build.

timm imports a few torchvision names at module load (FrozenBatchNorm2d, transforms,
datasets) but its DLA model never calls them. This finder serves every `torchvision.*`
module as an inert placeholder whose attributes are placeholder classes. It is only
installed when the real torchvision is missing.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types


class _AnyMeta(type):
  def __getattr__(cls, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return _placeholder(name)

  def __iter__(cls):
    return iter(())


def _placeholder(name):
  return _AnyMeta(name, (), {'__init__': lambda self, *a, **k: None})


class _StubModule(types.ModuleType):
  def __getattr__(self, name):
    if name.startswith('__'):
      raise AttributeError(name)
    return _placeholder(name)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  def find_spec(self, fullname, path=None, target=None):
    if fullname == 'torchvision' or fullname.startswith('torchvision.'):
      return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
    return None

  def create_module(self, spec):
    mod = _StubModule(spec.name)
    mod.__path__ = []
    mod.__version__ = '0.0.0+stub'
    return mod

  def exec_module(self, module):
    pass


def install() -> bool:
  """Installs the stand-in if torchvision is absent; returns True if it did."""
  if importlib.util.find_spec('torchvision') is not None:
    return False
  sys.meta_path.insert(0, _Finder())
  return True
