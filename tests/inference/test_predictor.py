"""Predictor: fixed-size outputs at any frame size, mapped back to the frame; bad input."""
import os

import numpy as np
import pytest

from hvisnet_jax.inference import host_paste
from hvisnet_jax.inference import inputs
from hvisnet_jax.inference import postprocess
from hvisnet_jax.inference import predictor
from hvisnet_jax.model import blender
from conftest import REPO, assert_ok, detecting_variables, run_multidevice, tiny_config


@pytest.fixture(scope='module')
def pred(tiny_variables):
  return predictor.Predictor(tiny_config(score_thresh=0.0, min_visible_fraction=0.0),
                             detecting_variables(tiny_variables))


def _frames(n, h, w, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_resize_plan():
  icfg = tiny_config().inference       # min 96, max 160, divisible by 32
  assert inputs.resize_plan(100, 150, icfg) == ((96, 144), (96, 160))
  assert inputs.resize_plan(50, 400, icfg) == ((20, 160), (32, 160))   # long side capped


def test_configure_runs_frames_larger_in_the_models_proportion(tiny_variables):
  p = predictor.Predictor(tiny_config(score_thresh=0.0, min_visible_fraction=0.0),
                          detecting_variables(tiny_variables))
  p.configure(input_size=192, max_detections=7)      # tiny: min 96, max 160, 20 detections
  assert (p.config.inference.min_size, p.config.inference.max_size) == (192, 320)
  assert inputs.resize_plan(100, 150, p.config.inference) == ((192, 288), (192, 288))
  out = p.predict(_frames(1, 100, 150)[0])    # still in the frame's coordinates
  assert out['label_map'].shape == (100, 150) and out['boxes'].shape == (7, 4)
  b = out['boxes'][out['valid']]
  assert len(b) and (b[:, 2] <= 150).all() and (b[:, 3] <= 100).all()
  with pytest.raises(RuntimeError, match='before the first frame'):
    p.configure(input_size=256)
  fine = predictor.Predictor(tiny_config(score_thresh=0.0, min_visible_fraction=0.0,
                                         mask_resolution=56), detecting_variables(tiny_variables))
  assert fine.predict(_frames(1, 100, 150)[0])['mask_logits'].shape == (20, 56, 56)
  with pytest.raises(ValueError, match='>= 64'):
    predictor.Predictor(tiny_config(), tiny_variables).configure(input_size=32)
  with pytest.raises(ValueError, match='max detections'):
    predictor.Predictor(tiny_config(), tiny_variables).configure(max_detections=0)


def test_set_variables_keeps_the_compiled_shapes_and_uses_the_new_weights(tiny_variables):
  """The trainer's evaluators reuse one predictor: after set_variables it predicts what a new
  predictor with those weights predicts, in each of its input sizes, and compiles nothing."""
  import jax  # pylint: disable=g-import-not-at-top
  cfg = tiny_config(score_thresh=0.0, min_visible_fraction=0.0)
  first = detecting_variables(tiny_variables)
  second = detecting_variables(jax.tree.map(lambda x: x * 1.5, tiny_variables))
  frame = _frames(1, 90, 120, seed=4)[0]
  p = predictor.Predictor(cfg, first)
  p.configure(input_size=[96, 128])
  before = p.predict(frame)
  compiled = predictor.Predictor._run._cache_size()
  p.set_variables(second)
  after = p.predict(frame)
  assert predictor.Predictor._run._cache_size() == compiled
  fresh = predictor.Predictor(tiny_config(score_thresh=0.0, min_visible_fraction=0.0), second)
  fresh.configure(input_size=[96, 128])
  want = fresh.predict(frame)
  assert not np.allclose(before['scores'], want['scores'])
  for k in ('boxes', 'scores', 'valid', 'label_map'):
    np.testing.assert_allclose(after[k], want[k], rtol=1e-5, atol=1e-4, err_msg=k)


@pytest.mark.parametrize('hw', [(90, 120), (75, 61)])
def test_outputs_shapes_and_frame_coordinates(pred, hw):
  h, w = hw
  out = pred.predict(_frames(1, h, w)[0])
  n, r = 20, 28
  want = {'boxes': ((n, 4), np.float32), 'scores': ((n,), np.float32),
          'embeddings': ((n, 32), np.float32), 'valid': ((n,), np.bool_),
          'label_map': ((h, w), np.int32), 'mask_logits': ((n, r, r), np.float32),
          'mask_boxes': ((n, 4), np.float32)}
  assert {k: (v.shape, v.dtype) for k, v in out.items()} == want
  ok = out['valid']
  assert ok.any()           # slots whose boxes were clipped to nothing hold no mask: invalid
  b = out['boxes'][ok]
  assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
  assert (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
  assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
  s = out['scores'][ok]
  assert (np.diff(s) <= 0).all() and (s > 0).all() and (s <= 1).all()
  np.testing.assert_allclose(np.linalg.norm(out['embeddings'][ok], axis=1), 1, rtol=1e-5)


def test_masks_reach_past_their_boxes_into_the_grown_window(tiny_variables):
  """With box_margin, masks are blended and pasted in the box grown on every side: here
  every mask logit is 5, so each mask fills its window and covers pixels outside its box."""
  cfg = tiny_config(score_thresh=0.0, min_visible_fraction=0.0)
  cfg.model.blendmask.box_margin = 0.25
  out = predictor.Predictor(cfg, detecting_variables(tiny_variables)).predict(
      _frames(1, 90, 120, seed=3)[0])
  ok = out['valid']
  b, win = out['boxes'][ok], out['mask_boxes'][ok]
  np.testing.assert_allclose(win, np.asarray(blender.mask_window(b, 0.25)), atol=1e-3)
  lm = out['label_map']
  ys, xs = np.nonzero(lm >= 0)
  w, bx = out['mask_boxes'][lm[ys, xs]], out['boxes'][lm[ys, xs]]
  assert ((xs + 0.5 >= w[:, 0]) & (xs + 0.5 <= w[:, 2]) &
          (ys + 0.5 >= w[:, 1]) & (ys + 0.5 <= w[:, 3])).all()
  outside = (xs + 0.5 < bx[:, 0]) | (xs + 0.5 > bx[:, 2]) | (ys + 0.5 < bx[:, 1]) | (
      ys + 0.5 > bx[:, 3])
  assert outside.mean() > 0.1


def test_label_map_consistent_with_boxes(pred):
  """Every labelled pixel belongs to a valid instance and lies inside that instance's box."""
  out = pred.predict(_frames(1, 90, 120, seed=3)[0])
  lm = out['label_map']
  assert lm.min() >= -1 and lm.max() < len(out['valid'])
  ys, xs = np.nonzero(lm >= 0)
  ids = lm[ys, xs]
  assert out['valid'][ids].all()
  b = out['boxes'][ids]
  assert ((xs + 0.5 >= b[:, 0]) & (xs + 0.5 <= b[:, 2])).all()
  assert ((ys + 0.5 >= b[:, 1]) & (ys + 0.5 <= b[:, 3])).all()


def _device_paste(logits, boxes, valid, h, w, thresh, min_visible=0.0):
  lm, ok = postprocess.paste_and_label_in_jit(logits[None], boxes[None], valid[None], h, w, thresh,
                                       min_visible)
  return np.asarray(lm)[0], np.asarray(ok)[0]


@pytest.mark.parametrize('paste', [_device_paste, host_paste.paste_and_label],
                         ids=['device', 'host'])
def test_paste_and_label_gives_pixels_to_the_best_box(paste):
  """With all-positive mask logits each instance covers its box; a pixel inside several
  boxes goes to the first (highest-scoring) valid one, and invalid slots get nothing."""
  rng = np.random.default_rng(7)
  n, h, w = 6, 40, 50
  xy = rng.uniform(0, 30, (n, 2))
  boxes = np.concatenate([xy, xy + rng.uniform(5, 20, (n, 2))], 1).astype(np.float32)
  valid = np.array([True, True, False, True, True, False])
  logits = np.full((n, 8, 8), 10.0, np.float32)
  lm, ok = paste(logits, boxes, valid, h, w, 0.5)
  np.testing.assert_array_equal(ok, valid)
  cy, cx = np.mgrid[:h, :w] + 0.5
  want = np.full((h, w), -1)
  for i in reversed(range(n)):
    inside = (cx > boxes[i, 0]) & (cx < boxes[i, 2]) & (cy > boxes[i, 1]) & (cy < boxes[i, 3])
    want[inside & valid[i]] = i
  # Pixels whose centre lies within half a mask cell of an edge may differ (bilinear
  # fall-off); everywhere else the map must be exact.
  margin = np.zeros((h, w), bool)
  for i in np.flatnonzero(valid):
    cell = (boxes[i, 2:] - boxes[i, :2]) / 8
    near = lambda c, e, s: np.abs(c - e) < s / 2 + 1e-3
    margin |= (near(cx, boxes[i, 0], cell[0]) | near(cx, boxes[i, 2], cell[0]) |
               near(cy, boxes[i, 1], cell[1]) | near(cy, boxes[i, 3], cell[1]))
  np.testing.assert_array_equal(lm[~margin], want[~margin])
  assert (lm >= 0).sum() > 0.2 * h * w


@pytest.mark.parametrize('res', [28, 56])
def test_host_blend_equals_the_models_blend(res):
  """host_paste.blend (valid instances, separable matmuls) = blender.blend (jit, every
  slot), windows reaching past the bases' border included; invalid slots stay zero."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  mcfg = tiny_config().model
  k, m = mcfg.blendmask.num_bases, mcfg.blendmask.attn_size
  rng = np.random.default_rng(res)
  bases = rng.normal(size=(24, 40, k)).astype(np.float32)
  attn = rng.normal(size=(6, k * m * m)).astype(np.float32)
  windows = np.array([[10, 8, 90, 70], [-20, -15, 60, 40], [100, 50, 180, 110],
                      [3.3, 4.7, 9.1, 12.2], [0, 0, 160, 96], [5, 5, 6, 6]], np.float32)
  valid = np.array([True, True, True, True, True, False])
  want = np.asarray(blender.blend(jnp.asarray(bases), jnp.asarray(attn), jnp.asarray(windows),
                                  mcfg, res))
  got = host_paste.blend(bases, attn, windows, valid, m, res)
  assert got.shape == (6, res, res)
  np.testing.assert_allclose(got[valid], want[valid], atol=2e-4)
  assert not got[~valid].any()


def test_host_paste_equals_device_paste():
  """Same resampling: random masks, boxes partly outside the frame, tiny and invalid
  ones; label maps equal except where a probability sits at the threshold."""
  rng = np.random.default_rng(3)
  n, h, w, r = 12, 70, 90, 14
  xy = rng.uniform(-20, 80, (n, 2))
  wh = rng.uniform(0.5, 60, (n, 2))
  boxes = np.concatenate([xy, xy + wh], 1).clip(0, [w, h, w, h]).astype(np.float32)
  valid = rng.random(n) < 0.8
  logits = rng.normal(0, 3, (n, r, r)).astype(np.float32)
  lm_d, ok_d = _device_paste(logits, boxes, valid, h, w, 0.5)
  lm_h, ok_h = host_paste.paste_and_label(logits, boxes, valid, h, w, 0.5)
  np.testing.assert_array_equal(ok_h, ok_d)
  assert (lm_h >= 0).sum() > 0.1 * h * w
  assert (lm_h != lm_d).mean() < 1e-3


def test_host_paste_drops_hidden_duplicates_as_the_device_does():
  """min_visible_fraction: a duplicate under a kept instance is dropped; visibility is
  judged in the map of all valid instances (a dropped one still hides the next), and the
  final map holds the kept ones only."""
  boxes = np.array([[10, 10, 40, 40], [11, 11, 41, 41], [30, 10, 60, 40],
                    [38, 10, 50, 40]], np.float32)
  logits = np.full((4, 8, 8), 10.0, np.float32)
  valid = np.ones(4, bool)
  lm, ok = host_paste.paste_and_label(logits, boxes, valid, 50, 70, 0.5, 0.5)
  # 3 lies wholly under 0, 1 and 2 in the first map: none of it is visible.
  np.testing.assert_array_equal(ok, [True, False, True, False])
  assert (lm == 1).sum() == 0 and (lm == 3).sum() == 0
  assert (lm == 2).sum() == 20 * 30          # x 40..60 of its box: all that 0 left free
  lm_d, ok_d = _device_paste(logits, boxes, valid, 50, 70, 0.5, 0.5)
  np.testing.assert_array_equal(ok, ok_d)
  np.testing.assert_array_equal(lm, lm_d)
  rng = np.random.default_rng(11)
  xy = rng.uniform(0, 50, (15, 2))
  many = np.concatenate([xy, xy + rng.uniform(5, 30, (15, 2))], 1).astype(np.float32)
  noisy = rng.normal(1, 3, (15, 8, 8)).astype(np.float32)
  lm, ok = host_paste.paste_and_label(noisy, many, np.ones(15, bool), 60, 80, 0.5, 0.5)
  lm_d, ok_d = _device_paste(noisy, many, np.ones(15, bool), 60, 80, 0.5, 0.5)
  assert not ok.all()
  np.testing.assert_array_equal(ok, ok_d)
  assert (lm != lm_d).mean() < 1e-3


def test_predictor_paste_host_and_device_agree(pred):
  import copy
  cfg = copy.deepcopy(pred.config)
  cfg.inference.paste = 'device'
  on_device = predictor.Predictor(cfg, pred.variables)
  frame = _frames(1, 90, 120, seed=5)[0]
  a, b = pred.predict(frame), on_device.predict(frame)
  assert pred.config.inference.paste == 'host' and a['valid'].any()
  np.testing.assert_array_equal(a['valid'], b['valid'])
  assert (a['label_map'] != b['label_map']).mean() < 1e-3
  cfg.inference.update(paste='host', blend='device')     # blended in jit, pasted on the host
  c = predictor.Predictor(cfg, pred.variables).predict(frame)
  np.testing.assert_array_equal(a['valid'], c['valid'])
  np.testing.assert_allclose(a['mask_logits'][a['valid']], c['mask_logits'][c['valid']],
                             atol=1e-4)
  assert (a['label_map'] != c['label_map']).mean() < 1e-3
  cfg.inference.blend = 'gpu'
  with pytest.raises(ValueError, match="inference.blend is 'gpu'; expected 'host' or 'device'"):
    predictor.Predictor(cfg, pred.variables).predict(frame)
  cfg.inference.update(paste='gpu', blend='host')
  with pytest.raises(ValueError, match="inference.paste is 'gpu'; expected 'host' or 'device'"):
    predictor.Predictor(cfg, pred.variables).predict(frame)


def test_deterministic_and_batch_equals_single(pred):
  frames = _frames(2, 64, 80, seed=1)
  a = pred.predict_batch(frames)
  b = pred.predict_batch(frames)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  single = pred.predict(frames[1])
  np.testing.assert_allclose(single['boxes'], a['boxes'][1], atol=1e-3)
  np.testing.assert_array_equal(single['valid'], a['valid'][1])


def test_untrained_default_threshold_gives_no_detections(tiny_variables):
  out = predictor.Predictor(tiny_config(), tiny_variables).predict(_frames(1, 64, 64)[0])
  assert not out['valid'].any() and (out['label_map'] == -1).all()


@pytest.mark.parametrize('frame,match', [
    (np.zeros((64, 64), np.uint8), r'shape \(H, W, 3\)'),
    (np.zeros((64, 64, 4), np.uint8), r'shape \(H, W, 3\)'),
    (np.zeros((0, 64, 3), np.uint8), 'non-empty'),
    (np.full((64, 64, 3), np.nan, np.float32), 'non-finite'),
    (np.array([['a'] * 3] * 4).reshape(2, 2, 3), 'dtype'),
])
def test_bad_frames(pred, frame, match):
  with pytest.raises(ValueError, match=match):
    pred.predict(frame)


def test_bad_batch_rank(pred):
  with pytest.raises(ValueError, match=r'\(N, H, W, 3\)'):
    pred.predict_batch(np.zeros((64, 64, 3), np.uint8))


def test_from_files_overlays_a_partial_checkpoint(tmp_path, tiny_variables):
  import jax
  from hvisnet_jax.inference import export as export_lib
  cfg_path = os.path.join(REPO, 'configs', 'hvisnet_dla34.py') + ':runlocal'
  backbone = jax.tree.map(lambda x: np.asarray(x) + 1.0, {
      'params': {'backbone': tiny_variables['params']['backbone']}})
  export_lib.save_variables(str(tmp_path / 'ckpt'), backbone)
  p = predictor.Predictor.from_files(cfg_path, str(tmp_path / 'ckpt'))
  np.testing.assert_allclose(p.variables['params']['backbone']['base_layer_0']['kernel'],
                             backbone['params']['backbone']['base_layer_0']['kernel'])
  assert 'head' in p.variables['params']          # untouched modules keep their init
  bad = {'params': {'backbone': {'base_layer_0': {'kernel': np.zeros((3, 3, 3, 8))}}}}
  export_lib.save_variables(str(tmp_path / 'bad'), bad)
  with pytest.raises(ValueError, match=r'bad: params/backbone/base_layer_0/kernel has shape '
                     r'\(3, 3, 3, 8\), the config expects \(7, 7, 3, 8\)'):
    predictor.Predictor.from_files(cfg_path, str(tmp_path / 'bad'))


def test_two_cpu_devices_give_the_one_device_outputs(tmp_path):
  """`hvisnet track --cpu-devices 2`: a batch is split over the devices (padded to their
  count) and track_source sends chunks of two frames; outputs and tracks are unchanged."""
  import cv2  # pylint: disable=g-import-not-at-top
  folder = tmp_path / 'frames'
  folder.mkdir()
  for i, f in enumerate(_frames(5, 80, 112, seed=3)):      # odd: the last chunk is padded
    cv2.imwrite(str(folder / f'{i:03d}.png'), f)
  out = tmp_path / 'out.npz'
  assert_ok(run_multidevice(['predict', str(folder), str(out)], 2))
  z = np.load(out)
  assert (int(z['devices']), int(z['batch_size'])) == (2, 2)
  assert z['all/valid'].shape[0] == 3 and z['one/valid'].any()
  for k in ('boxes', 'scores', 'embeddings', 'mask_logits'):
    np.testing.assert_allclose(z[f'all/{k}'], z[f'one/{k}'], rtol=1e-5, atol=1e-5, err_msg=k)
  np.testing.assert_array_equal(z['all/valid'], z['one/valid'])
  np.testing.assert_array_equal(z['all/label_map'], z['one/label_map'])
  assert int(z['all/frames']) == int(z['one/frames']) == 5
  assert str(z['all/tracks']) == str(z['one/tracks']) and len(str(z['all/tracks'])) > 100


def test_export_replaces_only_an_earlier_export_and_never_deletes_other_files(
    tmp_path, tiny_variables):
  from hvisnet_jax.inference import export as export_lib
  pred = predictor.Predictor(tiny_config(), tiny_variables)
  mine = tmp_path / 'mine'
  mine.mkdir()
  (mine / 'notes.txt').write_text('keep')
  with pytest.raises(FileExistsError, match='mine: exists and is not an hvisnet export'):
    pred.export(str(mine))
  with pytest.raises(FileExistsError, match='mine: exists and is not an orbax checkpoint'):
    export_lib.save_variables(str(mine), tiny_variables)
  (tmp_path / 'a_file').write_text('x')
  with pytest.raises(FileExistsError, match='a_file: exists'):
    pred.export(str(tmp_path / 'a_file'))
  assert (mine / 'notes.txt').read_text() == 'keep'
  out = tmp_path / 'ex'
  pred.export(str(out))
  pred.export(str(out), dtype='bfloat16')              # an earlier export is replaced whole
  assert sorted(os.listdir(out)) == ['config.json', 'variables']
  assert sorted(os.listdir(tmp_path)) == ['a_file', 'ex', 'mine']   # no temporary left
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(out).st_mode & 0o777 == 0o777 & ~umask      # as mkdir makes it, not 0700
  predictor.Predictor.from_export(str(out))


def test_hvisnet_average_writes_the_weighted_mean_of_two_exports_of_one_architecture(
    tmp_path, tiny_variables, capsys):
  import jax  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import cli  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.model import hvisnet as model_lib  # pylint: disable=g-import-not-at-top
  a, b = tmp_path / 'a', tmp_path / 'b'
  predictor.Predictor(tiny_config(), tiny_variables).export(str(a))
  shifted = jax.tree.map(lambda x: np.asarray(x) + 1.0, tiny_variables)
  predictor.Predictor(tiny_config(score_thresh=0.3), shifted).export(str(b))
  out = tmp_path / 'mean'
  assert cli.main(['average', str(a), str(b), '--weight', '0.25', '--out', str(out)]) == 0
  mean = predictor.Predictor.from_export(str(out))
  for x, y in zip(jax.tree.leaves(jax.device_get(mean.variables)),
                  jax.tree.leaves(tiny_variables)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y) + 0.25, atol=1e-6)
  assert mean.config.inference.score_thresh == tiny_config().inference.score_thresh  # the first's
  # Refused by name: a weight outside [0, 1], an input as --out, another architecture.
  with pytest.raises(SystemExit) as e:           # argparse refuses it, naming the option
    cli.main(['average', str(a), str(b), '--weight', '1.5', '--out', str(out)])
  err = capsys.readouterr().err
  assert e.value.code == 2
  assert 'argument --weight: expected a number from 0 to 1, got 1.5' in err
  assert cli.main(['average', str(a), str(b), '--weight', '0.5', '--out', str(b)]) == 2
  assert 'is the input' in capsys.readouterr().err
  other = tiny_config()
  other.model.fpn_channels = other.model.fpn_channels * 2
  c = tmp_path / 'c'
  predictor.Predictor(other, model_lib.init_variables(other.model, jax.random.PRNGKey(0))
                      ).export(str(c))
  assert cli.main(['average', str(a), str(c), '--weight', '0.5', '--out', str(tmp_path / 'x')]) == 2
  err = capsys.readouterr().err
  assert 'another model config than' in err and 'fpn_channels' in err
  assert not (tmp_path / 'x').exists()
