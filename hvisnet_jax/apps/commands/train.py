"""`hvisnet train`: absl + ml_collections flags (--config=..., --config.train.steps=N), as
`python -m hvisnet_jax.main` takes them; checked here before absl and jax start."""
from __future__ import annotations

import os


def add_parsers(sub) -> None:
  sub.add_parser('train', help='train: hvisnet train --config=configs/X.py --workdir=DIR '
                 '[--config.train.steps=N ...]', add_help=False)


def run(argv) -> int:
  train_argv = [_resolve_config_flag(a) for a in argv]
  _check_train_flags(train_argv)
  if '--verbose' not in train_argv:        # TensorFlow's C++ notices (oneDNN, CPU features)
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')
  from absl import app  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import main as train_main  # pylint: disable=g-import-not-at-top
  app.run(train_main.main, argv=['hvisnet train'] + train_argv)
  return 0


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
  for path in POSITIVE_FIELDS:
    text = values.get(path)
    value = _lookup(cfg, path) if text is None else text
    try:
      ok = int(value) >= 1
    except (TypeError, ValueError):
      ok = False
    if not ok:
      raise ValueError(f'--config.{path}={value}: expected a whole number >= 1')


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
