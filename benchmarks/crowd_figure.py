"""Side by side: what each model or setting masks on one crowd image, its heads marked.

  python benchmarks/crowd_figure.py --models real real@352+800x300 \
      --image ../shared/data/real/crowd_mall/images/seq_000801.jpg \
      --out benchmarks/results/two_sizes_mall.jpg

MODEL as in people_benchmark.py. People scored >= 0.25 are masked (one colour and number
each) and boxed; where the image's folder has a heads.json beside it (the crowd sets), the
annotated heads are red dots and each panel says how many its people claim (the
benchmark's head recall rule).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import people_benchmark as pb  # pylint: disable=wrong-import-position
from hvisnet_jax import video  # pylint: disable=wrong-import-position


def panel(rgb, spec, heads, min_score):
  boxes, scores, label = pb.make_segmenter(spec)(rgb)
  people = pb._instances(boxes, scores, label, min_score)  # pylint: disable=protected-access
  id_map = np.zeros(rgb.shape[:2], np.int32)
  for i, (_, m) in enumerate(people):
    id_map[m & (id_map == 0)] = i + 1
  out = video.render(rgb, id_map)
  mask_boxes = [pb._box_of(m) for _, m in people]  # pylint: disable=protected-access
  for x1, y1, x2, y2 in mask_boxes:
    cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), (0, 255, 0), 1)
  text = f'{spec}: {len(people)} people'
  if heads is not None:
    for x, y in heads:
      cv2.circle(out, (int(x), int(y)), 3, (255, 0, 0), -1)
    text += f', {pb.head_recall(mask_boxes, heads)} of {len(heads)} heads'
  (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
  cv2.rectangle(out, (0, 0), (tw + 12, th + 12), (0, 0, 0), -1)
  cv2.putText(out, text, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
              cv2.LINE_AA)
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--models', nargs='+', default=['real', 'real@352+800x300'])
  p.add_argument('--image', required=True)
  p.add_argument('--min-score', type=float, default=0.25)
  p.add_argument('--out', required=True, help='.jpg or .png')
  a = p.parse_args(argv)
  rgb = pb._rgb(a.image)  # pylint: disable=protected-access
  heads_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.image))),
                            'heads.json')
  heads = None
  if os.path.isfile(heads_path):
    with open(heads_path) as f:
      heads = json.load(f).get(os.path.basename(a.image))
  strip = np.concatenate([np.pad(panel(rgb, m, heads, a.min_score), ((0, 0), (0, 4), (0, 0)),
                                 constant_values=255) for m in a.models], axis=1)
  os.makedirs(os.path.dirname(os.path.abspath(a.out)) or '.', exist_ok=True)
  root, ext = os.path.splitext(a.out)
  tmp = f'{root}.partial{ext}'
  if not cv2.imwrite(tmp, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, 85]):
    raise SystemExit(f'{a.out}: could not write an image there (expected a .jpg or .png path)')
  os.replace(tmp, a.out)
  print(f'wrote {a.out} ({strip.shape[1]}x{strip.shape[0]})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
