"""Outputs are written whole or not at all: to a temporary name beside the target, then
renamed (atomic on POSIX), so an interrupted run never leaves a half-written file. An
error names the user's path, never the temporary one, and says what to check."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Optional


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


# ---------------------------------------------------------------- staged run outputs
# A command's results go to --out/.partial-PID-* and move into place when the run
# completes; an earlier run in --out is recognised by its entries (run_kind).

# What hvisnet runs write into --out: an earlier run is exactly these entries.
RUN_OUTPUTS = ('tracks.txt', 'results.json', 'stats.json', 'render.mp4', 'masks', 'real',
               'synthetic', 'summary.json')
_PARTIAL = '.partial-'


def _is_run_output(name: str) -> bool:
  return name in RUN_OUTPUTS or (name.startswith('person') and name.endswith('.txt'))


def run_kind(entries) -> Optional[str]:
  """Which command wrote a folder of run outputs: 'track', 'demo' or 'extract-person'."""
  entries = set(entries)
  if entries and entries <= {'real', 'synthetic'}:
    return 'demo'
  if 'summary.json' in entries:
    return 'extract-person'
  if entries & {'tracks.txt', 'stats.json', 'results.json'}:
    return 'track'
  return None


def check_output_dir(out_dir: str, overwrite: bool = False, kind: str = 'track') -> None:
  """Before any slow work: --out can be written, and holds no earlier run unless `overwrite`
  (then that run is replaced whole) and that run is this command's own (`kind`). Files
  that no hvisnet run writes, and other commands' outputs, are never replaced."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise FileExistsError(f'{out_dir}: exists and is not a folder; choose another --out')
  if os.path.isdir(out_dir):
    entries = sorted(e for e in os.listdir(out_dir) if not e.startswith('.'))
    foreign = [e for e in entries if not _is_run_output(e)]
    if foreign:
      raise FileExistsError(f'{out_dir}: holds files that are not an hvisnet run '
                            f'({", ".join(foreign[:5])}); choose a new or empty --out')
    other = run_kind(entries)
    if entries and other != kind:
      raise FileExistsError(f'{out_dir}: holds the output of hvisnet {other or "runs"} '
                            f'({", ".join(entries[:5])}); hvisnet {kind} writes only into a '
                            f'new or empty folder or its own earlier output: choose another '
                            '--out')
    if entries and not overwrite:
      raise FileExistsError(f'{out_dir}: holds an earlier run ({", ".join(entries)}); pass '
                            '--overwrite to replace it, or choose another --out')
    probe = out_dir
  else:
    probe = os.path.dirname(os.path.abspath(out_dir))
    while not os.path.exists(probe):
      probe = os.path.dirname(probe)
  try:                      # a real write: permission bits say nothing to root or on a
    os.rmdir(tempfile.mkdtemp(prefix=_PARTIAL, dir=probe))   # read-only mount
  except OSError as e:
    raise PermissionError(f'{out_dir}: cannot be written ({probe}: {e.strerror})') from None


def _remove_stale_partials(out_dir: str) -> None:
  """Removes .partial-PID-* folders of runs that were killed (their PID is gone)."""
  if not os.path.isdir(out_dir):
    return
  for e in os.listdir(out_dir):
    if not e.startswith(_PARTIAL):
      continue
    pid = e[len(_PARTIAL):].split('-')[0]
    if pid.isdigit() and _alive(int(pid)):
      continue
    shutil.rmtree(os.path.join(out_dir, e), ignore_errors=True)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:                 # someone else's process
    pass
  return True


@contextlib.contextmanager
def staged_output(out_dir: str, overwrite: bool = False, kind: str = 'track'):
  """Yields a temporary folder inside out_dir; only if the block completes does the run in
  it replace out_dir's earlier run, whole (no file of an older run is left beside the new
  ones). An interrupted or failed run leaves no complete-looking files behind, and no
  out_dir it had to create."""
  check_output_dir(out_dir, overwrite, kind)
  created = not os.path.isdir(out_dir)
  try:
    # One run at a time per --out: a second one stops at once (two runs finishing would
    # replace each other's results silently).
    with folder_lock(out_dir, 'hvisnet run writing there', '--out'):
      check_output_dir(out_dir, overwrite, kind)    # as it is now that we hold it
      _remove_stale_partials(out_dir)
      tmp = tempfile.mkdtemp(prefix=f'{_PARTIAL}{os.getpid()}-', dir=out_dir)
      try:
        yield tmp
        _swap_in(out_dir, tmp)
      finally:
        shutil.rmtree(tmp, ignore_errors=True)
  except BaseException:
    if created and os.path.isdir(out_dir) and set(os.listdir(out_dir)) <= {'.lock'}:
      shutil.rmtree(out_dir, ignore_errors=True)
    raise


def _swap_in(out_dir: str, tmp: str) -> None:
  """Replaces out_dir's earlier run by tmp's entries, whole: the old entries are renamed
  aside first (a symlink moves as a link, nothing it points to is touched), then the new
  ones in; if that fails the old ones go back."""
  aside = tempfile.mkdtemp(prefix=f'{_PARTIAL}{os.getpid()}-old-', dir=out_dir)
  moved, placed = [], []
  try:
    for entry in os.listdir(out_dir):
      if _is_run_output(entry):
        os.replace(os.path.join(out_dir, entry), os.path.join(aside, entry))
        moved.append(entry)
    for entry in os.listdir(tmp):
      os.replace(os.path.join(tmp, entry), os.path.join(out_dir, entry))
      placed.append(entry)
  except BaseException:
    for entry in placed:
      os.replace(os.path.join(out_dir, entry), os.path.join(tmp, entry))
    for entry in moved:
      os.replace(os.path.join(aside, entry), os.path.join(out_dir, entry))
    os.rmdir(aside)
    raise
  shutil.rmtree(aside, ignore_errors=True)     # unlinks symlinks, never follows them
