"""Peak memory of `hvisnet track` on a long video against a short one (constant memory).

  python benchmarks/track_memory.py --json benchmarks/results/track_memory_cpu.json \
      [--minutes 1 20] [--model synthetic] [--size 160x120]

The clips loop the first 100 frames of ../shared/data/videos/vtest.avi (10 frames/s, a
crowd of pedestrians), resized to --size, into videos of each length; each is tracked by
`hvisnet track` in its own process, and the process's peak resident memory (ru_maxrss,
from the kernel) is recorded. Results stream to disk (tracks.txt as frames come, the
YouTube-VIS masks spilled to a file), so the long video's peak should stay within 1.2x
of the short one's. The synthetic model and small frames keep a 20-minute video to a few
minutes of CPU; the memory held per frame does not depend on the network.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from hvisnet_jax import atomic, provenance  # pylint: disable=wrong-import-position

from shared_data import SHARED  # pylint: disable=wrong-import-position
SOURCE = os.path.join(SHARED, 'videos', 'vtest.avi')
FPS = 10.0


def make_clip(path: str, minutes: float, size_wh, loop_frames: int = 100) -> int:
  cap = cv2.VideoCapture(SOURCE)
  frames = []
  while len(frames) < loop_frames:
    ok, f = cap.read()
    if not ok:
      break
    frames.append(cv2.resize(f, size_wh, interpolation=cv2.INTER_AREA))
  cap.release()
  if not frames:
    raise FileNotFoundError(f'{SOURCE}: cannot read frames')
  n = int(round(minutes * 60 * FPS))
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), FPS, size_wh)
  for i in range(n):
    # Forward then backward, so the loop has no jump (people do not teleport).
    k = i % (2 * len(frames) - 2)
    writer.write(frames[k if k < len(frames) else 2 * len(frames) - 2 - k])
  writer.release()
  return n


def peak_rss_of_track(video: str, out: str, model: str):
  """Runs `hvisnet track` in a child process; (its own peak RSS in MiB from wait4, seconds,
  its last line of output)."""
  cmd = [sys.executable, '-c', 'import sys; from hvisnet_jax import cli; '
         'sys.exit(cli.main(sys.argv[1:]))', 'track', video, '--out', out, '--model', model,
         '--quiet']
  t0 = time.perf_counter()
  with tempfile.TemporaryFile('w+') as log:
    child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    log.seek(0)
    text = log.read()
  secs = time.perf_counter() - t0
  if child.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{text[-2000:]}')
  return usage.ru_maxrss / 1024, secs, text.strip().splitlines()[-1]


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--minutes', type=float, nargs='+', default=[1.0, 20.0],
                 help='video lengths in minutes')
  p.add_argument('--model', default='synthetic')
  p.add_argument('--size', default='160x120', help='WxH of the looped frames')
  p.add_argument('--json', default=None)
  a = p.parse_args()
  size = tuple(int(v) for v in a.size.split('x'))
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for minutes in sorted(a.minutes):
      video = os.path.join(tmp, f'loop_{minutes:g}min.avi')
      frames = make_clip(video, minutes, size)
      mib, secs, line = peak_rss_of_track(video, os.path.join(tmp, f'out_{minutes:g}'), a.model)
      rows.append(dict(minutes=minutes, frames=frames, peak_rss_mib=round(mib, 1),
                       seconds=round(secs, 1), output=line))
      print(json.dumps(rows[-1]), flush=True)
  res = dict(source=SOURCE, size=list(size), model=a.model, fps=FPS, runs=rows,
             long_over_short=rows[-1]['peak_rss_mib'] / rows[0]['peak_rss_mib'])
  res = provenance.stamp(res)
  print(json.dumps({k: res[k] for k in ('runs', 'long_over_short')}, indent=1))
  if a.json:
    atomic.write_text(a.json, json.dumps(res, indent=1))


if __name__ == '__main__':
  main()
