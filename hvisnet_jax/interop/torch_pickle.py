"""Reads a PyTorch checkpoint (`torch.save` zip) into NumPy arrays without torch, safely.

A `.pt` file that pickles whole model objects would run arbitrary code under a plain
`pickle.load` (and under `torch.load(weights_only=False)`): any global it names is imported
and called. This reader allows only what weights need:

- tensors and parameters (torch's `_rebuild_tensor_v2` / `_rebuild_parameter`), rebuilt as
  NumPy views of the archive's storages;
- plain containers (dict, OrderedDict, list, tuple, set) and scalars;
- module objects of an allow-listed family (`torch.nn.modules.*` and the model code's
  `models.*` classes), which become `ModuleRecord`s: a type name and the object's state
  dict, never an instance of the real class and never importing its code;
- `getattr(<a module class>, name)`, which becomes the string 'Class.name' (YOLO's heads
  store a reference to a parent class's forward method).

Any other global is refused with the file and the global named.
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile
from typing import Any, Dict, Iterator, Tuple

import numpy as np

_STORAGE_DTYPES = {
    'FloatStorage': np.float32, 'HalfStorage': np.float16, 'DoubleStorage': np.float64,
    'BFloat16Storage': None, 'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}
# Module families whose objects may appear in a checkpoint: read as records, never imported.
_MODULE_PREFIXES = ('torch.nn.modules.', 'models.common', 'models.yolo', 'models.experimental')


class UnsafeCheckpointError(pickle.UnpicklingError):
  """The checkpoint's pickle names something other than tensors and plain containers."""


class ModuleRecord:
  """A module object's type and its pickled state (`_parameters`, `_buffers`, `_modules`, ...)."""
  type_name = 'Module'

  def __init__(self, *args, **kwargs):
    del args, kwargs
    self.state: Dict[str, Any] = {}

  def __setstate__(self, state):
    self.state = state if isinstance(state, dict) else {'state': state}

  # The attributes a converter reads, with the children and tensors merged in.
  def __getitem__(self, key):
    for bucket in ('_parameters', '_buffers', '_modules'):
      if key in self.state.get(bucket, {}):
        return self.state[bucket][key]
    return self.state[key]

  def get(self, key, default=None):
    try:
      return self[key]
    except KeyError:
      return default

  def children(self) -> Iterator[Tuple[str, 'ModuleRecord']]:
    return iter(self.state.get('_modules', {}).items())

  def __repr__(self):
    return f'<{self.type_name} record>'


_record_types: Dict[str, type] = {}


def _record_type(module: str, name: str) -> type:
  key = f'{module}.{name}'
  if key not in _record_types:
    _record_types[key] = type(name, (ModuleRecord,), {'type_name': name, 'module': module})
  return _record_types[key]


class _StorageType:
  def __init__(self, name):
    self.name = name
    self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):
  del requires_grad, hooks, metadata
  itemsize = storage.dtype.itemsize
  if not size:
    return storage[offset].copy().reshape(())
  return np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)).copy()


def _rebuild_parameter(data, requires_grad=False, hooks=None):
  del requires_grad, hooks
  return data


def _safe_getattr(obj, name):
  if isinstance(obj, type) and issubclass(obj, ModuleRecord) and isinstance(name, str):
    return f'{obj.type_name}.{name}'
  raise UnsafeCheckpointError(f'getattr on {obj!r} is not allowed')


class _Unpickler(pickle.Unpickler):

  def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, path: str):
    super().__init__(io.BytesIO(data))
    self._archive, self._prefix, self._path = archive, prefix, path
    self._storages: Dict[str, np.ndarray] = {}

  def find_class(self, module, name):
    if module == 'torch._utils' and name == '_rebuild_tensor_v2':
      return _rebuild_tensor_v2
    if module == 'torch._utils' and name == '_rebuild_parameter':
      return _rebuild_parameter
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(name)
    if module == 'collections' and name == 'OrderedDict':
      return collections.OrderedDict
    if module in ('builtins', '__builtin__') and name in ('set', 'frozenset'):
      return {'set': set, 'frozenset': frozenset}[name]
    if module in ('builtins', '__builtin__') and name == 'getattr':
      return _safe_getattr
    if any(module.startswith(p) for p in _MODULE_PREFIXES) and name.isidentifier():
      return _record_type(module, name)
    raise UnsafeCheckpointError(
        f'{self._path}: the checkpoint names the global {module}.{name}; only tensors, plain '
        'containers and torch.nn / models.* module records are read (refusing to load it)')

  def persistent_load(self, pid):
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == 'storage'
            and isinstance(pid[1], _StorageType)):
      raise UnsafeCheckpointError(f'{self._path}: unexpected persistent id {pid!r:.80}')
    storage_type, key = pid[1], str(pid[2])
    if storage_type.dtype is None:
      raise UnsafeCheckpointError(f'{self._path}: {storage_type.name} tensors are not supported')
    if key not in self._storages:
      try:
        raw = self._archive.read(f'{self._prefix}data/{key}')
      except KeyError:
        raise UnsafeCheckpointError(f'{self._path}: storage {key} is missing from the '
                                    'archive (truncated or corrupt file)') from None
      self._storages[key] = np.frombuffer(raw, dtype=storage_type.dtype)
    return self._storages[key]


def load(path: str) -> Any:
  """The unpickled checkpoint: dicts, lists, NumPy arrays and `ModuleRecord`s."""
  try:
    archive = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise UnsafeCheckpointError(f'{path}: not a torch zip checkpoint ({e})') from None
  with archive:
    pkl = [n for n in archive.namelist() if n.endswith('data.pkl')]
    if len(pkl) != 1:
      raise UnsafeCheckpointError(f'{path}: expected one data.pkl in the archive, found {len(pkl)}')
    prefix = pkl[0][:-len('data.pkl')]
    byteorder = prefix + 'byteorder'
    if byteorder in archive.namelist() and archive.read(byteorder).strip() != b'little':
      raise UnsafeCheckpointError(f'{path}: big-endian checkpoints are not supported')
    try:
      return _Unpickler(archive.read(pkl[0]), archive, prefix, path).load()
    except UnsafeCheckpointError as e:
      if str(e).startswith(path):
        raise
      raise UnsafeCheckpointError(f'{path}: {e}') from None
    except Exception as e:  # a truncated or garbled pickle: say which file
      raise UnsafeCheckpointError(f'{path}: cannot read the checkpoint ({type(e).__name__}: {e})') \
          from None
