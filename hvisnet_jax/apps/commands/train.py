"""`hvisnet train`: absl + ml_collections flags (--config=..., --config.train.steps=N), as
`python -m hvisnet_jax.main` takes them; checked here before absl and jax start."""
from __future__ import annotations

import os


def add_parsers(sub) -> None:
  sub.add_parser('train', help='train a model: hvisnet train --config CONFIG --workdir DIR '
                 '[--config.FIELD=VALUE ...] (hvisnet train --help)', add_help=False)


HELP = """usage: hvisnet train --config CONFIG --workdir DIR [--config.FIELD=VALUE ...] [options]

Trains a model from an experiment config; resumes from DIR's last checkpoint, and exports
the trained model to DIR/export at the end.

options:
  --config CONFIG       an experiment config file (configs/hvisnet_tiny.py, ...) or a
                        built-in config's name (hvisnet_tiny, hvisnet_mobile, hvisnet_real,
                        hvisnet_dla34); CONFIG:runlocal picks its tiny CPU variant
  --config.FIELD=VALUE  overrides one field of the config, e.g. --config.train.steps=500,
                        --config.train.lr=1e-4, --config.data.scales='(256,320)' (tuples as
                        Python literals); an unknown field or a value of the wrong type is
                        refused in one line, naming the field
  --workdir DIR         checkpoints, metrics.jsonl, TensorBoard events and export/ (a local
                        folder or gs://BUCKET/...): new, empty, or one train made
  --cpu-devices N       on a CPU, split the host into N XLA devices and train data-parallel
                        over them (the batch must divide by N; 2 on 2 cores is faster
                        than 1). No effect on GPUs/TPUs
  --multihost           call jax.distributed.initialize() first (Cloud TPU pods,
                        multi-node GPU)
  --verbose             every library's INFO logs (default: hvisnet's progress and the
                        libraries' warnings)
  -h, --help            this help

example:
  hvisnet train --config configs/hvisnet_tiny.py --workdir runs/tiny --config.train.steps=500
"""


def run(argv) -> int:
  if not argv or any(a in ('-h', '--help', '--helpshort', '--helpfull') for a in argv):
    print(HELP, end='')
    return 0 if argv else 2
  joined = []                                 # --workdir X -> --workdir=X (absl's form)
  for a in argv:
    if joined and joined[-1] in _VALUE_FLAGS:
      joined[-1] = f'{joined[-1]}={a}'
    else:
      joined.append(a)
  train_argv = [_resolve_config_flag(_underscored(a)) for a in joined]
  _check_train_flags(train_argv)
  from hvisnet_jax import logs  # pylint: disable=g-import-not-at-top
  logs.set_verbose('--verbose' in train_argv)
  from absl import app  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import main as train_main  # pylint: disable=g-import-not-at-top
  app.run(train_main.main, argv=['hvisnet train'] + train_argv)
  return 0


_VALUE_FLAGS = ('--config', '--workdir', '--cpu-devices', '--cpu_devices')


def _underscored(arg: str) -> str:
  """--cpu-devices -> --cpu_devices: every hvisnet command takes dashes; absl's flags are
  named with underscores (both spellings work)."""
  if not arg.startswith('--') or arg.startswith('--config'):
    return arg
  name, eq, value = arg.partition('=')
  return '--' + name[2:].replace('-', '_') + eq + value


def _resolve_config_flag(arg: str) -> str:
  """--config=NAME[:arg] names a built-in config when NAME is not a file (installed package)."""
  if not arg.startswith('--config=') or arg.startswith('--config.'):
    return arg
  path, sep, rest = arg[len('--config='):].partition(':')
  if os.path.isfile(path):
    return arg
  from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
  try:
    return f'--config={config_defaults.builtin_config_path(path)}{sep}{rest}'
  except FileNotFoundError:
    return arg                          # absl reports the missing file


def _check_train_flags(argv) -> None:
  """Fails in a line, before absl and jax start, on a missing config or an override of a
  field the config lacks (absl would print three chained tracebacks around the name)."""
  import difflib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
  spec, overrides, values = None, [], {}
  for i, a in enumerate(argv):
    name, eq, value = a.partition('=')
    if name == '--config':
      spec = a[len('--config='):] if eq else (argv[i + 1] if i + 1 < len(argv) else '')
    elif name.startswith('--config.'):
      overrides.append(name[len('--config.'):])
      if eq:
        values[name[len('--config.'):]] = value
  if spec is None:
    return                                  # absl reports the missing required flag
  try:
    cfg = config_defaults.load_config(spec)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'--config={spec}: {e}') from None
  for path in overrides:
    node, walked = cfg, []
    for key in path.split('.'):
      if not hasattr(node, 'keys') or key not in node:
        fields = sorted(node.keys()) if hasattr(node, 'keys') else []
        near = difflib.get_close_matches(key, fields, n=1)
        where = 'config' + ''.join('.' + w for w in walked)
        raise ValueError(f'--config.{path}: {where} has no field {key!r}'
                         + (f' (did you mean {near[0]!r}?)' if near else '')
                         + (f'; its fields: {", ".join(fields)}' if fields else
                            f'; {where} is a value, not a group'))
      node = node[key]
      walked.append(key)
    if path in values:
      _check_value(path, values[path], node)
  for path in POSITIVE_FIELDS:
    text = values.get(path)
    value = _lookup(cfg, path) if text is None else text
    try:
      ok = int(value) >= 1
    except (TypeError, ValueError):
      ok = False
    if not ok:
      raise ValueError(f'--config.{path}={value}: expected a whole number >= 1')


def _check_value(path: str, text: str, current) -> None:
  """An override's value must parse as its field's type (absl would stop with a FATAL)."""
  import ast  # pylint: disable=g-import-not-at-top
  kind = type(current)
  try:
    if kind is bool:
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError
    elif kind in (int, float):
      kind(text) if kind is float else int(text)
    elif kind in (tuple, list):
      if not isinstance(ast.literal_eval(text), (tuple, list)):
        raise ValueError
  except (ValueError, SyntaxError):
    expected = {bool: 'true or false', int: 'a whole number', float: 'a number',
                tuple: "a tuple, e.g. '(1, 2)'", list: "a list, e.g. '[1, 2]'"}[kind]
    raise ValueError(f'--config.{path}={text}: expected {expected} '
                     f'(the config has {current!r})') from None


# Counts that must be at least 1 (a zero batch or step count fails deep inside jax).
POSITIVE_FIELDS = ('train.steps', 'train.batch_size', 'train.log_every', 'train.checkpoint_every',
                   'train.keep_checkpoints')


def _lookup(cfg, path):
  node = cfg
  for key in path.split('.'):
    if not hasattr(node, 'keys') or key not in node:
      return 1                              # a config without the field: nothing to check
    node = node[key]
  return node
