"""Every `hvisnet` command shown in README.md and docs/*.md runs, on tiny inputs.

The files a command names (video.mp4, gt/video.txt, frames_dir/, ...) are made in a
sandbox from a synthetic clip and ../shared/data; sizes are cut to CI's scale by the
rewrites in SHRINK and ADD (fewer frames, steps and runs, smaller inputs, PyTorch timed
without torch.compile). Each command runs
in the sandbox, in the order of its document, with its own --out removed first (as if run
alone); a command shown in several places runs once. Commands that cannot run here are
listed in NOT_RUN with the reason.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import cv2
import pytest

from conftest import REPO
from hvisnet_jax import evaluation
from hvisnet_jax.synthetic import synth
import test_docs

# Shown but not run here, by a part of the command, with the reason.
NOT_RUN = {
    '--multihost': 'needs several hosts (jax.distributed); two processes on one host are '
                   'tested in tests/training (multidevice_helper.py)',
    'gs://': 'a bucket: the same commands run against fake-gcs-server in '
             'tests/test_cloud_storage.py and .ci/wheel_smoke.sh',
    '/data/ochuman': 'needs the OCHuman download; the COCO-format reader runs on coco_mini here',
    '/data/hvis': 'needs the HVIS download; the YouTube-VIS reader runs on pseudo-labels here',
    '/data/MOTSChallenge': 'needs the MOTSChallenge download; the MOTS reader runs on '
                           'synthetic sequences in tests/data_pipelines',
    ' [': 'a synopsis ([optional] parts), not a command',
    'configs/hvisnet_real.py': "the real model's whole recipe (labels 40 real sources, trains "
                               '4,000 steps: hours on 2 cores); its parts run in '
                               'tests/data_pipelines/test_recipe.py and test_pseudo_label.py',
}

# CI's scale: (pattern, replacement) applied to every command.
SHRINK = [
    (r'--config\.train\.steps=\d+', '--config.train.steps=2'),
    (r'--frames \d+', '--frames 3'),
    (r'--start \d+', '--start 2'),
    (r'--videos \d+', '--videos 1'),
    (r'--repeats \d+', '--repeats 1'),
    (r'--size 512', '--size 64'),
    (r'--teacher-size 1280', '--teacher-size 320'),
    (r'/data/coco', 'data/coco'),
    (r'--out /data/tfds', '--out data/tfds'),
]
# Added where the command lacks them (fewer frames, one timed run).
ADD = {'track': '--frames 4 --quiet', 'pipeline': '--frames 4',
       # PyTorch timed eagerly: torch.compile alone takes about a minute on a CPU.
       'inference': '--runs 1 --warmup 1 --no-torch-compile',
       'pseudo-label': '--max-frames 4 --quiet'}


def _shown():
  for doc in test_docs.DOCS:
    for command in test_docs._commands(doc):   # pylint: disable=protected-access
      yield os.path.relpath(doc, REPO), command


def _ci_version(command):
  for pattern, repl in SHRINK:
    command = re.sub(pattern, repl, command)
  argv = shlex.split(command)[1:]
  if argv[0] == 'track' and '--frames' not in argv:
    argv += ADD['track'].split()
  elif argv[0] == 'track':
    argv.append('--quiet')
  elif argv[:3] == ['bench', '--what', 'pipeline'] and '--frames' not in argv:
    argv += ADD['pipeline'].split()
  elif argv[:3] == ['bench', '--what', 'inference']:
    argv += ADD['inference'].split()
  elif argv[0] == 'pseudo-label':
    argv += ADD['pseudo-label'].split()
  return argv


@pytest.fixture(scope='module')
def sandbox(tmp_path_factory, shared_data):
  d = tmp_path_factory.mktemp('docs')
  synth.write_dataset(str(d / 'syn'), 1, 12, 240, 320, 'easy', seed=5)
  name = os.listdir(d / 'syn' / 'JPEGImages')[0]
  video = synth.render_video(5, 0, 12, 240, 320, 'easy')
  for clip in ('video.mp4', 'crowd.mp4', 'mixed.mp4', 'a.mp4'):
    video.write_mp4(str(d / clip))
  # The teachers label real people: the demo clip's first frames for pseudo-label's inputs.
  from hvisnet_jax.apps import demo  # pylint: disable=g-import-not-at-top
  cap = cv2.VideoCapture(demo.DEMO_CLIP)
  (d / 'frames_dir').mkdir()
  real = [cap.read()[1] for _ in range(12)]
  cap.release()
  for clip in ('clip.mp4', 'clip1.mp4'):
    w = cv2.VideoWriter(str(d / clip), cv2.VideoWriter_fourcc(*'mp4v'), 10, real[0].shape[1::-1])
    for f in real:
      w.write(f)
    w.release()
  for t, f in enumerate(real):
    cv2.imwrite(str(d / 'frames_dir' / f'{t:05d}.jpg'), f)
  for clip, fourcc in (('video.avi', 'MJPG'), ('b.mkv', 'MJPG')):
    w = cv2.VideoWriter(str(d / clip), cv2.VideoWriter_fourcc(*fourcc), 10, (320, 240))
    for f in video.frames:
      w.write(f)
    w.release()
  (d / 'gt').mkdir()
  evaluation.write_mots_txt(str(d / 'gt' / 'video.txt'), video.ground_truth())
  shutil.copy(d / 'syn' / 'trajectories' / f'{name}.txt', d / 'obsmat.txt')
  shutil.copy(d / 'syn' / 'trajectories' / 'H.txt', d / 'H.txt')
  (d / 'data').mkdir()
  os.symlink(os.path.join(shared_data, 'real', 'coco_mini'), d / 'data' / 'coco')
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision_stub  # pylint: disable=g-import-not-at-top
  torchvision_stub.install()
  import timm  # pylint: disable=g-import-not-at-top
  torch.save(timm.create_model('dla34', pretrained=False).state_dict(),
             str(d / 'dla34-ba72cf86.pth'))
  return d


def test_every_command_shown_runs_or_says_why_not(sandbox):
  ran, skipped, seen = [], [], {}
  for doc, command in _shown():
    reason = next((r for k, r in NOT_RUN.items() if k in command), None)
    if reason:
      skipped.append((doc, command, reason))
      continue
    argv = _ci_version(re.sub(r'\$\(ls data/heldout/JPEGImages\)',
                              lambda _: os.listdir(sandbox / 'data' / 'heldout' / 'JPEGImages')[0],
                              command))
    if tuple(argv) in seen:                      # shown again: it ran, the same, above
      continue
    if '--out' in argv and argv[0] != 'bench':
      out = sandbox / argv[argv.index('--out') + 1]
      if out.is_dir() and not out.is_symlink() and argv[0] not in ('build-dataset',):
        shutil.rmtree(out)
    start = time.monotonic()
    r = subprocess.run([sys.executable, '-m', 'hvisnet_jax.cli', *argv], cwd=sandbox,
                       capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, JAX_PLATFORMS='cpu'))
    assert r.returncode == 0, f'{doc}: `{command}` (run as {argv}) failed:\n{r.stderr[-3000:]}'
    seen[tuple(argv)] = time.monotonic() - start
    ran.append(command)
  assert len(ran) >= 28, len(ran)
  # Every skip names its reason, and the reasons cover only what cannot run here.
  assert all(reason for _, _, reason in skipped)
  print('\n'.join(f'not run: {doc}: {c} ({r})' for doc, c, r in skipped))
  print('\n'.join(f'{s:6.1f} s  {" ".join(a)}' for a, s in seen.items()))
