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
