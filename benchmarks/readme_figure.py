"""The README's picture: tracked output of the default model, a strip of frames.

  python benchmarks/readme_figure.py --out benchmarks/results/tracked_synthetic.png
  python benchmarks/readme_figure.py --video ../shared/data/videos/vtest.avi --frames 120 \
      --out benchmarks/results/tracked_vtest.png

Without --video, a synthetic crowd clip (people crossing and occluding each other).
"""
from __future__ import annotations

import argparse
import os
import tempfile

import cv2
import numpy as np

from hvisnet_jax.apps import track as app
from hvisnet_jax.apps.commands import common
from hvisnet_jax.inference import predictor
from hvisnet_jax.synthetic import synth
from hvisnet_jax import video as video_lib


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument('--video', default=None)
  p.add_argument('--frames', type=int, default=60)
  p.add_argument('--show', type=int, default=4, help='frames in the strip')
  p.add_argument('--checkpoint', default=None)
  p.add_argument('--input-size', type=common.input_sizes, default=None,
                 help="as `hvisnet track`'s")
  p.add_argument('--max-detections', type=int, default=None, help="as `hvisnet track`'s")
  p.add_argument('--out', required=True)
  a = p.parse_args(argv)
  source = a.video
  if source is None:
    clip = synth.render_video(11, 0, a.frames, 240, 320, 'crowd')
    source = os.path.join(tempfile.mkdtemp(), 'clip.mp4')
    clip.write_mp4(source)
  picks = set(np.linspace(0, a.frames - 1, a.show).round().astype(int).tolist())
  shown = {}

  def keep(idx, frame, id_map, boxes):
    if idx in picks:
      img = video_lib.render(frame, id_map, boxes)
      cv2.putText(img, f'frame {idx}', (6, img.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                  (255, 255, 255), 1, cv2.LINE_AA)
      shown[idx] = img

  pred = predictor.Predictor.from_export(a.checkpoint)
  pred.configure(input_size=a.input_size, max_detections=a.max_detections)
  app.track_source(source, pred, on_frame=keep, progress=False, max_frames=a.frames)
  strip = np.concatenate([np.pad(shown[i], ((0, 0), (0, 4), (0, 0)), constant_values=255)
                          for i in sorted(shown)], axis=1)
  os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
  tmp = a.out + '.tmp.png'
  cv2.imwrite(tmp, cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
  os.replace(tmp, a.out)
  print(f'wrote {a.out} ({strip.shape[1]}x{strip.shape[0]})')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
