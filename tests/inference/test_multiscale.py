"""Several input sizes: each pass keeps the people of its height band, one NMS, by score."""
import os
import sys

import numpy as np
import pytest

from hvisnet_jax.inference import inputs
from hvisnet_jax.inference import multiscale
from hvisnet_jax.inference import predictor
from conftest import REPO, detecting_variables, tiny_config


def test_height_bands_split_people_between_passes_with_an_overlap():
  # Network pixels per frame pixel 0.5, 1 and 2: the larger passes keep people up to 400 px
  # of their input (400 and 200 frame px); each smaller pass from 80% of the next's limit.
  assert multiscale.height_bands([0.5, 1.0, 2.0], 400) == [(320.0, np.inf), (160.0, 400.0),
                                                           (0.0, 200.0)]
  assert multiscale.height_bands([1.0], 400) == [(0.0, np.inf)]
  with pytest.raises(ValueError, match='ascend'):
    multiscale.height_bands([1.0, 1.0], 400)


def _pass(boxes, scores, valid, slots=4):
  n = len(boxes)
  pad = lambda a, shape: np.concatenate([a, np.zeros((slots - n,) + shape, a.dtype)])[None]
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
  return dict(boxes=pad(boxes, (4,)), scores=pad(np.asarray(scores, np.float32), ()),
              embeddings=pad(np.arange(n * 2, dtype=np.float32).reshape(n, 2) + scores[0], (2,)),
              mask_logits=pad(np.full((n, 3, 3), scores[0], np.float32), (3, 3)),
              mask_boxes=pad(boxes + 1, (4,)),
              valid=pad(np.asarray(valid, bool), ()))


def test_merge_keeps_each_pass_band_removes_duplicates_and_orders_by_score():
  small = _pass([[0, 0, 10, 300],           # tall: kept from the small pass
                 [50, 0, 60, 30],           # short: left to the large pass
                 [100, 0, 110, 170],        # in the overlap, a duplicate of the large pass's
                 [200, 0, 210, 300]],       # tall but not valid
                [0.9, 0.8, 0.5, 0.95], [True, True, True, False])
  large = _pass([[50, 0, 60, 31],           # short: kept
                 [0, 0, 10, 250],           # too tall for this pass
                 [101, 0, 110, 171]],       # the overlap's duplicate, the higher score
                [0.7, 0.99, 0.6], [True, True, True])
  bands = [(160.0, np.inf), (0.0, 200.0)]
  out = multiscale.merge([small, large], bands, nms_iou=0.6, slots=5)
  ok = out['valid'][0]
  assert ok.tolist() == [True, True, True, False, False]
  np.testing.assert_allclose(out['scores'][0, ok], [0.9, 0.7, 0.6])
  np.testing.assert_allclose(out['boxes'][0, ok], [[0, 0, 10, 300], [50, 0, 60, 31],
                                                   [101, 0, 110, 171]])
  np.testing.assert_allclose(out['mask_boxes'][0, ok], out['boxes'][0, ok] + 1)
  # Instance arrays travel with their box: the large pass's masks hold its first score.
  np.testing.assert_allclose(out['mask_logits'][0, ok, 0, 0], [0.9, 0.7, 0.7])
  assert out['mask_logits'].shape == (1, 5, 3, 3) and out['embeddings'].shape == (1, 5, 2)
  # More candidates than slots: the best by score.
  top = multiscale.merge([small, large], bands, nms_iou=0.6, slots=2)
  np.testing.assert_allclose(top['scores'][0], [0.9, 0.7])


def test_a_predictor_at_two_sizes_keeps_each_person_from_one_pass(tiny_variables):
  cfg = lambda: tiny_config(score_thresh=0.0, min_visible_fraction=0.0,
                            multiscale_split_px=100)
  v = detecting_variables(tiny_variables)
  frame = np.random.default_rng(5).integers(0, 256, (100, 150, 3), dtype=np.uint8)
  both = predictor.Predictor(cfg(), v)
  both.configure(input_size=[96, 192], max_detections=30)
  assert both.input_sizes == (96, 192)
  out = both.predict(frame)
  assert out['label_map'].shape == (100, 150) and out['boxes'].shape == (30, 4)
  singles = []
  for size in (96, 192):
    p = predictor.Predictor(cfg(), v)
    p.configure(input_size=size, max_detections=30)
    o = p.predict(frame)
    singles.append(o['boxes'][o['valid']])
  # 192 px on a 100 px frame: the larger pass keeps people <= 100 / 1.92 = 52 px tall, the
  # smaller from 80% of that.
  lo, hi = 0.8 * 100 / 1.92, 100 / 1.92
  ok = out['valid']
  assert ok.any()
  from_pass = []
  for box in out['boxes'][ok]:
    h = box[3] - box[1]
    found = [k for k, b in enumerate(singles) if np.isclose(b, box, atol=1e-3).all(1).any()]
    assert found, box
    assert (0 in found and h >= lo) or (1 in found and h <= hi), (box, found)
    from_pass += found
  assert {0, 1} <= set(from_pass)        # both passes contributed
  s = out['scores'][ok]
  assert (np.diff(s) <= 0).all()
  labels = set(np.unique(out['label_map'])) - {-1}
  assert labels and labels <= set(np.flatnonzero(ok))


def test_input_sizes_must_ascend(tiny_variables):
  p = predictor.Predictor(tiny_config(), tiny_variables)
  with pytest.raises(ValueError, match='ascend'):
    p.configure(input_size=[192, 96])
  with pytest.raises(ValueError, match='>= 64'):
    p.configure(input_size=[96, 32])


def test_model_spec_names_an_export_its_input_sizes_and_detections():
  p = predictor.Predictor.from_spec('synthetic@160+224x5')
  assert p.input_sizes == (160, 224) and p.config.inference.max_detections == 5
  assert predictor.Predictor.from_spec('synthetic').input_sizes == (
      predictor.Predictor.from_export('synthetic').config.inference.min_size,)
  with pytest.raises(ValueError, match="'synthetic@big'.*NAME"):
    predictor.Predictor.from_spec('synthetic@big')


def test_crowd_frames_are_those_with_enough_small_confident_people(tiny_variables):
  p = predictor.Predictor(tiny_config(crowd_min_people=2, crowd_max_height_px=30,
                                      crowd_min_score=0.5), tiny_variables)
  scale = inputs.resize_plan(100, 150, p.config.inference)[0][0] / 100
  tall = lambda px: px / scale                  # frame pixels for px of the first pass's input
  frame_a = _pass([[0, 0, 5, tall(20)], [9, 0, 14, tall(29)], [20, 0, 25, tall(10)]],
                  [0.9, 0.6, 0.4], [True, True, False])            # two qualify
  frame_b = _pass([[0, 0, 5, tall(20)], [9, 0, 14, tall(31)], [20, 0, 25, tall(10)]],
                  [0.9, 0.6, 0.4], [True, True, True])             # too tall; scored too low
  out = {k: np.concatenate([frame_a[k], frame_b[k]]) for k in frame_a}
  assert p.crowd_frames_of(out, (100, 150)).tolist() == [True, False]


def test_a_first_pass_full_of_confident_people_is_a_crowd_whatever_their_size(tiny_variables):
  # Four slots; no one is small, so only the share of slots filled decides.
  tall_people = [[i * 10, 0, i * 10 + 5, 90] for i in range(4)]
  full = _pass(tall_people, [0.9, 0.8, 0.7, 0.6], [True] * 4)
  three = _pass(tall_people, [0.9, 0.8, 0.7, 0.4], [True] * 4)       # one scored too low
  two = _pass(tall_people, [0.9, 0.8, 0.7, 0.6], [True, True, False, False])
  out = {k: np.concatenate([full[k], three[k], two[k]]) for k in full}
  rule = lambda share: predictor.Predictor(tiny_config(
      crowd_min_people=2, crowd_max_height_px=30, crowd_min_score=0.5,
      crowd_full_share=share), tiny_variables).crowd_frames_of(out, (100, 150)).tolist()
  assert rule(1.0) == [True, False, False]
  assert rule(0.75) == [True, True, False]
  assert rule(0.0) == [False, False, False]           # 0: the size rule alone


def test_a_crowd_share_outside_zero_to_one_is_named(tiny_variables):
  with pytest.raises(ValueError, match='crowd_full_share.*got 80'):
    predictor.Predictor(tiny_config(crowd_size=192, crowd_full_share=80), tiny_variables)


def test_crowd_pass_is_two_sizes_on_crowded_frames_and_one_size_elsewhere(tiny_variables):
  cfg = lambda **kw: tiny_config(score_thresh=0.0, min_visible_fraction=0.0,
                                 multiscale_split_px=100, **kw)
  v = detecting_variables(tiny_variables)
  frames = np.random.default_rng(5).integers(0, 256, (2, 100, 150, 3), dtype=np.uint8)
  both = predictor.Predictor(cfg(), v)
  both.configure(input_size=[96, 192], max_detections=30)
  single = predictor.Predictor(cfg(), v)
  single.configure(input_size=96, max_detections=30)
  # Every frame qualifies (0 people needed): the crowd pass is the second size.
  always = predictor.Predictor(cfg(crowd_size=192, crowd_min_people=0,
                                   crowd_max_detections=30), v)
  assert always.input_sizes == (96,) and always.crowd_size == 192
  # No frame qualifies: one pass, as without a crowd pass.
  never = predictor.Predictor(cfg(crowd_size=192, crowd_min_people=10_000,
                                  crowd_full_share=0.0), v)
  for p in (always, never):
    p.configure(max_detections=30)
  for crowd, ref in ((always, both), (never, single)):
    got, want = crowd.predict_batch(frames), ref.predict_batch(frames)
    for b in range(2):
      ok = got['valid'][b]
      assert ok.sum() == want['valid'][b].sum() > 0
      np.testing.assert_allclose(got['boxes'][b][ok], want['boxes'][b][want['valid'][b]],
                                 atol=1e-4)
      np.testing.assert_array_equal(got['label_map'][b] >= 0, want['label_map'][b] >= 0)
  assert always.crowd_frames == 2 and never.crowd_frames == 0


def test_crowd_pass_settings_are_checked(tiny_variables):
  p = predictor.Predictor(tiny_config(crowd_size=192), tiny_variables)
  assert p.crowd_size == 192
  with pytest.raises(ValueError, match='must exceed the input size'):
    p.configure(crowd_size=64)
  with pytest.raises(ValueError, match='several input sizes'):
    p.configure(input_size=[96, 160], crowd_size=256)
  p.configure(input_size=[96, 160])             # the model's crowd pass gives way to both
  assert p.input_sizes == (96, 160) and p.crowd_size is None
  p.configure(input_size=224)                   # no longer larger than the input size: off
  assert p.crowd_size is None
  p.configure(input_size=96, crowd_size=0)
  assert p.crowd_size is None
  assert predictor.Predictor.from_spec('synthetic@160c224').crowd_size == 224
  assert predictor.Predictor.from_spec('synthetic@c0').crowd_size is None


def test_crowd_trigger_counts_each_rule_and_leaves_the_model_as_it_was(tiny_variables):
  sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
  import crowd_trigger  # pylint: disable=g-import-not-at-top
  frames = np.random.default_rng(2).integers(0, 256, (3, 100, 150, 3), dtype=np.uint8)
  # Every slot detects at threshold 0 (detecting_variables): full, with no small people.
  p = predictor.Predictor(tiny_config(score_thresh=0.0, min_visible_fraction=0.0,
                                      crowd_size=192, crowd_min_score=0.0,
                                      crowd_max_height_px=1, crowd_full_share=0.5),
                          detecting_variables(tiny_variables))
  got = crowd_trigger.count(p, iter(frames))
  assert got == dict(frames=3, size_rule=0, full_rule=3, either=3,
                     most_confident_people=p.config.inference.max_detections)
  assert (p.config.inference.crowd_full_share, p.config.inference.crowd_min_people) == (0.5, 8)
  at = crowd_trigger.count(p, iter(frames[:1]), heights=(1, 10**6))
  assert at['size_rule'] == 0 and at['size_rule_at'] == {'1': 0, '1e+06': 1}
  assert p.config.inference.crowd_max_height_px == 1
  p.config.inference.crowd_max_height_px = 10**6         # now every person is small
  assert crowd_trigger.count(p, iter(frames[:1]))['size_rule'] == 1


def test_crowd_trigger_names_a_missing_source_before_loading_a_model(tmp_path, capsys):
  sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
  import crowd_trigger  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'r.json'
  with pytest.raises(SystemExit) as e:
    crowd_trigger.main(['crowd_trigger.py', '--models', 'no/such/export', '--shared',
                        str(tmp_path), '--sources', 'videos/none.avi', '--json', str(out)])
  assert e.value.code == 2 and not out.exists()
  assert 'videos/none.avi' in capsys.readouterr().err
