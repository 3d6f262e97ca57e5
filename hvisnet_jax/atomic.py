"""Outputs are written whole or not at all: to a temporary name beside the target, then
renamed (atomic on POSIX), so an interrupted run never leaves a half-written file. An
error names the user's path, never the temporary one, and says what to check."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` atomically, creating its folder if needed."""
  parent = os.path.dirname(os.path.abspath(path))
  try:
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f'.{os.path.basename(path)}.',
                               suffix='.partial')
  except OSError as e:
    raise OSError(e.errno, f'{path}: cannot write in {parent} ({e.strerror}); check that the '
                  'folder is writable and the disk has room') from None
  try:
    os.fchmod(fd, 0o666 & ~_umask())          # mkstemp's 0600 -> what open() would give
    with os.fdopen(fd, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  except OSError as e:
    raise OSError(e.errno, f'{path}: could not be written ({e.strerror}); nothing was changed '
                  'there. Check free space and permissions') from None
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_json(path: str, obj: Any, indent: int = None) -> None:
  write_text(path, json.dumps(obj, indent=indent) + ('\n' if indent else ''))


class FolderBusyError(OSError):
  """Another run holds the folder (an OSError, like EBUSY)."""


# What I/O failures say inside libraries that wrap them (orbax, TensorStore) in ValueError.
_IO_WORDS = ('No space left', 'Read-only file system', 'Permission denied', 'Disk quota')


@contextlib.contextmanager
def errors_name(path: str):
  """A write that fails inside (a full disk, a read-only or foreign-owned folder) is
  reported as `path`'s, the user's name for the output, not as the hidden temporary name
  beside it where the work happens; the caller has removed what it staged."""
  try:
    yield
  except FolderBusyError:
    raise
  except (OSError, ValueError) as e:
    if isinstance(e, ValueError) and not any(w in str(e) for w in _IO_WORDS):
      raise
    if isinstance(e, OSError) and e.filename is None and path in str(e):
      raise                                  # already names the user's path
    cause = getattr(e, 'strerror', None) or next((w for w in _IO_WORDS if w in str(e)), str(e))
    raise OSError(getattr(e, 'errno', None) or 0,
                  f'{path}: could not be written ({cause}); nothing was changed there. Check '
                  'free space and permissions') from None


@contextlib.contextmanager
def folder_lock(folder: str, what: str, option: str):
  """Holds FOLDER/.lock while one run writes there; a second run stops at once, naming the
  holder. An flock, which the kernel releases however its holder ends (kill -9 included):
  a stale file is simply taken over, and the holder removes it when it ends. `what` names
  the run ('training run'), `option` the flag that chooses the folder ('--workdir')."""
  import fcntl  # pylint: disable=g-import-not-at-top
  import socket  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, '.lock')
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  held = False
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 4096, 0).decode('utf-8', 'replace').strip() or 'unknown'
      raise FolderBusyError(f'{folder} is in use by another {what} ({holder}); wait for it '
                            f'to finish, stop it, or choose another {option}') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'pid {os.getpid()} on host {socket.gethostname()}, since '
                  f'{time.strftime("%Y-%m-%d %H:%M:%S")}\n'.encode(), 0)
    held = True
    yield
  finally:
    if held:                            # removed while still held: no run can take it between
      with contextlib.suppress(OSError):
        os.remove(path)
    os.close(fd)                        # releases the flock


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def staging_dir(parent: str, prefix: str) -> str:
  """A new hidden folder in `parent` to assemble an output in before renaming it into place.

  mkdtemp makes it private (0700); the output it becomes gets the mode a plain mkdir
  would give (0777 less the umask), so other users and tools can read it as usual.
  """
  with errors_name(parent):
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
  os.chmod(tmp, 0o777 & ~_umask())
  return tmp
