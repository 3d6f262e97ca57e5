"""The SSDLite + BlazePose teacher on a real frame."""
import numpy as np



def test_teacher_finds_and_masks_the_people_of_a_real_frame(ssdlite_teacher, vtest_frame):
  from hvisnet_jax.data_pipelines import teacher as teacher_lib
  det, label = ssdlite_teacher(vtest_frame)
  assert len(det.boxes) >= 5                 # 6-7 people are visible in this frame
  assert label.shape == vtest_frame.shape[:2]
  for i, (x1, y1, x2, y2) in enumerate(det.boxes):
    ys, xs = np.nonzero(label == i)
    assert len(ys) > 50, f'person {i} has no mask'
    mx, my = 0.1 * (x2 - x1) + 1, 0.1 * (y2 - y1) + 1
    assert xs.min() >= x1 - mx and xs.max() <= x2 + mx and ys.min() >= y1 - my
    assert ys.max() <= y2 + my
  # most of a person's box centre column is person, not background
  full = teacher_lib.Teacher.detect.__get__(ssdlite_teacher)
  ssdlite_teacher.tiles = 0
  try:
    whole = full(vtest_frame)
  finally:
    ssdlite_teacher.tiles = 2
  assert len(det.boxes) > len(whole.boxes)   # tiles find people the 300x300 input misses


def test_tiles_cover_the_frame_with_overlap():
  from hvisnet_jax.data_pipelines import teacher as teacher_lib
  wins = teacher_lib.tile_windows(576, 768, 2)
  assert len(wins) == 4
  covered = np.zeros((576, 768), int)
  for x0, y0, x1, y1 in wins:
    assert x1 <= 768 and y1 <= 576
    covered[y0:y1, x0:x1] += 1
  assert covered.min() == 1 and covered.max() == 4


def test_pose_decides_pixels_two_people_claim_and_confidence_decides_the_rest():
  from hvisnet_jax.data_pipelines import teacher as teacher_lib
  # Two 10x10 windows overlapping in columns 6-9; A is more confident everywhere.
  a = (np.full((10, 10), 0.9, np.float32), (0, 0, 10, 10))
  b = (np.full((10, 10), 0.7, np.float32), (6, 0, 16, 10))
  cols = np.arange(16)[None].repeat(10, 0).astype(np.float32)
  dist_a = np.abs(cols[:, 0:10] - 2.0)          # A's skeleton: column 2
  dist_b = np.abs(cols[:, 6:16] - 8.0)          # B's skeleton: column 8
  plain = teacher_lib.paint((10, 16), [a, b], [0.9, 0.7])
  assert (plain[:, 6:10] == 0).all() and (plain[:, 10:] == 1).all()
  posed = teacher_lib.paint_by_pose((10, 16), [a, b], [0.9, 0.7], [dist_a, dist_b])
  # Columns 6-9: nearer B's skeleton (8) than A's (2) from column 6 on (4 vs 2 at 6).
  assert (posed[:, :6] == 0).all() and (posed[:, 6:] == 1).all()
  # A person without a skeleton: confidence decides, as paint does.
  assert (teacher_lib.paint_by_pose((10, 16), [a, b], [0.9, 0.7], [dist_a, None])
          == plain).all()


def test_skeleton_distance_is_zero_on_the_limbs_and_refuses_another_persons_pose():
  from hvisnet_jax.data_pipelines import teacher as teacher_lib
  pose = np.zeros((33, 3), np.float32)
  pose[11] = (20, 20, 1)                         # left shoulder
  pose[23] = (20, 60, 1)                         # left hip
  pose[12] = (30, 20, 1)
  pose[24] = (30, 60, 1)
  dist = teacher_lib.skeleton_distance(pose, (10, 10, 40, 70), (10, 10, 40, 70))
  assert dist.shape == (60, 30)
  assert dist[30, 10] == 0 and dist[30, 20] == 0           # on the torso's sides (x 20, 30)
  assert 4 <= dist[30, 25] <= 6                            # between them
  assert teacher_lib.skeleton_distance(pose, (100, 100, 140, 170), (100, 100, 140, 170)) is None
  pose[:, 2] = 0.1                                         # nothing visible
  assert teacher_lib.skeleton_distance(pose, (10, 10, 40, 70), (10, 10, 40, 70)) is None
