"""Inner center: the exact definition, inside the mask, robust to odd masks."""
import numpy as np
import pytest

from hvisnet_jax.training import centers
from hvisnet_jax.synthetic import synth


def _bruteforce_inner(mask):
  """argmin over mask pixels of the sum of squared distances to every edge pixel."""
  edge = centers._edge(mask)
  ey, ex = np.nonzero(edge)
  ys, xs = np.nonzero(mask)
  cost = ((ys[:, None] - ey[None]) ** 2 + (xs[:, None] - ex[None]) ** 2).sum(1)
  i = int(np.argmin(cost))
  return xs[i] + 0.5, ys[i] + 0.5


def test_matches_definition_on_synthetic_people():
  video = synth.render_video(5, 0, 6, 96, 128, 'crowd')
  checked = 0
  for ms in video.masks.values():
    for m in ms:
      if m is not None:
        got = centers.inner_center(m)
        assert got == pytest.approx(_bruteforce_inner(m))
        assert m[int(got[1]), int(got[0])]
        checked += 1
  assert checked > 10


def test_c_shape_centroid_falls_outside_inner_center_does_not():
  m = np.zeros((40, 40), bool)
  m[5:35, 5:12] = m[5:12, 5:35] = m[28:35, 5:35] = True
  cx, cy = centers.mask_centroid(m)
  ix, iy = centers.inner_center(m)
  assert not m[int(cy), int(cx)]
  assert m[int(iy), int(ix)]


def test_degenerate_masks():
  one = np.zeros((10, 10), bool)
  one[3, 7] = True
  assert centers.inner_center(one) == (7.5, 3.5)
  assert np.isnan(centers.inner_center(np.zeros((10, 10), bool))).all()
  assert np.isnan(centers.mask_centroid(np.zeros((10, 10), bool))).all()
  two = np.zeros((20, 40), bool)
  two[5:15, 2:8] = two[5:15, 30:38] = True            # two components
  x, y = centers.inner_center(two)
  assert two[int(y), int(x)]
  full = np.ones((6, 6), bool)                        # touches the image border everywhere
  assert centers.inner_center(full) == pytest.approx(_bruteforce_inner(full))
  with pytest.raises(ValueError, match='2-D'):
    centers.inner_center(np.ones((2, 2, 2), bool))
