"""What several sub-commands share: the model a run uses, and the CPU-devices option."""
from __future__ import annotations

import argparse
import os
from typing import Optional

from hvisnet_jax import storage

DEFAULT_CONFIG = 'hvisnet_dla34.py'          # found in configs/ or the installed package


def predictor(args):
  """--checkpoint DIR (an export, or a training workdir: its latest checkpoint) or --model
  NAME (built in: real, the default, or synthetic), with --input-size / --max-detections
  / --crowd-size (given sizes checked against each other before the model loads)."""
  sizes, crowd = getattr(args, 'input_size', None), getattr(args, 'crowd_size', None)
  if sizes:                     # the check configure() makes, before the model loads
    from hvisnet_jax.inference import inputs  # pylint: disable=g-import-not-at-top
    inputs.check_settings(sizes, None, crowd, sizes[0])
  pred = _load_predictor(args)
  pred.configure(input_size=getattr(args, 'input_size', None),
                 max_detections=getattr(args, 'max_detections', None),
                 crowd_size=getattr(args, 'crowd_size', None))
  return pred


def add_input_size(parser) -> None:
  parser.add_argument('--input-size', type=input_sizes, default=None, metavar='PIXELS',
                      help="the short side frames are run at (default: the model's, 352 for "
                      'the built-in real model). Larger finds smaller people, at a cost that '
                      'grows with the pixels: for crowds try 800. Several, ascending (352,800), '
                      'run every frame at each and keep each person from the size that suits '
                      'its height: distant crowds and people close up, at the cost of every '
                      'pass (docs/usage.md)')
  parser.add_argument('--crowd-size', type=natural_int, default=None, metavar='PIXELS',
                      help="a second pass at this short side on the frames where the first "
                      'finds a distant crowd (8+ people under 40 px of its input), merged as several '
                      "sizes are; 0 = never (default: the model's, 800 for the built-in real "
                      'model; none with several --input-size sizes)')
  parser.add_argument('--max-detections', type=positive_int, default=None, metavar='N',
                      help="people kept per frame (default: the model's, 100 for the built-in "
                      'real model); a crowd of more needs more, each slot costs time')


def _load_predictor(args):
  from hvisnet_jax.inference import loading, predictor  # pylint: disable=g-import-not-at-top
  ckpt = getattr(args, 'checkpoint', None)
  if ckpt in loading.BUILT_IN_MODELS and os.path.exists(ckpt):
    raise ValueError(f'--checkpoint {ckpt}: both a built-in model and a folder here; pass '
                     f'./{ckpt} for the folder or --model {ckpt} for the built-in model')
  if ckpt and storage.isdir(storage.join(ckpt, 'checkpoints')):
    from hvisnet_jax.training import trainer  # pylint: disable=g-import-not-at-top
    return trainer.restore_predictor(ckpt)[0]       # in memory: nothing written to disk
  return predictor.Predictor.from_export(ckpt or getattr(args, 'model', None))


def check_writable_file(path: str, option: str) -> None:
  """Before any slow work: `path` can be created or replaced (its folder exists or can be
  made, and is writable) and is not a folder, so a long run never fails at its last step."""
  if os.path.isdir(path):
    raise IsADirectoryError(f'{option} {path}: is a folder; give a file name')
  folder = os.path.dirname(os.path.abspath(path))
  existing = folder
  while not os.path.isdir(existing):
    if os.path.lexists(existing):
      raise NotADirectoryError(f'{option} {path}: {existing} is a file, not a folder')
    existing = os.path.dirname(existing)
  if not os.access(existing, os.W_OK | os.X_OK):
    raise PermissionError(f'{option} {path}: {existing} is not writable; choose another place')


def add_cpu_devices(parser) -> None:
  parser.add_argument('--cpu-devices', type=positive_int, default=None, metavar='N',
                      help='on a CPU, run N frames side by side as N XLA devices (default: 2 '
                           'where 2+ cores are free; 1 = one device). No effect on GPUs/TPUs')


# Every numeric option of every command takes one of these types, each carrying the
# range it accepts (`.range`): argparse refuses anything else at parse time, naming the
# option, and docs/usage.md's table of ranges is checked against them (tests/test_docs.py).

def whole(least: Optional[int] = None, most: Optional[int] = None):
  """argparse type: a whole number in [least, most] (None: unbounded)."""
  text_range = ('a whole number' + (f' >= {least}' if least is not None else '') +
                (f' and <= {most}' if most is not None else ''))

  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f'expected {text_range}, got {text!r}') from None
    if (least is not None and value < least) or (most is not None and value > most):
      raise argparse.ArgumentTypeError(f'expected {text_range}, got {value}')
    return value
  parse.range = text_range
  parse.__name__ = f'whole_{least}'
  return parse


def number(above: float):
  """argparse type: a finite number > above."""
  text_range = f'a number > {above:g}'

  def parse(text: str) -> float:
    try:
      value = float(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f'expected {text_range}, got {text!r}') from None
    if not value > above or value == float('inf'):
      raise argparse.ArgumentTypeError(f'expected {text_range}, got {text}')
    return value
  parse.range = text_range
  parse.__name__ = f'number_above_{above:g}'
  return parse


def share(text: str) -> float:
  """argparse type: a number from 0 to 1 (a share)."""
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected {share.range}, got {text!r}') from None
  if not 0.0 <= value <= 1.0:
    raise argparse.ArgumentTypeError(f'expected {share.range}, got {text}')
  return value


share.range = 'a number from 0 to 1'


natural_int = whole(0)          # counts that may be 0 (0 often means "none" or "all")
positive_int = whole(1)
any_int = whole()


def input_sizes(text: str) -> list:
  """argparse type: frames' short sides in pixels, comma-separated (the check is
  inputs.check_settings', the one the Predictor makes)."""
  from hvisnet_jax.inference import inputs  # pylint: disable=g-import-not-at-top
  try:
    sizes = [int(t.strip()) for t in text.split(',')]
    return inputs.check_settings(sizes, None, None, sizes[0])
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e) if 'expected' in str(e) else
                                     f'expected {input_sizes.range}, got {text!r}') from None


input_sizes.range = 'whole numbers >= 64, comma-separated, ascending'

