"""`hvisnet track` and `hvisnet demo`: a video in, tracked person masks out."""
from __future__ import annotations

import os
import sys

from hvisnet_jax import atomic
from hvisnet_jax.apps.commands import common


def add_parsers(sub) -> None:
  k = sub.add_parser('track', help='segment and track every person in a video')
  k.add_argument('source', help='video file, image folder, camera index or stream URL')
  k.add_argument('--out', required=True, help='output folder (tracks.txt, results.json, '
                 'stats.json, ...): new, empty or an earlier track output (replaced with --overwrite)')
  k.add_argument('--checkpoint', default=None, help='an export dir or a training workdir '
                 '(default: the built-in model)')
  k.add_argument('--model', choices=['real', 'synthetic'], default=None,
                 help='built-in model (default: real)')
  k.add_argument('--save-video', action='store_true', help='write render.mp4')
  k.add_argument('--save-masks', action='store_true', help='write masks/<id>/<frame>.png')
  k.add_argument('--overwrite', action='store_true', help='replace an earlier run in --out '
                 '(default: refuse)')
  k.add_argument('--carry-masks', action='store_true', help='keep reporting a person missed '
                 'for up to 0.2 s, with the last mask moved to the predicted box')
  k.add_argument('--start', type=common.natural_int, default=0,
                 help='first source frame to track (from 0; default 0)')
  k.add_argument('--frames', type=common.positive_int, default=None,
                 help='track at most this many frames (default: to the end)')
  k.add_argument('--stride', type=common.positive_int, default=1,
                 help='track every Nth source frame (default 1); output frame t is source '
                 'frame start + t * stride')
  k.add_argument('--camera-motion', choices=['on', 'off'], default=None,
                 help='compensate camera motion in the tracker\'s predictions (default: the '
                 'model\'s tracker setting; docs/tracker.md)')
  k.add_argument('--in-flight', type=common.positive_int, default=2,
                 help='batches of frames on the devices at once (default 2)')
  k.add_argument('--quiet', action='store_true', help='no progress bar')
  common.add_input_size(k)
  common.add_cpu_devices(k)
  k.set_defaults(func=run_track)

  d = sub.add_parser('demo', help='a real clip -> the real model + tracker; a synthetic clip '
                     'with ground truth -> metrics')
  d.add_argument('--out', default='demo_out', help='output folder (real/ and synthetic/ runs): '
                 'new, empty or an earlier demo output (default demo_out)')
  d.add_argument('--checkpoint', default=None, help='exported model dir for the real clip')
  d.add_argument('--model', choices=['real', 'synthetic'], default=None,
                 help='built-in model for the real clip (default: real)')
  d.add_argument('--frames', type=common.positive_int, default=48, help='frames of the '
                 'synthetic clip (default 48)')
  d.add_argument('--preset', choices=['easy', 'crowd'], default='easy', help='the synthetic '
                 'clip: easy (a few people) or crowd (default easy)')
  d.add_argument('--seed', type=common.natural_int, default=7, help='the synthetic clip\'s seed '
                 '(default 7)')
  d.add_argument('--quiet', action='store_true', help='no progress bar')
  d.add_argument('--overwrite', action='store_true', help='replace an earlier demo in --out')
  common.add_input_size(d)
  common.add_cpu_devices(d)
  d.set_defaults(func=run_demo)


def run_track(args) -> int:
  from hvisnet_jax import video  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  source = int(args.source) if args.source.isdigit() else args.source
  video.FrameReader(source, start=args.start).close()  # inputs first: a bad one fails fast,
  atomic.check_output_dir(args.out, args.overwrite)  # not after the model is built
  res = app.track_to_dir(source, common.predictor(args), args.out, save_video=args.save_video,
                         save_masks=args.save_masks, progress=not args.quiet,
                         overwrite=args.overwrite, carry_masks=args.carry_masks,
                         start=args.start, max_frames=args.frames, stride=args.stride,
                         in_flight=args.in_flight,
                         camera_motion=None if args.camera_motion is None
                         else args.camera_motion == 'on')
  print(f'{res["frames"]} frames, {res["identities"]} identities; {rates(res)}; outputs in '
        f'{os.path.abspath(args.out)}')
  if res.get('dropped_frames'):
    print(f'{res["dropped_frames"]} frames of the live source arrived while the model was '
          'busy and were skipped (a camera is never made to wait)')
  if res.get('crowd_pass_frames'):
    print(f'the crowd pass (short side {res["crowd_size"]}) ran on {res["crowd_pass_frames"]} '
          'frames with a distant crowd; --crowd-size 0 runs one size on every frame')
  report_source_problems(args.source, res)
  return 0


def rates(stats) -> str:
  """The steady rate apart from the start-up (compilation for the frame size, which the
  compilation cache shortens on a second run, and the first frame)."""
  if stats['frames'] < 2:
    return f'{stats["startup_s"]:.1f} s for its one frame (start-up included)'
  return (f'{stats["steady_fps"]:.1f} frames/s steady after {stats["startup_s"]:.1f} s of '
          'start-up (compiling for the frame size, the first frame)')


def report_source_problems(source, stats) -> None:
  """What the reader could not deliver as it is, on stderr (the run's stats.json too)."""
  notes = []
  if stats['stopped_early']:
    notes.append(f'the video declares {stats["frames_declared"]} frames but reading stopped '
                 f'after {stats["frames_read"]}: the rest of the file was never read '
                 '(truncated or damaged?)')
  if stats['failed_frames']:
    f = stats['failed_frames']
    notes.append(f'{len(f)} frames failed to decode and have no output (frames '
                 f'{", ".join(map(str, f[:10]))}{" ..." if len(f) > 10 else ""})')
  if stats['resized_frames']:
    r = stats['resized_frames']
    notes.append(f'{len(r)} frames had another size and were resized to the first frame\'s '
                 f'(frames {", ".join(map(str, r[:10]))}{" ..." if len(r) > 10 else ""})')
  for n in notes:
    print(f'warning: {source}: {n}', file=sys.stderr)


def run_demo(args) -> int:
  """Synthetic video -> default model + tracker -> MOTS metrics against its ground truth."""
  from hvisnet_jax import evaluation  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import demo as demo_app  # pylint: disable=g-import-not-at-top
  model = args.checkpoint or args.model or 'real'
  atomic.check_output_dir(args.out, args.overwrite, 'demo')    # before the models load
  res = demo_app.demo(args.out, frames=args.frames, seed=args.seed, preset=args.preset,
                 predictor=common.predictor(args), progress=not args.quiet,
                 overwrite=args.overwrite)
  r = res['real']
  print(f'real clip ({os.path.basename(r["clip"])}, model {model}): {r["frames"]} frames, '
        f'{r["identities"]} identities; {rates(r)} -> '
        f'{os.path.join(os.path.abspath(args.out), "real", "render.mp4")}')
  print('synthetic clip with exact ground truth (model synthetic):')
  print(evaluation.format_table(res['metrics']))
  s = res['stats']
  print(f'{s["frames"]} frames; {rates(s)} (tracker '
        f'{s["tracker_ms_per_frame"]:.2f} ms/frame); outputs in {os.path.abspath(args.out)}')
  return 0
