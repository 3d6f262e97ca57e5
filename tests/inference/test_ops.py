"""NMS, RoIAlign and pasting against straightforward NumPy references."""
import jax
import numpy as np
import pytest

from hvisnet_jax.inference import ops
from hvisnet_jax.model import blender


def _random_boxes(rng, n, size=100.0):
  xy = rng.uniform(0, size, (n, 2))
  wh = rng.uniform(2, size / 3, (n, 2))
  return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def _np_iou(a, b):
  lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
  inter = np.prod(np.clip(rb - lt, 0, None))
  union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
  return inter / union


def _np_nms(boxes, scores, thr):
  order = np.argsort(-scores, kind='stable')
  keep = []
  for i in order:
    if all(_np_iou(boxes[i], boxes[j]) <= thr for j in keep):
      keep.append(i)
  return keep


@pytest.mark.parametrize('seed', range(5))
def test_nms_matches_bruteforce(seed):
  rng = np.random.default_rng(seed)
  n = 200
  boxes = _random_boxes(rng, n)
  scores = rng.uniform(size=n).astype(np.float32)
  scores[:10] = scores[10:20]                       # ties resolve to the lower index
  valid = rng.uniform(size=n) > 0.2
  want = _np_nms(boxes[valid], scores[valid], 0.5)
  want = list(np.flatnonzero(valid)[want])
  idx, ok = jax.jit(ops.nms, static_argnums=(3, 4))(boxes, scores, valid, 0.5, 300)
  idx, ok = np.asarray(idx), np.asarray(ok)
  assert idx[ok].tolist() == want
  assert not ok[len(want):].any()
  # Truncated output keeps the first max_output of the same sequence.
  idx5, ok5 = ops.nms(boxes, scores, valid, 0.5, 5)
  assert np.asarray(idx5)[np.asarray(ok5)].tolist() == want[:5]


def test_nms_batched_frames_stop_on_their_own():
  """Under vmap (the predictor's batch) a frame with 3 boxes ends early, a frame with 200
  goes on: each equals its own NMS."""
  rng = np.random.default_rng(1)
  boxes = np.stack([_random_boxes(rng, 200), _random_boxes(rng, 200)])
  scores = rng.uniform(size=(2, 200)).astype(np.float32)
  valid = np.ones((2, 200), bool)
  valid[0, 3:] = False
  idx, ok = jax.jit(jax.vmap(lambda b, s, v: ops.nms(b, s, v, 0.5, 150)))(boxes, scores, valid)
  for f in range(2):
    want = list(np.flatnonzero(valid[f])[_np_nms(boxes[f][valid[f]], scores[f][valid[f]], 0.5)])
    assert np.asarray(idx[f])[np.asarray(ok[f])].tolist() == want[:150]
  assert np.asarray(ok[0]).sum() <= 3 < np.asarray(ok[1]).sum()


def test_nms_with_nothing_valid():
  boxes = _random_boxes(np.random.default_rng(0), 10)
  _, ok = ops.nms(boxes, np.ones(10), np.zeros(10, bool), 0.5, 4)
  assert not np.asarray(ok).any()


def _np_bilinear(f, y, x):
  h, w = f.shape[:2]
  if y < -1.0 or y > h or x < -1.0 or x > w:
    return np.zeros(f.shape[2])
  y, x = max(y, 0.0), max(x, 0.0)
  yl, xl = int(y), int(x)
  if yl >= h - 1:
    yh = yl = h - 1
    y = float(yl)
  else:
    yh = yl + 1
  if xl >= w - 1:
    xh = xl = w - 1
    x = float(xl)
  else:
    xh = xl + 1
  ly, lx = y - yl, x - xl
  hy, hx = 1 - ly, 1 - lx
  return hy * hx * f[yl, xl] + hy * lx * f[yl, xh] + ly * hx * f[yh, xl] + ly * lx * f[yh, xh]


def _np_roi_align(f, box, res, scale, sr):
  """torchvision roi_align (aligned=True), written as its C++ loops."""
  x1, y1, x2, y2 = np.asarray(box, np.float64) * scale - 0.5
  bh, bw = (y2 - y1) / res, (x2 - x1) / res
  out = np.zeros((res, res, f.shape[2]))
  for ph in range(res):
    for pw in range(res):
      acc = 0
      for iy in range(sr):
        for ix in range(sr):
          y = y1 + ph * bh + (iy + 0.5) * bh / sr
          x = x1 + pw * bw + (ix + 0.5) * bw / sr
          acc = acc + _np_bilinear(f, y, x)
      out[ph, pw] = acc / (sr * sr)
  return out


@pytest.mark.parametrize('sr', [1, 2])
def test_roi_align_matches_reference(sr):
  rng = np.random.default_rng(sr)
  feats = rng.normal(size=(12, 16, 3)).astype(np.float32)
  boxes = np.array([[4, 4, 40, 30], [0, 0, 64, 48], [-6, -6, 10, 8], [50, 30, 70, 60],
                    [20, 20, 20.5, 21]], np.float32)       # partly outside, tiny
  got = np.asarray(blender.roi_align(feats, boxes, 7, 0.25, sr))
  for b, g in zip(boxes, got):
    np.testing.assert_allclose(g, _np_roi_align(feats, b, 7, 0.25, sr), atol=1e-5)


def test_paste_reproduces_a_box_filling_mask():
  mask = np.ones((1, 8, 8), np.float32)
  box = np.array([[10.0, 5.0, 30.0, 25.0]], np.float32)
  pasted = np.asarray(ops.paste_masks(mask, box, 40, 50))[0]
  inside = pasted > 0.5
  ys, xs = np.nonzero(inside)
  assert (ys.min(), ys.max(), xs.min(), xs.max()) == (5, 24, 10, 29)
  np.testing.assert_allclose(pasted[8:22, 13:27], 1.0, atol=1e-6)


def test_label_map_prefers_first_valid_instance():
  probs = np.zeros((3, 4, 4), np.float32)
  probs[0, :2] = 0.9        # top rows: instance 0 (highest score)
  probs[1, 1:3] = 0.9       # overlaps row 1 with instance 0
  probs[2] = 0.9            # invalid instance covering everything
  lm, ok = ops.label_map(probs, np.array([True, True, False]), 0.5)
  np.testing.assert_array_equal(np.asarray(lm)[:, 0], [0, 0, 1, -1])
  np.testing.assert_array_equal(ok, [True, True, False])


def test_label_map_drops_hidden_duplicates():
  probs = np.zeros((3, 10, 10), np.float32)
  probs[0, 2:8, 2:8] = 0.9       # 36 px, the best detection of a person
  probs[1, 2:8, 3:8] = 0.8       # a duplicate: 30 px, all under instance 0
  probs[2, 2:8, 6:10] = 0.9      # a neighbour: 24 px, 12 of them visible
  lm, ok = ops.label_map(probs, np.ones(3, bool), 0.5, min_visible_fraction=0.5)
  lm = np.asarray(lm)
  np.testing.assert_array_equal(ok, [True, False, True])
  assert (lm == 1).sum() == 0 and (lm == 2).sum() == 12 and (lm == 0).sum() == 36
  lm0, ok0 = ops.label_map(probs, np.ones(3, bool), 0.5)      # disabled: duplicate stays
  np.testing.assert_array_equal(ok0, [True, True, True])
