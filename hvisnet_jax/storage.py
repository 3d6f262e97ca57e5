"""Locations a user names: a local path or an object-store URI (gs://bucket/...).

Local paths keep the atomic writes of `atomic.py`. A URI goes through `etils.epath` (what
orbax and TFDS use), whose gs:// backend here is fsspec/gcsfs: the same client on a Cloud
TPU VM as against the GCS emulator the tests start, so what runs is what was tested. On an
object store there is no rename: each object is written whole (an upload becomes visible
complete or not at all), and a folder of several objects is uploaded with its marker file
(config.json) last, so a half-uploaded folder is never taken for a finished one.

STORAGE_EMULATOR_HOST (a local GCS emulator) also points TensorStore (orbax's array store)
at it, unless TENSORSTORE_GCS_HTTP_URL says otherwise.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from typing import Iterable, List

from hvisnet_jax import atomic

# gs:// through gcsfs rather than TensorFlow's GCS client, whose endpoint cannot be pointed
# at an emulator (and TensorFlow is optional outside the data pipelines). EPATH_USE_TF=true
# restores epath's default.
os.environ.setdefault('EPATH_USE_TF', 'false')
try:
  # Listings are read fresh: a run's own checks (is there a marker, a checkpoint, an
  # export?) must see what another process wrote a moment ago.
  import fsspec  # pylint: disable=g-import-not-at-top
  fsspec.config.conf.setdefault('gs', {}).setdefault('use_listings_cache', False)
except ImportError:
  pass
if os.environ.get('STORAGE_EMULATOR_HOST'):
  _host = os.environ['STORAGE_EMULATOR_HOST']
  os.environ.setdefault('TENSORSTORE_GCS_HTTP_URL', _host if '://' in _host else f'http://{_host}')


class _DropBucketTypeNotice(logging.Filter):
  """gcsfs warns on every new path that it cannot ask the bucket's type without default
  credentials (an emulator, or service-account-less tests) and then uses plain GCS, which
  is what hvisnet needs: not the user's business."""

  def filter(self, record):
    return 'Could not determine bucket type' not in record.getMessage()


logging.getLogger('gcsfs').addFilter(_DropBucketTypeNotice())


class StorageError(OSError):
  """An object store that cannot be reached or used; the message says what to set."""


def is_remote(path) -> bool:
  """True for an object-store URI (gs://, s3://, ...); file:// and plain paths are local."""
  text = os.fspath(path)
  return '://' in text and not text.startswith('file://')


def location(path) -> str:
  """The canonical form of a user's path: absolute if local, the URI itself if remote."""
  text = os.fspath(path)
  if is_remote(text):
    return text.rstrip('/')
  return os.path.abspath(text[len('file://'):] if text.startswith('file://') else text)


def join(base, *parts: str) -> str:
  base = location(base)
  if is_remote(base):
    return '/'.join([base] + [p.strip('/') for p in parts])
  return os.path.join(base, *parts)


def _epath(path):
  from etils import epath  # pylint: disable=g-import-not-at-top
  return epath.Path(location(path))


def exists(path) -> bool:
  return _epath(path).exists() if is_remote(path) else os.path.lexists(path)


def isdir(path) -> bool:
  """A local directory, or a remote prefix that holds at least one object."""
  if not is_remote(path):
    return os.path.isdir(path)
  p = _epath(path)
  return p.is_dir() and any(True for _ in p.iterdir())


def isfile(path) -> bool:
  return _epath(path).is_file() if is_remote(path) else os.path.isfile(path)


def listdir(path) -> List[str]:
  if not is_remote(path):
    return os.listdir(path)
  return sorted(p.name for p in _epath(path).iterdir())


def read_text(path) -> str:
  if not is_remote(path):
    with open(path) as f:
      return f.read()
  return _epath(path).read_text()


def write_text(path, text: str) -> None:
  """Writes one file whole: locally by rename (atomic.write_text), remotely as one object."""
  if not is_remote(path):
    atomic.write_text(path, text)
    return
  try:
    _epath(path).write_text(text)
  except Exception as e:  # pylint: disable=broad-except
    raise StorageError(f'{location(path)}: could not be written ({_first_line(e)})') from None


def makedirs(path) -> None:
  """A local folder; nothing on an object store, where a prefix exists once it holds an
  object."""
  if not is_remote(path):
    os.makedirs(path, exist_ok=True)


def remove(path) -> None:
  if is_remote(path):
    _epath(path).unlink(missing_ok=True)
  elif os.path.lexists(path):
    os.remove(path)


def _walk_local(root: str) -> Iterable[str]:
  for folder, _, files in os.walk(root):
    for name in sorted(files):
      yield os.path.relpath(os.path.join(folder, name), root)


def walk(root) -> List[str]:
  """Every file below `root`, as paths relative to it ('/'-separated)."""
  if not is_remote(root):
    return [p.replace(os.sep, '/') for p in _walk_local(root)]
  if not _epath(root).is_dir():
    return []
  base, out, todo = _epath(root), [], [_epath(root)]
  while todo:
    for p in todo.pop().iterdir():
      if p.is_dir():
        todo.append(p)
      else:
        out.append(str(p)[len(str(base)) + 1:])
  return sorted(out)


def upload_tree(local_dir: str, remote_dir: str, last: Iterable[str] = ('config.json',)) -> None:
  """Copies a local folder to a remote prefix, each file as one object; the files named in
  `last` go last, so that their presence means the rest arrived."""
  last = tuple(last)
  files = [f for f in walk(local_dir) if f not in last] + [f for f in last
                                                           if os.path.isfile(os.path.join(local_dir, f))]
  dest = _epath(remote_dir)
  try:
    for rel in files:
      with open(os.path.join(local_dir, rel), 'rb') as f:
        (dest / rel).write_bytes(f.read())
  except Exception as e:  # pylint: disable=broad-except
    raise StorageError(f'{location(remote_dir)}: upload failed at {rel} ({_first_line(e)}); '
                       'what was uploaded is incomplete: run the command again') from None


def download_tree(remote_dir: str, local_dir: str) -> None:
  """Copies every object below a remote prefix into a local folder."""
  src = _epath(remote_dir)
  for rel in walk(remote_dir):
    target = os.path.join(local_dir, *rel.split('/'))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, 'wb') as f:
      f.write((src / rel).read_bytes())


def remove_files(root, rels: Iterable[str]) -> None:
  """Deletes the named files below `root` (only those: never a whole prefix blindly)."""
  for rel in rels:
    if is_remote(root):
      (_epath(root) / rel).unlink(missing_ok=True)
    else:
      target = os.path.join(root, rel)
      if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
      elif os.path.lexists(target):
        os.remove(target)


CHECK_TIMEOUT_S = 15          # HVISNET_GCS_CHECK_TIMEOUT_S overrides (a slow link, a test)


def _check_timeout_s() -> float:
  value = os.environ.get('HVISNET_GCS_CHECK_TIMEOUT_S', '')
  if not value:
    return CHECK_TIMEOUT_S
  try:
    seconds = float(value)
  except ValueError:
    seconds = -1.0
  if not 0 < seconds <= 3600:             # (threading's join refuses an infinite wait)
    raise StorageError(f'HVISNET_GCS_CHECK_TIMEOUT_S={value!r}: expected a number of '
                       'seconds above 0, at most 3600')
  return seconds


def check_reachable(path, option: str) -> None:
  """For a gs:// path: the bucket exists and can be listed with the credentials at hand,
  checked before any model loads; a StorageError names the bucket and what to set. Local
  paths and other schemes pass (their own errors name them)."""
  text = location(path)
  if not text.startswith('gs://'):
    return
  bucket = text[len('gs://'):].split('/', 1)[0]
  if not bucket:
    raise StorageError(f'{option} {text}: no bucket name (expected gs://BUCKET/PATH)')
  emulator = os.environ.get('STORAGE_EMULATOR_HOST')
  where = (f'the GCS emulator at STORAGE_EMULATOR_HOST={emulator}' if emulator else
           'Google Cloud Storage')
  try:
    import gcsfs  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise StorageError(f'{option} {text}: gs:// needs the gcsfs package '
                       '(pip install -r requirements.txt installs it)') from None
  log = logging.getLogger('gcsfs')
  level = log.level
  log.setLevel(logging.CRITICAL)        # its retries log a traceback each
  answer = {}

  def ask():
    try:
      answer['found'] = gcsfs.GCSFileSystem().exists(bucket)
    except Exception as e:  # pylint: disable=broad-except
      answer['error'] = e

  # gcsfs retries a failed connection six times with back-off (over a minute): a bucket
  # that does not answer in the check's timeout is reported as unreachable instead.
  timeout_s = _check_timeout_s()
  asker = threading.Thread(target=ask, daemon=True)
  asker.start()
  asker.join(timeout_s)
  log.setLevel(level)
  if 'found' not in answer:
    error = answer.get('error')
    reason = _first_line(error) if error else f'no answer in {timeout_s:g} s'
    hint = ('check that the emulator is running' if emulator else
            'on a Cloud TPU / GCE VM the service account needs Storage access; elsewhere run '
            '`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS')
    raise StorageError(f'{option} {text}: bucket {bucket} on {where} cannot be reached '
                       f'({reason}); {hint}')
  found = answer['found']
  if not found:
    raise StorageError(f'{option} {text}: bucket {bucket} does not exist on {where} (or these '
                       'credentials cannot see it); create it (gcloud storage buckets create '
                       f'gs://{bucket}) or name another')


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return f'{type(e).__name__}: {text[0][:200]}' if text else type(e).__name__
