"""The CLI probed as a careless user would: 100+ bad inputs and faults, each in a sandbox.

  python benchmarks/cli_probe.py --json benchmarks/results/cli_probe_cpu.json [--only NAME]

Every case runs `hvisnet ...` in a fresh process in its own sandbox holding the user's
files (a notes.txt in every folder, earlier outputs where the case says so). A case
FAILS when:
- a file that was there before (the user's, or an earlier run's) changed or vanished,
  unless the case expects the command to replace it (lost data);
- a mistake exits 0 (a wrong result), or a valid run exits non-zero;
- stderr shows a traceback, or the one-line error names no file, field or value
  (`expect` lists what the message must contain);
- it runs past its time limit (a hang).
The table is also imported by tests/test_cli_probe.py, which runs a quick subset in CI.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from shared_data import SHARED  # pylint: disable=wrong-import-position

REFUSE, OK = 'refuse', 'ok'


def case(name, argv, expect=REFUSE, says=(), setup=None, replaces=(), timeout=240,
         quick=False, env=None):
  """argv: the hvisnet arguments ({S} is the sandbox); says: text the error must hold;
  replaces: sandbox paths the command may rewrite; quick: in the CI subset; env: extra
  environment ({S} expanded)."""
  return dict(name=name, argv=argv, expect=expect, says=tuple(says), setup=setup,
              replaces=tuple(replaces), timeout=timeout, quick=quick, env=env)


# ------------------------------------------------------------------ sandbox contents

def _frames(d, n=4, h=96, w=128):
  import cv2  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  os.makedirs(d, exist_ok=True)
  rng = np.random.default_rng(0)
  for i in range(n):
    cv2.imwrite(os.path.join(d, f'{i:05d}.jpg'), rng.integers(0, 255, (h, w, 3), np.uint8))


def _write(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
    f.write(data)


def base(s):
  """What every sandbox holds: frames, a synthetic dataset with ground truth, notes."""
  _frames(os.path.join(s, 'frames'))
  _write(os.path.join(s, 'notes.txt'), 'the user\'s notes\n')
  _write(os.path.join(s, 'frames', 'notes.txt'), 'not an image\n')
  data = os.path.join(s, 'syn')
  src = os.path.join(CACHE, 'syn')
  shutil.copytree(src, data)
  _write(os.path.join(s, 'text.avi'), 'this is not a video\n')
  _write(os.path.join(s, 'empty.avi'), '')
  os.makedirs(os.path.join(s, 'nothing'))
  _write(os.path.join(s, 'userdir', 'notes.txt'), 'keep me\n')


def earlier_track(s):
  base(s)
  shutil.copytree(os.path.join(CACHE, 'track'), os.path.join(s, 'run'))


def _coco(s, mutate):
  base(s)
  gt = json.load(open(os.path.join(SHARED, 'real', 'coco_mini', 'annotations',
                                   'instances_val2017.json')))
  img = gt['images'][0]
  anns = [a for a in gt['annotations'] if a['image_id'] == img['id']]
  _write(os.path.join(s, 'coco_gt.json'), json.dumps(dict(images=[img], annotations=anns,
                                                          categories=gt['categories'])))
  pred = [dict(image_id=img['id'], category_id=1, score=0.9,
               segmentation=dict(size=[img['height'], img['width']], counts='PPYo0'))]
  _write(os.path.join(s, 'coco_pred.json'), json.dumps(mutate(pred, img)))


def _ytvis(s, mutate):
  base(s)
  res = json.load(open(os.path.join(CACHE, 'track', 'results.json')))
  _write(os.path.join(s, 'yt_pred.json'), json.dumps(mutate(res)))


def _mots(s, mutate):
  base(s)
  seq = os.listdir(os.path.join(s, 'syn', 'mots'))[0]
  lines = open(os.path.join(CACHE, 'track', 'tracks.txt')).read().splitlines()
  _write(os.path.join(s, 'mots_pred', seq), '\n'.join(mutate(lines)) + '\n')


def _workdir(s):
  base(s)
  shutil.copytree(os.path.join(CACHE, 'wd'), os.path.join(s, 'wd'))


CACHE = ''       # filled by prepare(): inputs made once, copied into each sandbox


def prepare(root, workdir: bool = True):
  """The inputs every sandbox copies: a synthetic dataset, an earlier track run and (for
  the export cases) a workdir trained for one step."""
  global CACHE
  CACHE = root
  if os.path.isfile(os.path.join(root, 'ready')):
    return
  run(['synth', '--out', os.path.join(root, 'syn'), '--videos', '1', '--frames', '6',
       '--size', '96x128', '--quiet'], check=True)
  seq = os.listdir(os.path.join(root, 'syn', 'JPEGImages'))[0]
  run(['track', os.path.join(root, 'syn', 'JPEGImages', seq), '--out',
       os.path.join(root, 'track'), '--model', 'synthetic', '--quiet'], check=True)
  if not workdir:
    return
  run(['train', '--config=configs/hvisnet_tiny.py', f'--workdir={os.path.join(root, "wd")}',
       '--config.train.steps=1', '--config.train.batch_size=2', '--config.train.log_every=1',
       '--config.train.checkpoint_every=1', '--config.evals.synthetic.every=0',
       '--config.data.height=64', '--config.data.width=96', '--config.data.videos=2',
       '--config.data.frames=4', '--config.data.max_instances=4'], check=True)
  _write(os.path.join(root, 'ready'), '')


def run(argv, cwd=REPO, timeout=600, check=False, env=None):
  r = subprocess.run([sys.executable, '-m', 'hvisnet_jax.cli', *argv], cwd=cwd,
                     capture_output=True, text=True, timeout=timeout,
                     env=dict(os.environ, JAX_PLATFORMS='cpu', **(env or {})))
  if check and r.returncode:
    raise RuntimeError(f'hvisnet {" ".join(argv)}: {r.stderr[-1500:]}')
  return r


SEQ = '{S}/syn/JPEGImages/easy_0000_0000'


def cases():
  t = []
  # --- track: sources
  t += [case('track missing source', ['track', '{S}/missing.mp4', '--out', '{S}/o'],
             says=['missing.mp4', 'no such'], quick=True),
        case('track empty file', ['track', '{S}/empty.avi', '--out', '{S}/o'],
             says=['empty.avi']),
        case('track text as video', ['track', '{S}/text.avi', '--out', '{S}/o'],
             says=['text.avi']),
        case('track folder without images', ['track', '{S}/nothing', '--out', '{S}/o'],
             says=['nothing', 'no images']),
        case('track start past the end', ['track', SEQ, '--out', '{S}/o', '--start', '99'],
             says=['start 99']),
        case('track stride 0', ['track', SEQ, '--out', '{S}/o', '--stride', '0'],
             says=['stride']),
        case('track frames 0', ['track', SEQ, '--out', '{S}/o', '--frames', '0'],
             says=['frames']),
        case('track frames -3', ['track', SEQ, '--out', '{S}/o', '--frames', '-3'],
             says=['frames']),
        case('track start -1', ['track', SEQ, '--out', '{S}/o', '--start', '-1'],
             says=['start']),
        case('track in-flight 0', ['track', SEQ, '--out', '{S}/o', '--in-flight', '0'],
             says=['in-flight']),
        case('track cpu-devices 0', ['track', SEQ, '--out', '{S}/o', '--cpu-devices', '0'],
             says=['cpu-devices']),
        case('track input-size 0', ['track', SEQ, '--out', '{S}/o', '--input-size', '0'],
             says=['input-size']),
        case('track input-size 16', ['track', SEQ, '--out', '{S}/o', '--input-size', '16'],
             says=['input-size', '>= 64']),
        case('track max-detections -1', ['track', SEQ, '--out', '{S}/o', '--max-detections',
                                         '-1'], says=['max-detections']),
        case('track unknown model', ['track', SEQ, '--out', '{S}/o', '--model', 'huge'],
             says=['huge']),
        case('track camera-motion maybe', ['track', SEQ, '--out', '{S}/o', '--camera-motion',
                                           'maybe'], says=['camera-motion']),
        case('track checkpoint missing', ['track', SEQ, '--out', '{S}/o', '--checkpoint',
                                          '{S}/nope'], says=['nope']),
        case('track checkpoint not an export', ['track', SEQ, '--out', '{S}/o',
                                                '--checkpoint', '{S}/userdir'],
             says=['userdir']),
        case('track out is a file', ['track', SEQ, '--out', '{S}/notes.txt'],
             says=['notes.txt']),
        case('track out holds user files', ['track', SEQ, '--out', '{S}/userdir'],
             says=['userdir'], quick=True),
        case('track out holds user files, overwrite', ['track', SEQ, '--out', '{S}/userdir',
                                                       '--overwrite'], says=['userdir']),
        case('track earlier run, no overwrite', ['track', SEQ, '--out', '{S}/run'],
             says=['run', '--overwrite'], setup=earlier_track),
        case('track earlier run, overwrite', ['track', SEQ, '--out', '{S}/run', '--overwrite',
                                              '--model', 'synthetic'], expect=OK,
             setup=earlier_track, replaces=['run']),
        case('track a part', ['track', SEQ, '--out', '{S}/o', '--model', 'synthetic',
                              '--start', '1', '--frames', '3', '--stride', '2'], expect=OK),
        case('track folder with a non-image file', ['track', '{S}/frames', '--out', '{S}/o',
                                                    '--model', 'synthetic'], expect=OK),
        ]
  # --- eval
  t += [case('eval gt missing', ['eval', '--gt', '{S}/none.json', '--pred',
                                 '{S}/syn/annotations.json'], says=['none.json']),
        case('eval pred missing', ['eval', '--gt', '{S}/syn/annotations.json', '--pred',
                                   '{S}/none.json'], says=['none.json']),
        case('eval gt not json', ['eval', '--gt', '{S}/notes.txt', '--pred', '{S}/notes.txt',
                                  '--format', 'ytvis'], says=['notes.txt']),
        case('eval json into a missing folder', ['eval', '--gt', '{S}/syn/mots', '--pred',
                                                 '{S}/syn/mots', '--json', '{S}/no/dir/m.json'],
             expect=OK),
        case('eval coco 10x10 rle', ['eval', '--gt', '{S}/coco_gt.json', '--pred',
                                     '{S}/coco_pred.json', '--format', 'coco'],
             says=['coco_pred.json', 'size'],
             setup=lambda s: _coco(s, lambda p, i: [dict(p[0], segmentation=dict(
                 size=[10, 10], counts='1'))]), quick=True),
        case('eval coco garbage counts', ['eval', '--gt', '{S}/coco_gt.json', '--pred',
                                          '{S}/coco_pred.json', '--format', 'coco'],
             says=['coco_pred.json'],
             setup=lambda s: _coco(s, lambda p, i: [dict(p[0], segmentation=dict(
                 size=[i['height'], i['width']], counts='!!!garbage'))])),
        case('eval coco unknown image', ['eval', '--gt', '{S}/coco_gt.json', '--pred',
                                         '{S}/coco_pred.json', '--format', 'coco'],
             says=['coco_pred.json', 'image'],
             setup=lambda s: _coco(s, lambda p, i: [dict(p[0], image_id=-5)])),
        case('eval coco score a string', ['eval', '--gt', '{S}/coco_gt.json', '--pred',
                                          '{S}/coco_pred.json', '--format', 'coco'],
             says=['coco_pred.json', 'score'],
             setup=lambda s: _coco(s, lambda p, i: [dict(p[0], score='high')])),
        case('eval coco not a list', ['eval', '--gt', '{S}/coco_gt.json', '--pred',
                                      '{S}/coco_pred.json', '--format', 'coco'],
             says=['coco_pred.json'], setup=lambda s: _coco(s, lambda p, i: {'a': 1})),
        case('eval coco polygon results', ['eval', '--gt', '{S}/coco_gt.json', '--pred',
                                           '{S}/coco_pred.json', '--format', 'coco'],
             expect=OK, setup=lambda s: _coco(s, lambda p, i: [dict(
                 p[0], segmentation=[[10, 10, 60, 10, 60, 90, 10, 90]])])),
        case('eval ytvis scores as strings', ['eval', '--gt', '{S}/syn/annotations.json',
                                              '--pred', '{S}/yt_pred.json'],
             says=['yt_pred.json', 'score'],
             setup=lambda s: _ytvis(s, lambda r: [dict(x, score='0.9') for x in r])),
        case('eval ytvis segmentations a dict', ['eval', '--gt', '{S}/syn/annotations.json',
                                                 '--pred', '{S}/yt_pred.json'],
             says=['yt_pred.json', 'segmentations'],
             setup=lambda s: _ytvis(s, lambda r: [dict(x, segmentations={}) for x in r])),
        case('eval ytvis wrong length', ['eval', '--gt', '{S}/syn/annotations.json', '--pred',
                                         '{S}/yt_pred.json'], says=['yt_pred.json'],
             setup=lambda s: _ytvis(s, lambda r: [dict(x, segmentations=x['segmentations'][:2])
                                                  for x in r])),
        case('eval ytvis unknown video', ['eval', '--gt', '{S}/syn/annotations.json', '--pred',
                                          '{S}/yt_pred.json'], says=['yt_pred.json', 'video'],
             setup=lambda s: _ytvis(s, lambda r: [dict(x, video_id=77) for x in r])),
        case('eval ytvis valid', ['eval', '--gt', '{S}/syn/annotations.json', '--pred',
                                  '{S}/yt_pred.json'], expect=OK,
             setup=lambda s: _ytvis(s, lambda r: r)),
        case('eval mots past the last frame', ['eval', '--gt', '{S}/syn/mots', '--pred',
                                               '{S}/mots_pred'], says=['frame'],
             setup=lambda s: _mots(s, lambda ls: ls + ['500' + ls[0][ls[0].index(' '):]])),
        case('eval mots garbage line', ['eval', '--gt', '{S}/syn/mots', '--pred',
                                        '{S}/mots_pred'], says=['mots_pred', ':'],
             setup=lambda s: _mots(s, lambda ls: ls + ['1 2 3 garbage'])),
        case('eval mots non-ascii', ['eval', '--gt', '{S}/syn/mots', '--pred',
                                     '{S}/mots_pred'], says=['mots_pred'],
             setup=lambda s: _mots(s, lambda ls: ls + ['1 2001 2 96 128 \u00e9\u00e9'])),
        case('eval mots wrong size', ['eval', '--gt', '{S}/syn/mots', '--pred',
                                      '{S}/mots_pred'], says=['mots_pred'],
             setup=lambda s: _mots(s, lambda ls: [l.replace(' 96 128 ', ' 50 50 ', 1)
                                                  for l in ls])),
        case('eval mots valid', ['eval', '--gt', '{S}/syn/mots', '--pred', '{S}/mots_pred'],
             expect=OK, setup=lambda s: _mots(s, lambda ls: ls)),
        case('eval mots empty prediction', ['eval', '--gt', '{S}/syn/mots', '--pred',
                                            '{S}/mots_pred'], expect=OK,
             setup=lambda s: _mots(s, lambda ls: [])),
        case('eval format mismatch', ['eval', '--gt', '{S}/syn/annotations.json', '--pred',
                                      '{S}/syn/annotations.json', '--format', 'mots'],
             says=['annotations.json']),
        ]
  # --- synth
  t += [case('synth videos 0', ['synth', '--out', '{S}/o', '--videos', '0'], says=['videos']),
        case('synth frames 0', ['synth', '--out', '{S}/o', '--frames', '0'], says=['frames']),
        case('synth size junk', ['synth', '--out', '{S}/o', '--size', 'big'], says=['size']),
        case('synth size 0x0', ['synth', '--out', '{S}/o', '--size', '0x0'], says=['size']),
        case('synth preset junk', ['synth', '--out', '{S}/o', '--preset', 'hard'],
             says=['preset']),
        case('synth out is a file', ['synth', '--out', '{S}/notes.txt', '--frames', '2'],
             says=['notes.txt']),
        case('synth out holds user files', ['synth', '--out', '{S}/userdir', '--frames', '2',
                                            '--size', '48x64'], says=['userdir'], quick=True),
        case('synth valid', ['synth', '--out', '{S}/o', '--videos', '1', '--frames', '2',
                             '--size', '48x64', '--quiet'], expect=OK),
        ]
  # --- build-dataset
  t += [case('build missing source', ['build-dataset', '--format', 'ytvis', '--source',
                                      '{S}/none', '--out', '{S}/tfds'], says=['none']),
        case('build bad split', ['build-dataset', '--format', 'ytvis', '--source', '{S}/syn',
                                 '--out', '{S}/tfds', '--split', 'train'], says=['split']),
        case('build split file missing', ['build-dataset', '--format', 'ytvis', '--source',
                                          '{S}/syn', '--out', '{S}/tfds', '--split',
                                          'train=nope.json'], says=['nope.json']),
        case('build out is a file', ['build-dataset', '--format', 'ytvis', '--source',
                                     '{S}/syn', '--out', '{S}/notes.txt'], says=['notes.txt']),
        case('build clip length 0', ['build-dataset', '--format', 'ytvis', '--source',
                                     '{S}/syn', '--out', '{S}/tfds', '--clip-length', '-1'],
             says=['clip']),
        case('build escaping file names', ['build-dataset', '--format', 'ytvis', '--source',
                                           '{S}/syn', '--out', '{S}/tfds', '--split',
                                           'train=evil.json'], says=['evil.json'],
             setup=lambda s: (base(s), _write(os.path.join(s, 'syn', 'evil.json'), json.dumps(
                 dict(videos=[dict(id=1, file_names=['../../etc/passwd'], height=96,
                                   width=128, length=1)], annotations=[],
                      categories=[dict(id=1, name='person')]))))),
        case('build valid', ['build-dataset', '--format', 'ytvis', '--source', '{S}/syn',
                             '--out', '{S}/tfds'], expect=OK),
        ]
  # --- train / export
  base_train = ['train', '--config=configs/hvisnet_tiny.py', '--workdir={S}/w']
  t += [case('train config missing', ['train', '--config=nope.py', '--workdir={S}/w'],
             says=['nope.py'], quick=True),
        case('train unknown key', base_train + ['--config.train.nope=3'], says=['nope']),
        case('train steps -5', base_train + ['--config.train.steps=-5'], says=['steps']),
        case('train batch 0', base_train + ['--config.train.batch_size=0'],
             says=['batch_size']),
        case('train no workdir', ['train', '--config=configs/hvisnet_tiny.py'],
             says=['workdir']),
        case('train workdir is a file', ['train', '--config=configs/hvisnet_tiny.py',
                                         '--workdir={S}/notes.txt'], says=['notes.txt']),
        case('export workdir missing', ['export', '{S}/none', '--out', '{S}/e'], says=['none']),
        case('export workdir without checkpoints', ['export', '{S}/userdir', '--out', '{S}/e'],
             says=['userdir']),
        case('export into user files', ['export', '{S}/wd', '--out', '{S}/userdir'],
             says=['userdir'], setup=_workdir),
        case('export into its workdir', ['export', '{S}/wd', '--out', '{S}/wd'], says=['wd'],
             setup=_workdir),
        case('export dtype junk', ['export', '{S}/wd', '--out', '{S}/e', '--dtype', 'int8'],
             says=['dtype'], setup=_workdir),
        case('export valid', ['export', '{S}/wd', '--out', '{S}/e'], expect=OK,
             setup=_workdir),
        ]
  # --- convert-torch
  t += [case('convert missing', ['convert-torch', '{S}/none.pth', '--out', '{S}/p'],
             says=['none.pth']),
        case('convert garbage pth', ['convert-torch', '{S}/notes.txt', '--out', '{S}/p'],
             says=['notes.txt']),
        case('convert npz not dla', ['convert-torch', '{S}/r.npz', '--out', '{S}/p'],
             says=['r.npz'], setup=lambda s: (base(s), __import__('numpy').savez(
                 os.path.join(s, 'r.npz'), w=__import__('numpy').zeros(3)))),
        case('convert out holds user files', ['convert-torch', '{S}/r.npz', '--out',
                                              '{S}/userdir'], says=[],
             setup=lambda s: (base(s), __import__('numpy').savez(
                 os.path.join(s, 'r.npz'), w=__import__('numpy').zeros(3)))),
        ]
  # --- pseudo-label
  t += [case('pseudo-label missing source', ['pseudo-label', '{S}/none.mp4', '--out',
                                             '{S}/pl'], says=['none.mp4']),
        case('pseudo-label every 0', ['pseudo-label', SEQ, '--out', '{S}/pl', '--every', '0'],
             says=['every']),
        case('pseudo-label max-frames -1', ['pseudo-label', SEQ, '--out', '{S}/pl',
                                            '--max-frames', '-1'], says=['max-frames']),
        case('pseudo-label teacher size off grid', ['pseudo-label', SEQ, '--out', '{S}/pl',
                                                    '--teacher-size', '100'],
             says=['teacher-size']),
        case('pseudo-label unknown teacher', ['pseudo-label', SEQ, '--out', '{S}/pl',
                                              '--teacher', 'sam'], says=['teacher']),
        case('pseudo-label out is a file', ['pseudo-label', SEQ, '--out', '{S}/notes.txt'],
             says=['notes.txt']),
        case('pseudo-label out holds user files', ['pseudo-label', SEQ, '--out',
                                                   '{S}/userdir'], says=['userdir']),
        case('pseudo-label source dot', ['pseudo-label', '.', '--out', '{S}/pl',
                                         '--max-frames', '1'], says=[]),
        ]
  # --- extract-person
  traj = '{S}/syn/trajectories/easy_0000_0000.txt'
  hom = '{S}/syn/trajectories/H.txt'
  t += [case('extract trajectories missing', ['extract-person', SEQ, '--trajectories',
                                              '{S}/none.txt', '--homography', hom, '--pid',
                                              '1', '--out', '{S}/x'], says=['none.txt']),
        case('extract homography junk', ['extract-person', SEQ, '--trajectories', traj,
                                         '--homography', '{S}/notes.txt', '--pid', '1',
                                         '--out', '{S}/x'], says=['notes.txt']),
        case('extract unknown pid', ['extract-person', SEQ, '--trajectories', traj,
                                     '--homography', hom, '--pid', '999', '--out', '{S}/x',
                                     '--model', 'synthetic'], says=['999']),
        case('extract source missing', ['extract-person', '{S}/none', '--trajectories', traj,
                                        '--homography', hom, '--pid', '1', '--out', '{S}/x'],
             says=['none']),
        case('extract out holds user files', ['extract-person', SEQ, '--trajectories', traj,
                                              '--homography', hom, '--pid', '1', '--out',
                                              '{S}/userdir', '--model', 'synthetic'],
             says=['userdir']),
        case('extract frame step 0', ['extract-person', SEQ, '--trajectories', traj,
                                      '--homography', hom, '--pid', '1', '--out', '{S}/x',
                                      '--frame-step', '0'], says=['frame-step']),
        ]
  # --- bench / demo / teacher / misc
  t += [case('bench batch 0', ['bench', '--batch', '0'], says=['batch']),
        case('bench runs 0', ['bench', '--runs', '0'], says=['runs']),
        case('bench pipeline without source', ['bench', '--what', 'pipeline'],
             says=['--source']),
        case('bench pipeline source missing', ['bench', '--what', 'pipeline', '--source',
                                               '{S}/none.mp4', '--model', 'synthetic'],
             says=['none.mp4']),
        case('bench what junk', ['bench', '--what', 'everything'], says=['what']),
        case('bench json into user dir', ['bench', '--what', 'tracker', '--runs', '2',
                                          '--json', '{S}/userdir'], says=['userdir']),
        case('demo frames 0', ['demo', '--frames', '0', '--out', '{S}/d'], says=['frames']),
        case('demo out is a file', ['demo', '--out', '{S}/notes.txt'], says=['notes.txt']),
        case('demo out holds user files', ['demo', '--out', '{S}/userdir'], says=['userdir']),
        case('teacher junk', ['teacher', 'eat'], says=['eat']),
        case('no command', [], says=['command']),
        case('unknown command', ['segment'], says=['segment']),
        ]
  # --- the same mistakes on every command that writes a folder: --out nested in a file
  for cmd, extra in (('track', [SEQ, '--model', 'synthetic']), ('synth', ['--frames', '2']),
                     ('demo', ['--frames', '2']), ('pseudo-label', [SEQ]),
                     ('build-dataset', ['--format', 'ytvis', '--source', '{S}/syn'])):
    t.append(case(f'{cmd} out under a file', [cmd, *extra, '--out', '{S}/notes.txt/sub'],
                  says=['notes.txt']))
  # --- numbers that are not numbers
  for cmd, flag, extra in (('track', '--frames', [SEQ, '--out', '{S}/o']),
                           ('track', '--stride', [SEQ, '--out', '{S}/o']),
                           ('track', '--start', [SEQ, '--out', '{S}/o']),
                           ('track', '--input-size', [SEQ, '--out', '{S}/o']),
                           ('synth', '--videos', ['--out', '{S}/o']),
                           ('demo', '--frames', ['--out', '{S}/d']),
                           ('bench', '--batch', []), ('bench', '--runs', []),
                           ('pseudo-label', '--every', [SEQ, '--out', '{S}/pl']),
                           ('pseudo-label', '--max-frames', [SEQ, '--out', '{S}/pl']),
                           ('extract-person', '--pid', [SEQ, '--trajectories', traj,
                                                        '--homography', hom, '--out',
                                                        '{S}/x'])):
    t.append(case(f'{cmd} {flag} not a number', [cmd, *extra, flag, 'many'], says=[flag]))
  t += _other_commands_outputs(traj, hom) + _workdirs() + _ranges(traj, hom) + _tracebacks()
  return t


# ------------------------------------------- outputs of other commands, workdirs, ranges

def _fake_outputs(s):
  """base() plus what other commands leave: a demo, an extract-person run, an export, a
  pseudo-label output of another source, a user's config.json, a state_dict."""
  earlier_track(s)
  for sub in ('real', 'synthetic'):
    _write(os.path.join(s, 'demo', sub, 'tracks.txt'), 'a demo\n')
  _write(os.path.join(s, 'person', 'summary.json'), '{"pid": 1}')
  _write(os.path.join(s, 'person', 'person1.txt'), 'an extract-person run\n')
  _write(os.path.join(s, 'model', 'config.json'), '{"model": {}, "train": {}}')
  _write(os.path.join(s, 'model', 'variables', 'weights'), 'trained weights')
  _write(os.path.join(s, 'pl', 'parts', 'other_clip.json'), '{"name": "other_clip"}')
  _write(os.path.join(s, 'pl', 'annotations.json'), '{"videos": []}')
  _write(os.path.join(s, 'mine', 'config.json'), '{"lr": 0.1}')
  import numpy as np  # pylint: disable=g-import-not-at-top
  np.savez(os.path.join(s, 'sd.npz'), x=np.zeros(1, np.float32))
  _write(os.path.join(s, 'w.pth'), b'not a real checkpoint')
  _write(os.path.join(s, 'no_torch', 'torch', '__init__.py'),
         'raise ImportError("No module named torch")\n')


def _workdir_and_outputs(s):
  _fake_outputs(s)
  shutil.copytree(os.path.join(CACHE, 'wd'), os.path.join(s, 'wd'))


def _other_commands_outputs(traj, hom):
  gt_seq = '{S}/syn/mots/easy_0000_0000.txt'
  pred = '{S}/run/tracks.txt'
  ev = ['eval', '--gt', gt_seq, '--pred', pred]
  x = lambda o: ['extract-person', SEQ, '--trajectories', traj, '--homography', hom,  # pylint: disable=g-long-lambda
                 '--pid', '1', '--model', 'synthetic', '--out', o]
  return [
      case('eval json onto the ground truth', ev + ['--json', gt_seq], says=['--gt'],
           setup=earlier_track, quick=True),
      case('eval json onto the predictions', ev + ['--json', pred], says=['--pred'],
           setup=earlier_track),
      case('eval json into the ground-truth folder', ['eval', '--gt', '{S}/syn/mots', '--pred',
                                                      pred, '--json', '{S}/syn/mots/m.json'],
           says=['--gt'], setup=earlier_track),
      case('eval json onto a user file', ev + ['--json', '{S}/notes.txt'],
           says=['notes.txt', 'not an hvisnet eval result'], setup=earlier_track),
      case('demo onto a track run', ['demo', '--out', '{S}/run', '--frames', '2'],
           says=['run', 'hvisnet track'], setup=_fake_outputs),
      case('demo onto an earlier demo', ['demo', '--out', '{S}/demo', '--frames', '2'],
           says=['demo', '--overwrite'], setup=_fake_outputs),
      case('demo onto an extract-person run', ['demo', '--out', '{S}/person', '--frames', '2'],
           says=['person', 'extract-person'], setup=_fake_outputs),
      case('track onto a demo', ['track', SEQ, '--out', '{S}/demo', '--model', 'synthetic',
                                 '--overwrite'], says=['demo', 'hvisnet demo'],
           setup=_fake_outputs),
      case('track onto an extract-person run', ['track', SEQ, '--out', '{S}/person',
                                                '--overwrite', '--model', 'synthetic'],
           says=['person', 'extract-person'], setup=_fake_outputs),
      case('track onto an export', ['track', SEQ, '--out', '{S}/model', '--overwrite',
                                    '--model', 'synthetic'], says=['model'],
           setup=_fake_outputs),
      case('extract-person onto a track run', x('{S}/run') + ['--overwrite'],
           says=['run', 'hvisnet track'], setup=_fake_outputs),
      case('convert-torch into an export', ['convert-torch', '{S}/sd.npz', '--out',
                                            '{S}/model/variables'],
           says=['model', 'export'], setup=_fake_outputs),
      case('convert-torch beside an export\'s weights', ['convert-torch', '{S}/sd.npz', '--out',
                                                        '{S}/model/backbone'],
           says=['model', 'export'], setup=_fake_outputs),
      case('convert-torch into a workdir', ['convert-torch', '{S}/sd.npz', '--out',
                                            '{S}/wd/checkpoints/backbone'],
           says=['wd', 'workdir'], setup=_workdir_and_outputs),
      case('convert-torch onto a user folder', ['convert-torch', '{S}/sd.npz', '--out',
                                                '{S}/userdir'], says=['userdir'],
           setup=_fake_outputs),
      case('convert-torch onto its input', ['convert-torch', '{S}/sd.npz', '--out', '{S}/sd.npz'],
           says=['sd.npz', 'input'], setup=_fake_outputs),
      case('pseudo-label onto other sources\' labels', ['pseudo-label', SEQ, '--out', '{S}/pl'],
           says=['pl', 'other_clip', '--add'], setup=_fake_outputs),
      case('pseudo-label onto a track run', ['pseudo-label', SEQ, '--out', '{S}/run'],
           says=['run'], setup=_fake_outputs),
      case('export onto a track run', ['export', '{S}/wd', '--out', '{S}/run'], says=['run'],
           setup=_workdir_and_outputs),
      case('synth onto a track run', ['synth', '--out', '{S}/run', '--frames', '2'],
           says=['run'], setup=_fake_outputs),
  ]


def _workdirs():
  tiny = ['train', '--config=configs/hvisnet_tiny.py', '--config.train.steps=1']
  return [
      case('train into an export', tiny + ['--workdir={S}/model'], says=['model', 'export'],
           setup=_fake_outputs),
      case('train into a folder with a user config.json', tiny + ['--workdir={S}/mine'],
           says=['config.json', 'not the config hvisnet train writes'], setup=_fake_outputs),
      case('train into a user folder', tiny + ['--workdir={S}/userdir'],
           says=['userdir', 'did not write'], quick=True),
      case('train into a track run', tiny + ['--workdir={S}/run'], says=['run'],
           setup=earlier_track),
      case('train lr not a number', tiny + ['--workdir={S}/w', '--config.train.lr=abc'],
           says=['train.lr', 'expected a number']),
      case('train flip not a bool', tiny + ['--workdir={S}/w', '--config.data.flip=maybe'],
           says=['data.flip', 'true or false']),
  ]


def _ranges(traj, hom):
  x = ['extract-person', SEQ, '--trajectories', traj, '--homography', hom, '--pid', '1',
       '--out', '{S}/x']
  pl = ['pseudo-label', SEQ, '--out', '{S}/pl']
  rows = [('extract-person max-distance -5', x + ['--max-distance', '-5'], '--max-distance'),
          ('extract-person max-distance nan', x + ['--max-distance', 'nan'], '--max-distance'),
          ('extract-person frame-step 0', x + ['--frame-step', '0'], '--frame-step'),
          ('extract-person pid -1', x[:-4] + ['--pid', '-1', '--out', '{S}/x'], '--pid'),
          ('pseudo-label tiles -1', pl + ['--tiles', '-1'], '--tiles'),
          ('pseudo-label max-side 0', pl + ['--max-side', '0'], '--max-side'),
          ('pseudo-label min-track-len 0', pl + ['--min-track-len', '0'], '--min-track-len'),
          ('pseudo-label teacher-size 100', pl + ['--teacher-size', '100'], '--teacher-size'),
          ('bench size 8', ['bench', '--size', '8'], '--size'),
          ('bench warmup -1', ['bench', '--warmup', '-1'], '--warmup'),
          ('track cpu-devices -2', ['track', SEQ, '--out', '{S}/o', '--cpu-devices', '-2'],
           '--cpu-devices'),
          ('synth seed -1', ['synth', '--out', '{S}/o', '--seed', '-1'], '--seed'),
          ('demo seed -1', ['demo', '--out', '{S}/d', '--seed', '-1'], '--seed'),
          ('build clip-length -3', ['build-dataset', '--format', 'ytvis', '--source', '{S}/syn',
                                    '--out', '{S}/tfds', '--clip-length', '-3'], '--clip-length')]
  return [case(name, argv, says=[flag, 'expected']) for name, argv, flag in rows]


def _tracebacks():
  def ytvis_strings(s):
    base(s)
    _write(os.path.join(s, 'strings.json'), json.dumps(['a', 'b']))

  def ytvis_repeated_id(s):
    base(s)
    gt = json.load(open(os.path.join(s, 'syn', 'annotations.json')))
    gt['annotations'].append(dict(gt['annotations'][0]))
    _write(os.path.join(s, 'dup.json'), json.dumps(gt))
    _write(os.path.join(s, 'none.json'), '[]')

  return [
      case('eval ytvis results of strings', ['eval', '--gt', '{S}/syn/annotations.json',
                                             '--pred', '{S}/strings.json'],
           says=['strings.json', 'expected an object'], setup=ytvis_strings),
      case('eval ytvis ground truth with a repeated id', ['eval', '--gt', '{S}/dup.json',
                                                          '--pred', '{S}/none.json'],
           says=['dup.json', 'repeats'], setup=ytvis_repeated_id),
      case('convert-torch pth without torch', ['convert-torch', '{S}/w.pth', '--out', '{S}/o'],
           says=['w.pth', 'pip install torch'], setup=_fake_outputs,
           env={'PYTHONPATH': '{S}/no_torch'}),
      case('bench json under a file', ['bench', '--what', 'tracker', '--json',
                                       '{S}/notes.txt/b.json'], says=['notes.txt']),
  ]


# ------------------------------------------------------------------ running a case

def _snapshot(root):
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      p = os.path.join(d, f)
      with open(p, 'rb') as fh:
        out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
  return out


def run_case(c, work):
  s = tempfile.mkdtemp(dir=work, prefix='case-')
  (c['setup'] or base)(s)
  before = _snapshot(s)
  argv = [a.replace('{S}', s) for a in c['argv']]
  t0 = time.perf_counter()
  try:
    env = {k: v.replace('{S}', s) for k, v in (c.get('env') or {}).items()}
    r = run(argv, cwd=s, timeout=c['timeout'], env=env)
    rc, err = r.returncode, r.stderr
  except subprocess.TimeoutExpired:
    rc, err = None, 'timeout'
  after = _snapshot(s)
  problems = []
  lost = [p for p, h in before.items() if after.get(p) != h and
          not any(p == x or p.startswith(x + os.sep) for x in c['replaces'])]
  if lost:
    problems.append(f'lost data: {lost[:3]}')
  if rc is None:
    problems.append('hang (timeout)')
  elif c['expect'] == OK and rc != 0:
    problems.append(f'exit {rc} for a valid run')
  elif c['expect'] == REFUSE and rc == 0:
    problems.append('exit 0 for a mistake (wrong result)')
  if 'Traceback (most recent call last)' in err:
    problems.append('traceback')
  if c['expect'] == REFUSE and rc:
    text = err.lower()
    missing = [w for w in c['says'] if w.lower() not in text]
    if missing:
      last = err.strip().splitlines()[-1] if err.strip() else ''
      problems.append(f'message lacks {missing}: {last[:200]!r}')
  shutil.rmtree(s, ignore_errors=True)
  return dict(name=c['name'], argv=' '.join(c['argv']), exit=rc,
              seconds=round(time.perf_counter() - t0, 1),
              last_line=(err.strip().splitlines() or [''])[-1][:300].replace(s, '{S}'),
              problems=problems)


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--json', default=None)
  p.add_argument('--only', default='', help='cases whose name holds this text')
  p.add_argument('--work', default=None, help='scratch folder (default: a temp one)')
  a = p.parse_args()
  from hvisnet_jax import atomic, provenance  # pylint: disable=g-import-not-at-top
  work = a.work or tempfile.mkdtemp(prefix='hvisnet-probe-')
  prepare(os.path.join(work, 'inputs'))
  rows = []
  for c in cases():
    if a.only and a.only not in c['name']:
      continue
    row = run_case(c, work)
    rows.append(row)
    print(f'{"FAIL" if row["problems"] else "ok  "} {row["name"]}: exit {row["exit"]} '
          f'{row["problems"] or row["last_line"][:120]}', flush=True)
  classes = {'lost data': 0, 'wrong result': 0, 'traceback': 0, 'hang': 0,
             'message': 0, 'valid run failed': 0}
  for r in rows:
    for pr in r['problems']:
      key = ('lost data' if pr.startswith('lost') else 'wrong result' if 'exit 0' in pr
             else 'traceback' if pr == 'traceback' else 'hang' if 'hang' in pr
             else 'valid run failed' if 'valid run' in pr else 'message')
      classes[key] += 1
  res = provenance.stamp(dict(cases=len(rows), failing=sum(bool(r['problems']) for r in rows),
                              by_class=classes, rows=rows))
  print(json.dumps({k: res[k] for k in ('cases', 'failing', 'by_class')}))
  if a.json:
    atomic.write_text(a.json, json.dumps(res, indent=1))


if __name__ == '__main__':
  main()
