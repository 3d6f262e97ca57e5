"""`hvisnet synth` and `hvisnet build-dataset`: training data, synthetic or from a local copy."""
from __future__ import annotations

import os

from hvisnet_jax.apps.commands import common


def add_parsers(sub) -> None:
  y = sub.add_parser('synth', help='render synthetic human videos with exact ground truth')
  y.add_argument('--out', required=True, help='folder for the videos (JPEGImages/, '
                 'annotations.json, mots/): new, empty or an earlier synth output')
  y.add_argument('--videos', type=common.positive_int, default=4, help='how many videos '
                 '(default 4)')
  y.add_argument('--frames', type=common.positive_int, default=40, help='frames per video '
                 '(default 40)')
  y.add_argument('--size', default='256x320', help='HxW')
  y.add_argument('--preset', choices=['easy', 'crowd'], default='easy', help='easy: a few '
                 'people; crowd: many, overlapping and reappearing (default easy)')
  y.add_argument('--seed', type=common.natural_int, default=0, help='random seed (>= 0); the '
                 'same seed gives the same videos (default 0)')
  y.add_argument('--quiet', action='store_true', help='no progress bar')
  y.set_defaults(func=run_synth)

  g = sub.add_parser('build-dataset', help='YouTube-VIS / COCO / MOTS directory -> TFDS dataset '
                     'with precomputed inner centers')
  g.add_argument('--format', choices=['ytvis', 'coco', 'mots'], required=True, help='the '
                 'source\'s annotation format: YouTube-VIS JSON, COCO JSON or MOTS txt sequences')
  g.add_argument('--source', required=True, help='directory holding annotations and images '
                 '(TFDS manual_dir)')
  g.add_argument('--out', required=True, help='TFDS data_dir to write into')
  g.add_argument('--split', action='append', metavar='NAME=PATH',
                 help='annotation JSON (ytvis/coco) or sequence directory (mots) of a split, '
                 'relative to --source; repeatable. Default: train=annotations.json (mots: '
                 'train=.)')
  g.add_argument('--images', default='', help='image root relative to --source (default: '
                 'JPEGImages/ or the JSON directory)')
  g.add_argument('--categories', default='person', help='comma-separated category names kept')
  g.add_argument('--classes', default='2', help='MOTS class ids kept (10 is always ignore)')
  g.add_argument('--clip-length', type=common.natural_int, default=0,
                 help='cut videos into clips of at most this many frames (mots default 32)')
  g.add_argument('--name', default='person', help='TFDS config name (one per source variant)')
  g.set_defaults(func=run_build_dataset)


def run_synth(args) -> int:
  from hvisnet_jax.synthetic import synth  # pylint: disable=g-import-not-at-top
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  try:
    h, w = (int(x) for x in args.size.lower().split('x'))
  except ValueError:
    raise ValueError(f'--size must be HxW, e.g. 256x320; got {args.size!r}') from None
  with tqdm(total=args.videos, unit='video', disable=args.quiet) as bar:
    stats = synth.write_dataset(args.out, args.videos, args.frames, h, w, args.preset,
                                args.seed, progress=lambda i, n: bar.update(1))
  print(f'wrote {stats["videos"]} videos, {stats["frames"]} frames, {stats["instances"]} '
        f'identities, {stats["masks"]} masks to {os.path.abspath(args.out)}')
  return 0


def run_build_dataset(args) -> int:
  from hvisnet_jax.data_pipelines import builders  # pylint: disable=g-import-not-at-top  (needs tensorflow)
  splits = {}
  for item in args.split or []:
    name, sep, path = item.partition('=')
    if not sep or not name or not path:
      raise ValueError(f'--split must be NAME=PATH (relative to --source), got {item!r}')
    splits[name] = path
  classes = [int(c) for c in args.classes.split(',')]
  b = builders.build(args.format, args.source, args.out, splits=splits or None,
                     images=args.images, categories=args.categories.split(','), classes=classes,
                     clip_length=args.clip_length, config_name=args.name)
  meta = b.info.metadata
  for split, info in sorted(b.info.splits.items()):
    skips = meta.get('skips', {}).get(split) or {}
    print(f'{split}: {info.num_examples} clips, {meta["num_ids"][split]} identities; skipped: '
          + (', '.join(f'{v} {k.replace("_", " ")}' for k, v in sorted(skips.items()))
             or 'nothing'))
  print(f'dataset in {b.data_dir}; train on it with --config.data.source=tfds '
        f'--config.data.tfds_dir={b.data_dir}')
  return 0
