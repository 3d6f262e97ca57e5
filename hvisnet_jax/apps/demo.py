"""`hvisnet demo`, the built-in main job: the real model on a real clip shipped with the
package, and the synthetic model on a synthetic clip scored against its exact truth."""
from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Optional

from hvisnet_jax import atomic
from hvisnet_jax import evaluation
from hvisnet_jax.apps.track import track_to_dir


DEMO_CLIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'assets',
                         'basketball_gym.mp4')          # real, held out of training; CREDITS.md


def demo(out_dir: str, frames: int = 48, height: int = 240, width: int = 320, seed: int = 7,
         preset: str = 'easy', predictor=None, synthetic_predictor=None,
         real_clip: Optional[str] = DEMO_CLIP, progress: bool = True,
         overwrite: bool = False) -> Dict:
  """The built-in main job, two clips:

  real/       the real clip shipped with the package -> `predictor` (default: the built-in
              real model) + tracker: tracks.txt, results.json, render.mp4 (no ground truth);
  synthetic/  a synthetic video with exact ground truth -> `synthetic_predictor` (default:
              the built-in synthetic model) + tracker -> MOTS metrics.
  """
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.synthetic import synth
  predictor = predictor or predictor_lib.Predictor.from_export()
  synthetic_predictor = synthetic_predictor or predictor_lib.Predictor.from_export('synthetic')
  video = synth.render_video(seed, 0, frames, height, width, preset)
  out = {}
  with atomic.staged_output(out_dir, overwrite, kind='demo') as tmp:
    if real_clip:
      real = track_to_dir(real_clip, predictor, os.path.join(tmp, 'real'), save_video=True,
                          progress=progress)
      out['real'] = dict(clip=real_clip, **real)
    syn = os.path.join(tmp, 'synthetic')
    os.makedirs(os.path.join(syn, 'gt'))
    os.makedirs(os.path.join(syn, 'pred'))
    video.write_mp4(os.path.join(syn, 'input.mp4'))
    gt = video.ground_truth()
    evaluation.write_mots_txt(os.path.join(syn, 'gt', f'{video.name}.txt'), gt)
    track_dir = os.path.join(syn, 'track')
    res = track_to_dir(os.path.join(syn, 'input.mp4'), synthetic_predictor, track_dir,
                       save_video=True, progress=progress)
    pred = evaluation.read_mots_txt(os.path.join(track_dir, 'tracks.txt'), name=video.name,
                                    like=gt)
    evaluation.write_mots_txt(os.path.join(syn, 'pred', f'{video.name}.txt'), pred)
    os.replace(os.path.join(track_dir, 'render.mp4'), os.path.join(syn, 'render.mp4'))
    shutil.rmtree(track_dir)
    metrics = evaluation.evaluate_mots({video.name: gt}, {video.name: pred})
    with open(os.path.join(syn, 'metrics.json'), 'w') as f:
      json.dump(metrics, f, indent=2)
    out['synthetic'] = res
  return dict(metrics=metrics, stats=out['synthetic'], real=out.get('real'))
