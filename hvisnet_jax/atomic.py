"""Outputs are written whole or not at all: to a temporary name beside the target, then
renamed (atomic on POSIX), so an interrupted run never leaves a half-written file."""
from __future__ import annotations

import json
import os
from typing import Any


def write_text(path: str, text: str) -> None:
  tmp = f'{path}.tmp{os.getpid()}'
  try:
    with open(tmp, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_json(path: str, obj: Any, indent: int = None) -> None:
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  write_text(path, json.dumps(obj, indent=indent) + ('\n' if indent else ''))
