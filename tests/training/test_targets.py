"""FCOS targets: level ranges, center sampling radius, ambiguity elimination, no NaN."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from hvisnet_jax import config_defaults
from hvisnet_jax.model import hvisnet as model
from hvisnet_jax.training import targets

H, W = 256, 256


def _run(boxes, centers, eliminate=True, valid=None):
  mc = config_defaults.model_config()
  tc = ml_collections.ConfigDict(dict(radius=1.5, eliminate_ambiguous=eliminate))
  boxes = jnp.asarray(boxes, jnp.float32)
  valid = jnp.ones(len(boxes), bool) if valid is None else jnp.asarray(valid)
  out = targets.fcos_targets(boxes, jnp.asarray(centers, jnp.float32), valid, mc, tc, H, W)
  locs, strides = model.locations(mc, H, W)
  return {k: np.asarray(v) for k, v in out.items()}, np.asarray(locs), np.asarray(strides)


def test_level_by_size_and_radius_around_center():
  boxes = [[10, 10, 50, 60], [100, 20, 220, 240]]       # small -> P3, large (max ltrb>128) -> P5
  cen = [[30, 35], [160, 130]]
  out, locs, strides = _run(boxes, cen)
  for g, (cx, cy) in enumerate(cen):
    sel = out['gt_index'] == g
    assert sel.any()
    s = strides[sel]
    # FCOS's per-location rule: max(l, t, r, b) lies in the location's level range.
    m = out['reg'][sel].max(1)
    ranges = {8: (0, 64), 16: (64, 128), 32: (128, 1e8)}
    assert all(ranges[int(st)][0] <= v <= ranges[int(st)][1] for st, v in zip(s, m))
    assert (np.abs(locs[sel, 0] - cx) < 1.5 * s).all() and (np.abs(locs[sel, 1] - cy) < 1.5 * s).all()
  assert set(strides[out['gt_index'] == 0]) == {8}
  assert 32 in set(strides[out['gt_index'] == 1]) and 8 not in set(strides[out['gt_index'] == 1])
  pos = out['labels'] == 1
  l, t, r, b = out['reg'][pos].T
  want = np.sqrt(np.minimum(l, r) / np.maximum(l, r) * np.minimum(t, b) / np.maximum(t, b))
  np.testing.assert_allclose(out['ctr'][pos], want, rtol=1e-5)
  assert (out['ctr'][~pos] == 0).all() and (out['gt_index'][~pos] == -1).all()


def test_ambiguous_positives_become_negatives():
  boxes = [[40, 40, 90, 140], [42, 42, 92, 142]]        # one behind the other
  cen = [[65, 90], [67, 92]]
  elim, _, _ = _run(boxes, cen, eliminate=True)
  keep, _, _ = _run(boxes, cen, eliminate=False)
  assert elim['ambiguous'].sum() > 0
  assert elim['labels'][elim['ambiguous']].sum() == 0
  assert keep['labels'].sum() == elim['labels'].sum() + elim['ambiguous'].sum()
  # FCOS's rule without elimination: the smaller box wins.
  assert (keep['gt_index'][elim['ambiguous']] == 0).all()
  # Separated sampling centers (what the inner center gives two overlapping people)
  # remove the ambiguity.
  apart, _, _ = _run(boxes, [[55, 70], [80, 120]], eliminate=True)
  assert apart['ambiguous'].sum() == 0 and apart['labels'].sum() > elim['labels'].sum()


def test_missing_center_invalid_and_no_instances():
  out, _, _ = _run([[10, 10, 50, 60], [100, 100, 150, 160]], [[np.nan, np.nan], [125, 130]])
  assert 0 not in out['gt_index'] and 1 in out['gt_index']
  out, _, _ = _run([[10, 10, 50, 60]], [[30, 35]], valid=[False])
  assert out['labels'].sum() == 0
  for v in out.values():
    assert np.isfinite(v.astype(float)).all()


def test_strategies():
  boxes = jnp.asarray([[0, 0, 10, 20]], jnp.float32)
  inner, cen = jnp.asarray([[2.5, 3.5]]), jnp.asarray([[4.0, 5.0]])
  np.testing.assert_allclose(targets.sampling_centers('box_center', boxes, inner, cen), [[5, 10]])
  assert targets.sampling_centers('inner_center', boxes, inner, cen) is inner
  assert targets.sampling_centers('mask_centroid', boxes, inner, cen) is cen
  with pytest.raises(ValueError, match='one of'):
    targets.sampling_centers('random', boxes, inner, cen)
