"""`hvisnet extract-person`: one person's masks, guided by a world trajectory."""
from __future__ import annotations

import os

from hvisnet_jax.apps.commands import common


def add_parsers(sub) -> None:
  x = sub.add_parser('extract-person', help="one person's masks, guided by a world trajectory")
  x.add_argument('source', help='video file or image folder')
  x.add_argument('--trajectories', required=True, help='ETH/UCY obsmat.txt')
  x.add_argument('--homography', required=True, help='H.txt: image pixels -> world metres')
  x.add_argument('--pid', type=common.natural_int, required=True, help='the person id in '
                 '--trajectories to extract')
  x.add_argument('--out', required=True, help='output folder: new, empty or an earlier '
                 'extract-person output')
  x.add_argument('--frame-offset', type=common.any_int, default=0,
                 help='obsmat frame number of the first video frame')
  x.add_argument('--frame-step', type=common.positive_int, default=1, help='obsmat frames per video frame')
  x.add_argument('--max-distance', type=common.number(0), default=None,
                 help='pixels between the trajectory and a track foot point (default: '
                      '0.5 x box height)')
  x.add_argument('--checkpoint', default=None, help='an export dir or a training workdir '
                 '(default: the built-in real model)')
  x.add_argument('--overwrite', action='store_true', help='replace an earlier run in --out')
  x.add_argument('--model', choices=['real', 'synthetic'], default=None,
                 help='built-in model (default: real)')
  x.add_argument('--quiet', action='store_true', help='no progress bar')
  common.add_input_size(x)
  common.add_cpu_devices(x)
  x.set_defaults(func=run)


def run(args) -> int:
  from hvisnet_jax.apps import extract  # pylint: disable=g-import-not-at-top
  res = extract.extract_person_to_dir(
      args.source, lambda: common.predictor(args), args.trajectories, args.homography, args.pid,
      args.out, frame_offset=args.frame_offset, frame_step=args.frame_step,
      max_distance=args.max_distance, progress=not args.quiet, overwrite=args.overwrite)
  beyond = res['frames_on_trajectory_beyond_video']
  print(f'person {args.pid}: masks in {res["frames_with_mask"]} of {res["frames_on_trajectory"]} '
        f'video frames on its trajectory'
        f'{f" ({beyond} more trajectory frames lie beyond the video)" if beyond else ""}; '
        f'outputs in {os.path.abspath(args.out)}')
  return 0
