"""Outputs are written whole or not at all: to a temporary name beside the target, then
renamed (atomic on POSIX), so an interrupted run never leaves a half-written file. An
error names the user's path, never the temporary one, and says what to check."""
from __future__ import annotations

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
