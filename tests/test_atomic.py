"""Atomic outputs: whole or not at all, and errors that name the user's path."""
import errno
import os

import pytest

from hvisnet_jax import atomic


def test_writes_whole_files_and_creates_the_folder(tmp_path):
  target = tmp_path / 'new' / 'm.json'
  atomic.write_json(str(target), {'a': 1}, indent=1)
  assert target.read_text() == '{\n "a": 1\n}\n'
  assert os.listdir(tmp_path / 'new') == ['m.json']


def test_a_full_disk_names_the_target_not_a_temporary_and_keeps_the_old_file(tmp_path,
                                                                              monkeypatch):
  target = tmp_path / 'm.json'
  target.write_text('old')
  def full(*_):
    raise OSError(errno.ENOSPC, 'No space left on device')
  monkeypatch.setattr(os, 'replace', full)
  with pytest.raises(OSError) as e:
    atomic.write_text(str(target), 'new')
  assert e.value.errno == errno.ENOSPC
  assert str(target) in str(e.value) and '.partial' not in str(e.value)
  assert 'Check free space' in str(e.value)
  assert target.read_text() == 'old' and os.listdir(tmp_path) == ['m.json']


def test_written_files_and_staged_folders_get_the_usual_modes(tmp_path):
  umask = os.umask(0)
  os.umask(umask)
  atomic.write_text(str(tmp_path / 'a.json'), '{}')
  assert os.stat(tmp_path / 'a.json').st_mode & 0o777 == 0o666 & ~umask
  d = atomic.staging_dir(str(tmp_path), '.x-')
  assert os.stat(d).st_mode & 0o777 == 0o777 & ~umask


def test_a_failed_write_inside_names_the_users_path_not_the_staging_folder(tmp_path):
  staged = tmp_path / '.out.partial-123' / 'variables'
  with pytest.raises(OSError) as e:
    with atomic.errors_name(str(tmp_path / 'out')):
      raise OSError(errno.ENOSPC, 'No space left on device', str(staged))
  msg = str(e.value)
  assert f'{tmp_path / "out"}: could not be written (No space left on device)' in msg
  assert '.partial' not in msg and e.value.errno == errno.ENOSPC
  with pytest.raises(OSError, match=r'out: could not be written \(No space left'):
    with atomic.errors_name(str(tmp_path / 'out')):   # orbax wraps it in a ValueError
      raise ValueError('Error writing: [Errno 28] No space left on device: /x/.tmp')
  with pytest.raises(ValueError, match='not an I/O error'):
    with atomic.errors_name(str(tmp_path / 'out')):
      raise ValueError('not an I/O error')
