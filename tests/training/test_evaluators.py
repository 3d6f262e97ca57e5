"""Evaluators named by the config: each entry of config.evals builds one from its module."""
import ml_collections
import pytest

from conftest import tiny_config, detecting_variables
from hvisnet_jax import evaluators
from hvisnet_jax.configs import hvisnet_real
from hvisnet_jax.inference import predictor


def test_entries_name_their_module_and_unknown_ones_are_refused():
  cfg = ml_collections.ConfigDict(dict(evals=dict(
      synthetic=dict(every=0), held=dict(evaluator='nothing_here', every=3))))
  with pytest.raises(ValueError, match=r"config.evals.held: no evaluator module 'nothing_here'"):
    evaluators.make(cfg)
  cfg.evals.held.every = 0
  assert evaluators.make(cfg) == []               # every 0: never built


def test_coco_masks_scores_a_predictor_on_real_photos(shared_data, tiny_variables):
  cfg = hvisnet_real.get_config('runlocal')
  cfg.evals.coco_val.root = f'{shared_data}/real/coco_mini'
  [(name, every, fn)] = evaluators.make(ml_collections.ConfigDict(dict(evals=dict(
      coco_val=cfg.evals.coco_val))))
  assert (name, every) == ('coco_val', 2)
  pred = predictor.Predictor(tiny_config(score_thresh=0.0),
                             detecting_variables(tiny_variables))
  scores = fn(pred)
  assert set(scores) == {'AP', 'AP50', 'AP75'}
  assert all(0.0 <= v <= 1.0 for v in scores.values())     # untrained: near 0, but scored
