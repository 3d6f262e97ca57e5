"""The restricted torch-checkpoint reader: tensors and plain containers, nothing else."""
import os
import pickle
import zipfile

import numpy as np
import pytest

from hvisnet_jax.interop import convert_yolo, torch_pickle


def _zip_checkpoint(path, payload: bytes):
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', payload)
    z.writestr('archive/byteorder', 'little')


class _Evil:
  def __reduce__(self):
    return (os.system, ('echo pwned',))


def test_reader_refuses_any_global_but_tensors_and_containers(tmp_path):
  path = str(tmp_path / 'evil.pt')
  _zip_checkpoint(path, pickle.dumps({'model': _Evil()}, protocol=2))
  with pytest.raises(torch_pickle.UnsafeCheckpointError,
                     match=r'evil\.pt: the checkpoint names the global (posix|os)\.system'):
    torch_pickle.load(path)
  # getattr is allowed on module records only (YOLO stores Detect.forward), not on anything.
  payload = (b'\x80\x02c__builtin__\ngetattr\nq\x00c__builtin__\nset\nX\x05\x00\x00\x00clearq'
             b'\x01\x86R.')
  _zip_checkpoint(path, payload)
  with pytest.raises(torch_pickle.UnsafeCheckpointError, match='getattr'):
    torch_pickle.load(path)
  (tmp_path / 'junk.pt').write_bytes(b'not a zip')
  with pytest.raises(torch_pickle.UnsafeCheckpointError, match=r'junk\.pt: not a torch zip'):
    torch_pickle.load(str(tmp_path / 'junk.pt'))


def test_reader_rebuilds_tensors_and_a_non_yolo_checkpoint_is_named(tmp_path):
  import torch  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'weights.pt')
  w = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
  torch.save({'w': w.transpose(0, 2)[1:], 'h': w.half(), 'n': [1, 'a']}, path)
  got = torch_pickle.load(path)
  np.testing.assert_array_equal(got['w'], w.transpose(0, 2)[1:].numpy())
  assert got['h'].dtype == np.float16 and got['n'] == [1, 'a']
  with pytest.raises(convert_yolo.YoloCheckpointError, match=r'weights\.pt: expected a dict with a YOLO'):
    convert_yolo.load(path)


