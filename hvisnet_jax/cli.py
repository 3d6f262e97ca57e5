"""The `hvisnet` command. Each sub-command's parser and code live in one module of
`hvisnet_jax/apps/commands/`; this module only assembles them and runs one: signals,
the compilation cache and the one-line error a user sees."""
from __future__ import annotations

import argparse
import os
import signal
import sys

from hvisnet_jax.apps.commands import (bench, data, evaluate, export, extract, teacher, track,
                                       train)
from hvisnet_jax import logs
from hvisnet_jax.interop import packaged_files

COMMANDS = (track, extract, evaluate, data, teacher, train, export, bench)


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog='hvisnet', description=__doc__.split('.')[0] + '.')
  sub = p.add_subparsers(dest='command', required=True)
  for module in COMMANDS:
    module.add_parsers(sub)
  for name, parser in sub.choices.items():
    if name != 'train':                     # train parses its own flags (absl)
      parser.add_argument('--verbose', action='store_true',
                          help="the libraries' own notes too (TensorFlow, TFDS, orbax)")
  return p


def _use_compilation_cache() -> None:
  """XLA's persistent compilation cache under $HVISNET_CACHE/jax: a second run of a command
  loads the compiled model instead of compiling it again. JAX_COMPILATION_CACHE_DIR, when
  set, wins (an empty value turns the cache off)."""
  if 'JAX_COMPILATION_CACHE_DIR' in os.environ:
    return
  import jax  # pylint: disable=g-import-not-at-top
  path = os.path.join(packaged_files.cache_root(), 'jax')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return                                  # an unwritable cache only costs time
  jax.config.update('jax_compilation_cache_dir', path)


_MODEL_COMMANDS = ('track', 'demo', 'extract-person', 'train')

# The options that may name an object store (gs://...), per command; `hvisnet train
# --workdir` is checked in hvisnet_jax/main.py.
_REMOTE_OPTIONS = {'export': ('workdir', 'out'), 'average': ('first', 'second', 'out'),
                   'build-dataset': ('out',), 'pseudo-label': ('out',)}
_REMOTE_MODEL_OPTIONS = ('model', 'checkpoint')


def _check_locations(args) -> None:
  """Every gs:// path given: its bucket reachable before any model loads, and only where the
  command can write or read it (elsewhere a local folder named 'gs:' would appear)."""
  from hvisnet_jax import storage  # pylint: disable=g-import-not-at-top
  allowed = _REMOTE_OPTIONS.get(args.command, ()) + _REMOTE_MODEL_OPTIONS
  for name, value in sorted(vars(args).items()):
    if not isinstance(value, str) or not storage.is_remote(value):
      continue
    option = (name if (args.command, name) in (('export', 'workdir'), ('average', 'first'),
                                               ('average', 'second'))
              else '--' + name.replace('_', '-'))
    if name not in allowed:
      raise ValueError(f'{option} {value}: hvisnet {args.command} writes and reads this '
                       'locally; give a local path (and copy to the bucket afterwards, e.g. '
                       'gcloud storage cp -r)')
    storage.check_reachable(value, option)


def _raise_keyboard_interrupt(signum, frame):
  """SIGTERM -> KeyboardInterrupt, so the clean-up of Ctrl-C runs.

  Python swallows an exception raised inside a gc callback (jax registers one) or a
  finalizer; a signal that lands there is sent again a moment later instead.
  """
  import gc  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  code = getattr(frame, 'f_code', None)
  if code is not None and (code.co_name == '__del__' or any(
      getattr(cb, '__code__', None) is code for cb in gc.callbacks)):
    threading.Timer(0.1, os.kill, (os.getpid(), signum)).start()
    return
  raise KeyboardInterrupt(f'signal {signum}')


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  # SIGTERM (`timeout`, a scheduler) unwinds like Ctrl-C: the same clean-up runs.
  signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
  command = argv[0] if argv else None
  try:
    if command == 'train':
      if not {'-h', '--help'} & set(argv):
        _use_compilation_cache()
      return train.run(argv[1:])
    args = build_parser().parse_args(argv)          # --help ends here, before jax loads
    logs.set_verbose(args.verbose)
    if command in _MODEL_COMMANDS:
      _use_compilation_cache()
    _check_locations(args)
    if hasattr(args, 'cpu_devices'):       # before JAX starts: it fixes its devices then
      from hvisnet_jax.inference import devices  # pylint: disable=g-import-not-at-top
      devices.use_cpu_devices(args.cpu_devices)
    return args.func(args)
  except (OSError, ValueError,  # FileNotFoundError, PermissionError and our input errors
          packaged_files.TeacherFileError) as e:
    print(f'hvisnet {command}: error: {e}', file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f'hvisnet {command}: interrupted; no partial output was left behind',
          file=sys.stderr)
    return 130


if __name__ == '__main__':
  sys.exit(main())
