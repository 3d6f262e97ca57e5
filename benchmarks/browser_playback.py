"""Does `hvisnet track --save-video`'s render.mp4 play in a browser? A headless Chromium answers.

  apt-get install chromium        # Debian's package
  python benchmarks/browser_playback.py --json benchmarks/results/browser_playback.json

Tracks the first 20 frames of the demo clip shipped with the package with the built-in
model and --save-video, then opens benchmarks/browser/playback.html in headless Chromium
for the render and for the same frames written as OpenCV's MPEG-4 Part 2 (the codec used
when PyAV is missing): the page plays the video, stops past its first second and reports
the duration, the frame size and the mean brightness of the frame it shows (a black or
undecoded frame is near 0), or the media error (4: format not supported).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import cv2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from hvisnet_jax import atomic, provenance, video  # pylint: disable=wrong-import-position

PAGE = os.path.join(REPO, 'benchmarks', 'browser', 'playback.html')


def play(chromium: str, folder: str, name: str) -> dict:
  """What the page reports for FOLDER/NAME (the page is copied beside it: file:// pages
  may read only their own folder)."""
  shutil.copy(PAGE, os.path.join(folder, 'playback.html'))
  out = subprocess.run(
      [chromium, '--headless=new', '--no-sandbox', '--disable-gpu',
       '--allow-file-access-from-files', '--autoplay-policy=no-user-gesture-required',
       '--virtual-time-budget=20000', '--dump-dom',
       f'file://{os.path.join(folder, "playback.html")}?src={name}'],
      capture_output=True, text=True, timeout=120).stdout
  m = re.search(r'<pre id="out">([^<]*)</pre>', out)
  text = m.group(1) if m else 'no page'
  try:
    return json.loads(text)
  except ValueError:
    return {'page': text}


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--chromium', default=shutil.which('chromium') or 'chromium')
  p.add_argument('--frames', type=int, default=20)
  p.add_argument('--json', default=None)
  a = p.parse_args()
  from hvisnet_jax.apps import demo  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    run = os.path.join(tmp, 'run')
    subprocess.run([sys.executable, '-m', 'hvisnet_jax.cli', 'track', demo.DEMO_CLIP, '--out', run,
                    '--frames', str(a.frames), '--save-video', '--quiet'], check=True)
    cap = cv2.VideoCapture(os.path.join(run, 'render.mp4'))
    fps, frames = cap.get(cv2.CAP_PROP_FPS), []
    while True:
      ok, f = cap.read()
      if not ok:
        break
      frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    old = video.VideoWriter(os.path.join(run, 'mpeg4_part2.mp4'), fps, frames[0].shape[:2],
                            codec='mp4v')
    for f in frames:
      old.write(f)
    old.close()
    import av  # pylint: disable=g-import-not-at-top
    with av.open(os.path.join(run, 'render.mp4')) as c:
      codec = c.streams.video[0].codec_context.name
    version = subprocess.run([a.chromium, '--version'], capture_output=True, text=True).stdout
    res = dict(render_mp4=dict(codec=codec, frames=len(frames), fps=fps,
                               chromium=play(a.chromium, run, 'render.mp4')),
               mpeg4_part2=dict(codec='mpeg4 (OpenCV mp4v)',
                                chromium=play(a.chromium, run, 'mpeg4_part2.mp4')),
               chromium_version=version.strip())
  res['render_plays'] = bool(res['render_mp4']['chromium'].get('mean', 0) > 10 and
                             res['render_mp4']['chromium'].get('duration', 0) > 0)
  text = json.dumps(provenance.stamp(res), indent=1)
  print(text)
  if a.json:
    atomic.write_text(a.json, text + '\n')


if __name__ == '__main__':
  main()
