"""Tracker: Kalman arithmetic by hand, identities through occlusion, exits, crossings."""
import numpy as np
import pytest

from hvisnet_jax.tracking import masks
from hvisnet_jax.tracking import tracker as tr
from hvisnet_jax.tracking.kalman import CHI2_95_4DOF, CHI2_99_4DOF


def test_kalman_initiate_and_predict_by_hand():
  kf = tr.KalmanFilter()
  mean, cov = kf.initiate(np.array([10.0, 20.0, 0.5, 100.0]))
  np.testing.assert_array_equal(mean, [10, 20, 0.5, 100, 0, 0, 0, 0])
  # std: 2*h/20 = 10 (position, height), 1e-2 (aspect), 10*h/160 = 6.25 (velocities).
  np.testing.assert_allclose(np.diag(cov), [100, 100, 1e-4, 100, 39.0625, 39.0625, 1e-10,
                                            39.0625])
  mean[4] = 2.0                                  # moving right at 2 px/frame
  m2, c2 = kf.predict(mean, cov)
  np.testing.assert_allclose(m2[:4], [12, 20, 0.5, 100])
  # x: P_xx + P_vv + (h/20)^2 = 100 + 39.0625 + 25; x-v covariance: P_vv; v: P_vv + (h/160)^2.
  assert c2[0, 0] == pytest.approx(164.0625)
  assert c2[0, 4] == pytest.approx(39.0625)
  assert c2[4, 4] == pytest.approx(39.0625 + 0.390625)
  # Update with a measurement at the prediction keeps the mean and shrinks the covariance.
  m3, c3 = kf.update(m2, c2, m2[:4])
  np.testing.assert_allclose(m3, m2, atol=1e-9)
  assert c3[0, 0] < c2[0, 0]


def _emb(rng, n, dim=32):
  e = rng.normal(size=(n, dim))
  return e / np.linalg.norm(e, axis=1, keepdims=True)


def _run(frames, emb_noise=0.05, seed=0, config=None):
  """frames: list of lists of (person, box); returns per frame {person: track id}."""
  rng = np.random.default_rng(seed)
  people = {p for f in frames for p, _ in f}
  base = dict(zip(sorted(people), _emb(rng, len(people))))
  t = tr.Tracker(config)
  out = []
  for f in frames:
    boxes = np.array([b for _, b in f], float).reshape(-1, 4)
    embs = np.array([base[p] + emb_noise * rng.normal(size=32) for p, _ in f]).reshape(len(f), 32)
    assigned = t.update(boxes, np.full(len(f), 0.9), embs)
    out.append({f[i][0]: tid for i, tid in assigned.items()})
  return out


def _walk(x0, y0, vx, t, w=30, h=80):
  x = x0 + vx * t
  return [x, y0, x + w, y0 + h]


def test_identity_kept_through_full_occlusion():
  frames = [[('a', _walk(10, 50, 4, t))] if not 10 <= t < 20 else [] for t in range(35)]
  ids = _run(frames)
  before = {f['a'] for f in ids[1:10]}
  after = {f['a'] for f in ids[20:] if 'a' in f}
  assert len(before) == 1 and after == before


def test_identity_kept_through_leave_and_return():
  frames = []
  for t in range(60):
    if t < 20:
      frames.append([('a', _walk(500, 50, 6, t))])          # walks out past x = 620
    elif t < 35:
      frames.append([])                                     # out of the frame
    else:
      frames.append([('a', _walk(600, 50, -6, t - 35))])   # comes back, walking left
  ids = _run(frames)
  assert {f['a'] for f in ids[1:20]} == {f['a'] for f in ids[36:]}


def test_no_swap_when_two_people_cross():
  frames = [[('a', _walk(0, 50, 5, t)), ('b', _walk(200, 55, -5, t))] for t in range(40)]
  ids = _run(frames)
  a_ids = {f['a'] for f in ids[1:]}
  b_ids = {f['b'] for f in ids[1:]}
  assert len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids


def _side_by_side(config, b_top=48.0, b_leaning=False, frames=8):
  """a at [100, 50, 130, 130] and b standing half behind it, 12 px to the right, tracked
  together for `frames` frames; b's embedding is its own, or (b_leaning) already leans to
  a's, 0.6 a + 0.4 b. Returns the tracker, a's, b's and the leaning embedding, b's box
  and the two track ids."""
  rng = np.random.default_rng(1)
  ea, eb = _emb(rng, 2)
  leaning = 0.6 * ea + 0.4 * eb
  leaning /= np.linalg.norm(leaning)
  box_a, box_b = np.array([100., 50, 130, 130]), np.array([112., b_top, 142, 128])
  t = tr.Tracker(config)
  for _ in range(frames):
    got = t.update(np.stack([box_a, box_b]), np.full(2, 0.9),
                   np.stack([ea, leaning if b_leaning else eb]))
  return t, ea, eb, leaning, box_b, got[0], got[1]


@pytest.mark.parametrize('iou_weight,swaps', [(0.3, False), (0.0, True)])
def test_half_hidden_person_keeps_its_identity_by_position(iou_weight, swaps):
  """Two people standing side by side, b half behind a. When a is missed, b's detection
  leans to a's appearance (the occluder fills much of its box); appearance alone gives it
  a's track (the authors' cost, the default), the optional IoU term keeps it with b (seen
  in the simulated seq_hotel)."""
  t, ea, eb, _, box_b, id_a, id_b = _side_by_side(tr.TrackerConfig(iou_weight=iou_weight),
                                                  frames=6)
  mixed = 0.55 * ea + 0.45 * eb
  got = t.update(box_b[None], np.full(1, 0.9), mixed[None] / np.linalg.norm(mixed))
  assert got[0] == (id_a if swaps else id_b)


@pytest.mark.parametrize('gate,swaps', [(CHI2_99_4DOF, False), (CHI2_95_4DOF, True)])
def test_wider_motion_gate_keeps_a_half_hidden_person_whose_box_grows(gate, swaps):
  """b, half behind a, was detected shorter than a (its top hidden); when a is missed and
  b shows its full height, the authors' chi2 0.95 gate turns b's own track away and the
  detection (which looks partly like a) goes to a's track; the chi2 0.99 gate keeps it
  with b (seen in the simulated seq_hotel)."""
  t, _, _, leaning, _, id_a, id_b = _side_by_side(tr.TrackerConfig(motion_gate=gate),
                                                  b_top=64.0, b_leaning=True)
  got = t.update(np.array([[112., 48, 142, 128]]), np.full(1, 0.9), leaning[None])
  assert got[0] == (id_a if swaps else id_b)


@pytest.mark.parametrize('keep,swaps', [(True, False), (False, True)])
def test_tracked_track_keeps_the_detection_it_overlaps_from_a_lost_one(keep, swaps):
  """a is missed two frames running (its track is lost); b, half behind a, is detected
  with an embedding leaning to a's. Appearance alone gives the detection to a's lost
  track; with tracked_keeps_overlap b's track, seen a frame ago and whose predicted box
  covers the detection, keeps it."""
  t, _, eb, leaning, box_b, id_a, id_b = _side_by_side(
      tr.TrackerConfig(tracked_keeps_overlap=keep))
  assert t.update(box_b[None], np.full(1, 0.9), eb[None]) == {0: id_b}    # a missed
  got = t.update(box_b[None], np.full(1, 0.9), leaning[None])
  assert got[0] == (id_a if swaps else id_b)
  assert [x.track_id for x in t.lost] == ([id_b] if swaps else [id_a])


def test_new_identity_after_the_lost_buffer():
  cfg = tr.TrackerConfig(track_buffer=10)
  frames = [[('a', _walk(10, 50, 0, 0))] if t < 5 or t >= 30 else [] for t in range(40)]
  ids = _run(frames, config=cfg)
  assert ids[4]['a'] != ids[31]['a']


def test_zero_and_hundreds_of_detections():
  t = tr.Tracker()
  assert t.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 8))) == {}
  rng = np.random.default_rng(0)
  xy = rng.uniform(0, 2000, (300, 2))
  boxes = np.c_[xy, xy + rng.uniform(10, 60, (300, 2))]
  for _ in range(3):
    out = t.update(boxes + rng.normal(0, 0.5, boxes.shape), np.full(300, 0.9),
                   _emb(rng, 300))
  assert len(out) > 250 and len(set(out.values())) == len(out)


def test_low_scores_and_invalid_are_ignored():
  t = tr.Tracker()
  boxes = np.array([[0, 0, 10, 20], [50, 50, 60, 70], [100, 0, 110, 20]], float)
  out = t.update(boxes, np.array([0.9, 0.3, 0.9]), _emb(np.random.default_rng(1), 3),
                 valid=np.array([True, True, False]))
  assert set(out) == {0}


def test_track_id_map_keeps_masks_disjoint():
  lm = np.array([[-1, 0, 0], [1, 1, 2]])
  ids = masks.track_id_map(lm, {0: 7, 1: 9})
  np.testing.assert_array_equal(ids, [[0, 7, 7], [9, 9, 0]])


def test_non_finite_detections_are_dropped_and_never_reach_a_track():
  t = tr.Tracker()
  rng = np.random.default_rng(2)
  boxes = np.array([[np.nan, 0, 10, 20], [50, 50, 60, 70], [0, 0, 5, 5]], float)
  emb = _emb(rng, 3)
  emb[2, 0] = np.inf
  for _ in range(3):
    out = t.update(boxes, np.array([0.9, 0.9, 0.9]), emb)
  assert set(out) == {1}
  assert all(np.isfinite(tk.mean).all() for tk in t.tracked + t.lost)


@pytest.mark.parametrize('boxes,scores,emb,valid,message', [
    (np.zeros((2, 4)), np.zeros(3), np.zeros((2, 8)), None, r'scores must be \(2,\)'),
    (np.zeros((2, 4)), np.zeros(2), np.zeros((3, 8)), None, r'embeddings must be \(2, D\)'),
    (np.zeros((2, 4)), np.zeros(2), np.zeros(16), None, r'embeddings must be \(2, D\)'),
    (np.zeros((2, 5)), np.zeros(2), np.zeros((2, 8)), None, r'boxes must be \(N, 4\)'),
    (np.zeros((2, 4)), np.zeros(2), np.zeros((2, 8)), np.ones(3, bool), r'valid must be'),
])
def test_mismatched_inputs_name_the_argument_and_shape(boxes, scores, emb, valid, message):
  with pytest.raises(ValueError, match=message):
    tr.Tracker().update(boxes, scores, emb, valid)


def test_embedding_dimension_change_is_refused():
  t = tr.Tracker()
  t.update(np.array([[0, 0, 10, 20]], float), np.array([0.9]), np.ones((1, 8)))
  t.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 16)))      # nobody: nothing to check
  with pytest.raises(ValueError, match='dimension 16.*dimension 8'):
    t.update(np.array([[0, 0, 10, 20]], float), np.array([0.9]), np.ones((1, 16)))


def test_coasting_reports_a_short_miss_at_the_prediction_and_stops_after():
  t = tr.Tracker(tr.TrackerConfig(fps=25.0))            # coast_frames = 5
  assert t.config.coast_frames == 5
  e = _emb(np.random.default_rng(3), 1)
  for k in range(8):
    (tid,) = t.update(np.array([_walk(10, 50, 4, k)], float), np.array([0.9]), e).values()
  assert t.coasting() == {}                             # nobody missed
  for k in range(8, 16):
    t.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 32)))
    coast = t.coasting()
    if k - 7 <= 5:
      # Carried at the constant-velocity prediction (4 px per frame to the right).
      assert set(coast) == {tid}
      np.testing.assert_allclose(coast[tid], _walk(10, 50, 4, k), atol=3.0)
    else:
      assert coast == {}


def test_coasting_needs_an_established_track():
  t = tr.Tracker()
  e = _emb(np.random.default_rng(4), 1)
  t.update(np.array([[0, 0, 10, 20]], float), np.array([0.9]), e)
  t.update(np.array([[1, 0, 11, 20]], float), np.array([0.9]), e)
  t.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 32)))
  assert t.coasting() == {}                             # seen twice: not carried


def test_a_long_track_that_came_back_after_a_miss_coasts_through_the_next():
  """Coasting counts the frames a track was seen over its life: a reactivation does not
  make an established track new again (its next single miss is still bridged)."""
  t = tr.Tracker(tr.TrackerConfig(fps=25.0))
  e = _emb(np.random.default_rng(6), 1)
  nobody = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 32)))
  for k in range(8):
    (tid,) = t.update(np.array([_walk(10, 50, 4, k)], float), np.array([0.9]), e).values()
  t.update(*nobody)
  assert set(t.coasting()) == {tid}
  assert t.update(np.array([_walk(10, 50, 4, 9)], float), np.array([0.9]), e) == {0: tid}
  t.update(*nobody)                                     # missed again, right after coming back
  assert set(t.coasting()) == {tid}


def test_a_weak_detection_continues_a_track_but_never_starts_one():
  t = tr.Tracker(tr.TrackerConfig(low_det_thresh=0.1))
  e = _emb(np.random.default_rng(5), 2)
  for k in range(3):
    (tid,) = t.update(np.array([_walk(10, 50, 4, k)], float), np.array([0.9]), e[:1]).values()
  boxes = np.array([_walk(10, 50, 4, 3), [300, 50, 330, 130]], float)
  out = t.update(boxes, np.array([0.2, 0.3]), e)        # both below det_thresh 0.4
  assert out == {0: tid}                                # continued; the stranger not started
  out = t.update(boxes + [4, 0, 4, 0], np.array([0.05, 0.3]), e)
  assert out == {}                                      # below low_det_thresh: a miss


def test_mask_carrier_moves_the_last_mask_onto_free_pixels_only():
  carry = masks.MaskCarrier()
  id_map = np.zeros((20, 30), int)
  id_map[5:10, 2:6] = 7
  id_map[0:20, 20:30] = 9
  carry(id_map, {7: np.array([2, 5, 6, 10.0]), 9: np.array([20, 0, 30, 20.0])}, {})
  now = np.zeros((20, 30), int)
  now[0:20, 20:30] = 9                                  # 7 missed, 9 still there
  out = carry(now, {9: np.array([20, 0, 30, 20.0])}, {7: np.array([18, 6, 22, 11.0])})
  assert (out[6:11, 18:20] == 7).all()                  # moved 16 right, 1 down
  assert (out[:, 20:] == 9).all()                       # never over another person
  assert (out == 7).sum() == 2 * 5 and (now == 7).sum() == 0   # input left untouched


def test_multi_predict_equals_predict_one_by_one():
  kf = tr.KalmanFilter()
  rng = np.random.default_rng(6)
  states = [kf.initiate(np.array([rng.uniform(0, 500), rng.uniform(0, 500), 0.4,
                                  rng.uniform(20, 200)])) for _ in range(5)]
  states = [(m + np.r_[np.zeros(4), rng.normal(size=4)], c) for m, c in states]
  means, covs = kf.multi_predict(np.stack([m for m, _ in states]),
                                 np.stack([c for _, c in states]))
  for (m, c), m2, c2 in zip(states, means, covs):
    m1, c1 = kf.predict(m, c)
    np.testing.assert_allclose(m2, m1, rtol=1e-12)
    np.testing.assert_allclose(c2, c1, rtol=1e-12, atol=1e-12)


def test_weak_detections_are_ignored_by_default():
  t = tr.Tracker()
  e = _emb(np.random.default_rng(7), 1)
  for k in range(3):
    t.update(np.array([_walk(10, 50, 4, k)], float), np.array([0.9]), e)
  assert t.update(np.array([_walk(10, 50, 4, 3)], float), np.array([0.3]), e) == {}


@pytest.mark.parametrize('gallery_size,same_person', [(30, True), (0, False)])
def test_gallery_reidentifies_a_person_whose_average_drifted(gallery_size, same_person):
  """A half-hidden person's embedding leans to the occluder's for a while, and the EMA
  feature follows it; after a long absence only appearance links them back (reid_thresh),
  and only the gallery still holds how they looked before."""
  rng = np.random.default_rng(3)
  ea, eb = _emb(rng, 2)
  eb -= (eb @ ea) * ea                           # the occluder's appearance, unlike a's
  leaning = 0.1 * ea + eb / np.linalg.norm(eb)
  leaning /= np.linalg.norm(leaning)
  t = tr.Tracker(tr.TrackerConfig(gallery_size=gallery_size))
  box = np.array([100., 50, 130, 130])
  first = None
  for i in range(25):                            # 5 clear sightings, then 20 leaning ones
    got = t.update(box[None], np.full(1, 0.9), (ea if i < 5 else leaning)[None])
    first = first or got.get(0)
  assert got == {0: first}                       # followed through the drift by position
  for _ in range(t.config.reid_after_lost + 5):  # gone, longer than reid_after_lost
    t.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 32)))
  back = t.update(np.array([[400., 60, 430, 140]]), np.full(1, 0.9), ea[None])
  assert (back.get(0) == first) == same_person


def test_gallery_stays_bounded():
  rng = np.random.default_rng(0)
  e = _emb(rng, 1)[0]
  t = tr.Tracker(tr.TrackerConfig(gallery_size=5))
  for i in range(40):
    t.update(np.array([[10. + i, 50, 40 + i, 130]]), np.full(1, 0.9),
             (e + 0.05 * rng.normal(size=32))[None])
  assert len(t.tracked) == 1 and t.tracked[0].gallery.shape == (5, 32)
  assert t.tracked[0].gallery_count == 40
