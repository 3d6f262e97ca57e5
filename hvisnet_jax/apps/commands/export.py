"""`hvisnet export`, `hvisnet average` and `hvisnet convert-torch`: weights into the export
layout."""
from __future__ import annotations

import os

from hvisnet_jax import atomic
from hvisnet_jax.apps.commands import common


def add_parsers(sub) -> None:
  x2 = sub.add_parser('export', help='a training workdir\'s latest checkpoint -> an export '
                      '(config.json + variables/) for track, demo and eval')
  x2.add_argument('workdir', help='a training workdir (hvisnet train --workdir); its latest '
                  'checkpoint is exported')
  x2.add_argument('--out', required=True, help='the export folder: new, empty or an earlier '
                  'export (replaced whole)')
  x2.add_argument('--dtype', choices=['float32', 'bfloat16'], default='float32',
                  help='storage dtype of the exported variables (bfloat16: half the size)')
  x2.set_defaults(func=run_export)

  a = sub.add_parser('average', help='two exports of one architecture -> an export of their '
                     'weighted mean weights (a model and its fine-tuning: WiSE-FT)')
  a.add_argument('first', help="an export folder or a built-in model's name ('real'); its "
                 'config (inference, tracker) is the output\'s')
  a.add_argument('second', help='an export of the same model config (e.g. a fine-tuning of '
                 'the first)')
  a.add_argument('--weight', type=common.share, required=True,
                 help="the second's share of each weight, in [0, 1] (0.5: the midpoint)")
  a.add_argument('--out', required=True, help='the export folder: new, empty or an earlier '
                 'export (replaced whole); not either input')
  a.add_argument('--dtype', choices=['float32', 'bfloat16'], default='float32',
                 help='storage dtype of the exported variables (bfloat16: half the size)')
  a.set_defaults(func=run_average)

  c = sub.add_parser('convert-torch', help='import a PyTorch DLA-34 state_dict as Flax params')
  c.add_argument('state_dict', help='.pth/.pt (needs torch) or .npz state_dict, ucbdrive/timm '
                 'dla34 naming')
  c.add_argument('--out', required=True, help='output orbax checkpoint directory: new, '
                 'empty or an earlier convert-torch output (replaced with --overwrite)')
  c.add_argument('--overwrite', action='store_true',
                 help='replace an earlier convert-torch output in --out')
  c.add_argument('--config', default=common.DEFAULT_CONFIG, help='config file[:arg] giving the '
                 'backbone')
  c.set_defaults(func=run_convert_torch)


def run_export(args) -> int:
  from hvisnet_jax.training import trainer  # pylint: disable=g-import-not-at-top
  step = trainer.export_workdir(args.workdir, args.out, dtype=args.dtype)
  from hvisnet_jax import storage  # pylint: disable=g-import-not-at-top
  print(f'exported step {step} of {args.workdir} to {storage.location(args.out)}; use it with '
        f'hvisnet track VIDEO --checkpoint {args.out}')
  return 0


def run_average(args) -> int:
  from hvisnet_jax.inference import loading  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import storage  # pylint: disable=g-import-not-at-top
  def where(path):                  # a bucket's path as written, a local one resolved
    return path.rstrip('/') if storage.is_remote(path) else os.path.realpath(path)
  for name in (args.first, args.second):
    if where(args.out) == where(loading.model_dir(name)):
      raise ValueError(f'--out {args.out}: is the input {name}; choose another --out')
  averaged = loading.average_exports(args.first, args.second, args.weight)
  averaged.export(args.out, dtype=args.dtype)
  print(f'wrote the mean of {args.first} ({1 - args.weight:g}) and {args.second} '
        f'({args.weight:g}) to {args.out}')
  return 0


def run_convert_torch(args) -> int:
  from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import export as export_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.interop import convert_torch  # pylint: disable=g-import-not-at-top
  _check_convert_out(args)
  cfg = config_defaults.load_config(args.config).model
  sd = convert_torch.load_state_dict(args.state_dict)
  try:
    backbone = convert_torch.backbone_variables(sd, cfg.backbone.levels, cfg.backbone.channels)
  except convert_torch.ConversionError as e:
    raise convert_torch.ConversionError(f'{args.state_dict}: {e}') from None
  variables = {col: {'backbone': backbone[col]} for col in ('params', 'batch_stats')}
  export_lib.save_variables(args.out, variables)
  atomic.write_json(os.path.join(args.out, CONVERTED), dict(source=os.path.abspath(
      args.state_dict), config=args.config))
  n = sum(v.size for v in _leaves(backbone['params']))
  print(f'wrote {n:,} backbone parameters from {args.state_dict} to {os.path.abspath(args.out)}')
  return 0


CONVERTED = 'converted_from.json'        # marks a convert-torch output (recognised later)


def _check_convert_out(args) -> None:
  """--out is new, empty, or convert-torch's own earlier output (with --overwrite); never
  a folder inside an export or a training workdir, never the input."""
  out = os.path.abspath(args.out)
  if out == os.path.abspath(args.state_dict):
    raise ValueError(f'--out {args.out}: is the input state_dict; choose another --out')
  parent = out
  while parent != os.path.dirname(parent):
    parent = os.path.dirname(parent)
    if (os.path.isfile(os.path.join(parent, 'config.json')) and
        (os.path.isdir(os.path.join(parent, 'variables')) or
         os.path.isdir(os.path.join(parent, 'checkpoints')))):
      raise FileExistsError(f'--out {args.out}: is inside {parent}, an hvisnet export or '
                            'training workdir, whose weights it would replace; choose a '
                            'folder of its own')
  if os.path.isdir(out) and os.listdir(out):
    if not os.path.isfile(os.path.join(out, CONVERTED)):
      raise FileExistsError(f'--out {args.out}: holds files that convert-torch did not write; '
                            'choose a new or empty --out')
    if not args.overwrite:
      raise FileExistsError(f'--out {args.out}: holds an earlier convert-torch output; pass '
                            '--overwrite to replace it')
  elif os.path.lexists(out) and not os.path.isdir(out):
    raise FileExistsError(f'--out {args.out}: exists and is not a folder')


def _leaves(tree):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.leaves(tree)
