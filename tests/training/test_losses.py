"""Loss functions against their formulas, and no NaN on frames with nobody."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hvisnet_jax.training import losses


def test_focal_loss_formula():
  x, y = jnp.array([2.0, -1.0, 0.3]), jnp.array([1.0, 0.0, 0.0])
  p = jax.nn.sigmoid(x)
  want = [-0.25 * (1 - p[0]) ** 2 * np.log(p[0]), -0.75 * p[1] ** 2 * np.log(1 - p[1]),
          -0.75 * p[2] ** 2 * np.log(1 - p[2])]
  np.testing.assert_allclose(losses.focal_loss(x, y), want, rtol=1e-5)


def test_giou_ltrb():
  t = jnp.array([[2.0, 3.0, 4.0, 5.0]])
  np.testing.assert_allclose(losses.giou_loss_ltrb(t, t), [0.0], atol=1e-6)
  half = jnp.array([[1.0, 3.0, 2.0, 5.0]])      # same height, half the width, inside
  np.testing.assert_allclose(losses.giou_loss_ltrb(half, t), [0.5], atol=1e-6)
  assert float(losses.giou_loss_ltrb(jnp.zeros((1, 4)), t)[0]) == pytest.approx(1.0)


def test_batch_hard_triplet():
  e = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
  ids = jnp.array([1, 1, 2, 3])
  loss, n = losses.batch_hard_triplet(e, ids, jnp.ones(4, bool), margin=0.3)
  # Only samples 0 and 1 have a positive. Anchor 0: d(0,1)=0.632, nearest negative d(0,2)=1.414
  # -> 0; anchor 1: d(1,0)=0.632, nearest negative d(1,2)=0.894 -> 0.632-0.894+0.3 = 0.038.
  assert int(n) == 2
  d01, d12 = np.sqrt(0.04 + 0.36), np.sqrt(0.64 + 0.16)
  assert float(loss) == pytest.approx(max(0, d01 - d12 + 0.3) / 2, rel=1e-5)


def test_mask_targets_crop_resize():
  m = np.zeros((1, 32, 32), bool)
  m[0, 8:24, 8:16] = True                       # left half of the box is the mask
  t = np.asarray(losses.mask_targets(jnp.asarray(m), jnp.array([[8.0, 8.0, 24.0, 24.0]]), 8))
  np.testing.assert_array_equal(t[0, :, :4], 1)
  np.testing.assert_array_equal(t[0, :, 4:], 0)


def test_mask_window_grows_each_side_by_a_fraction_of_the_box():
  from hvisnet_jax.model import blender  # pylint: disable=g-import-not-at-top
  b = jnp.array([[10.0, 20.0, 30.0, 60.0]])
  np.testing.assert_allclose(blender.mask_window(b, 0.1), [[8.0, 16.0, 32.0, 64.0]])
  assert blender.mask_window(b, 0.0) is b


def test_mask_targets_in_a_grown_window_leave_the_margin_empty():
  """What the mask loss trains towards with box_margin 0.25: the person fills the middle
  of its window, the margin (outside the ground-truth mask) is background."""
  from hvisnet_jax.model import blender  # pylint: disable=g-import-not-at-top
  m = np.zeros((1, 48, 48), bool)
  m[0, 12:36, 12:36] = True
  win = blender.mask_window(jnp.array([[12.0, 12.0, 36.0, 36.0]]), 0.25)
  t = np.asarray(losses.mask_targets(jnp.asarray(m), win, 12))[0]
  np.testing.assert_array_equal(t[2:10, 2:10], 1)
  assert t[:2].sum() == t[10:].sum() == t[:, :2].sum() == t[:, 10:].sum() == 0


def test_label_components_keeps_the_largest_numbered_by_size():
  m = np.array([[1, 0, 1],
                [0, 0, 1],
                [1, 0, 0]], bool)
  lab = losses.label_components(m[None], max_components=2)[0]
  # 8-connected: the right pair is largest (1), then the first single (2); the third dropped.
  np.testing.assert_array_equal(lab, [[2, 0, 1], [0, 0, 1], [0, 0, 0]])
  diag = np.eye(4, dtype=bool)                         # diagonal touches are one component
  assert losses.label_components(diag[None], 4).max() == 1


def _target():
  t = np.zeros((12, 12), np.float32)
  t[2:10, 3:8] = 1
  return t


@pytest.mark.parametrize('case', ['exact', 'lone_fragment', 'split', 'empty_pred', 'both_empty'])
def test_connectivity_loss_follows_pp_humanseg(case):
  t = _target()
  logits = np.where(t > 0, 20.0, -20.0)
  if case == 'lone_fragment':     # one touching component (IoU 1) + one lone: 1 - 1 / (1 + 1)
    logits[0:2, 10:12] = 20.0
    want = 0.5
  elif case == 'split':           # two halves touch the one target part: 1 - mean of their IoUs
    logits[5, :] = -20.0
    want = 1 - (3 * 5 / 40 + 4 * 5 / 40) / 2
  elif case == 'empty_pred':
    logits[:] = -20.0
    want = 1.0
  elif case == 'both_empty':
    logits[:] = -20.0
    t[:] = 0
    want = 0.0
  else:
    want = 0.0
  got = float(losses.connectivity_loss(jnp.asarray(logits)[None], jnp.asarray(t)[None])[0])
  assert got == pytest.approx(want, abs=1e-4)


def test_connectivity_loss_gradient_pulls_a_split_mask_onto_its_target():
  t = _target()
  logits = np.where(t > 0, 1.0, -1.0).astype(np.float32)
  logits[5, 3:8] = -1.0                           # the target's row 5 is predicted off
  g = jax.grad(lambda x: losses.connectivity_loss(x[None], jnp.asarray(t)[None])[0])(
      jnp.asarray(logits))
  inside = (t > 0) & (logits > 0)
  assert float(g[inside].max()) < 0               # raise the probability inside the target
  assert np.isfinite(np.asarray(g)).all()
