"""Camera motion from sparse optical flow, and the tracker's predictions moved with it."""
import cv2
import numpy as np

from hvisnet_jax.tracking import camera_motion
from hvisnet_jax.tracking import kalman
from hvisnet_jax.tracking import tracker as tr


def _texture(h=480, w=640, seed=0):
  rng = np.random.default_rng(seed)
  img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 3)
  return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _similarity(scale, angle_deg, tx, ty, center=(320, 240)):
  a = cv2.getRotationMatrix2D(center, angle_deg, scale)
  a[:, 2] += (tx, ty)
  return a


def test_a_pan_and_zoom_is_recovered_and_the_people_are_ignored():
  first = _texture()
  truth = _similarity(1.03, 0.5, 12.0, -5.0)
  second = cv2.warpAffine(first, truth, (640, 480), borderMode=cv2.BORDER_REFLECT)
  # A "person" who moves against the camera: masked out, their pixels do not count.
  second[100:300, 200:260] = np.roll(second[100:300, 200:260], 40, axis=0)
  people = np.zeros((480, 640), bool)
  people[90:310, 190:270] = True
  cmc = camera_motion.CameraMotion()
  np.testing.assert_array_equal(cmc.estimate(first, people), camera_motion.IDENTITY)
  got = cmc.estimate(second, people)
  pts = np.array([[0, 0, 1], [640, 0, 1], [0, 480, 1], [640, 480, 1], [320, 240, 1]], float)
  np.testing.assert_allclose(pts @ got.T, pts @ truth.T, atol=1.5)


def test_a_still_camera_gives_the_identity_and_a_blank_frame_too():
  cmc = camera_motion.CameraMotion()
  f = _texture(seed=1)
  cmc.estimate(f)
  np.testing.assert_allclose(cmc.estimate(f.copy()), camera_motion.IDENTITY, atol=1e-3)
  blank = np.zeros((480, 640), np.uint8)
  cmc.estimate(blank)
  np.testing.assert_array_equal(cmc.estimate(blank), camera_motion.IDENTITY)


def test_warped_states_put_boxes_where_the_camera_moved_them():
  kf = kalman.KalmanFilter()
  box = np.array([100.0, 50.0, 140.0, 150.0])
  mean, cov = kf.initiate(kalman.tlbr_to_xyah(box))
  mean[4:6] = (3.0, 0.0)                             # moving right 3 px a frame
  warp = _similarity(2.0, 0.0, 10.0, 0.0, center=(0, 0))     # zoom x2, then 10 px right
  means, covs = kalman.warp_states(mean[None], cov[None], warp)
  np.testing.assert_allclose(kalman.xyah_to_tlbr(means[0][:4]), [210, 100, 290, 300],
                             atol=1e-6)
  np.testing.assert_allclose(means[0][4:6], [6.0, 0.0])
  assert np.all(np.linalg.eigvalsh(covs[0]) > 0)


def test_the_tracker_moves_every_prediction_with_the_camera():
  """A person standing still, then the camera pans 80 px and zooms 10% about the origin
  while they are missed: with the warp their track's prediction is where the camera put
  them; without it, where they were."""
  e = np.random.default_rng(2).normal(size=(1, 16))
  box = np.array([[300.0, 100, 340, 200]])
  warp = _similarity(1.1, 0.0, 80.0, 0.0, center=(0, 0))
  moved = np.array([300 * 1.1 + 80, 110, 340 * 1.1 + 80, 220])
  for use in (False, True):
    t = tr.Tracker()
    for _ in range(5):
      t.update(box, np.array([0.9]), e)
    t.update(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 16)), warp=warp if use else None)
    (track,) = t.lost
    np.testing.assert_allclose(track.tlbr, moved if use else box[0], atol=2.0)
