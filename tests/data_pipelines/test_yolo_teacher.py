"""The YOLO-seg person teacher on real photos with true masks, and pseudo-labelling with it."""
import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from conftest import ccp_person
from hvisnet_jax import cli


# At 960 one pass boxes this 832-px-tall person from head to knees (the checkpoints were
# trained at 640): the teacher's 640 pass must take people that tall.
@pytest.mark.parametrize('size,masks', [(640, 'yolo'), (640, 'max'), (960, 'agree'),
                                        (640, 'pose')])
def test_teacher_traces_a_full_body_person(size, masks, yolo_files, shared_data):
  from hvisnet_jax.data_pipelines import yolo_teacher
  teacher = yolo_teacher.YoloSegTeacher(size=size, mask_source=masks)
  rgb, truth = ccp_person(shared_data)
  det, label = teacher(rgb, min_score=0.25)
  assert len(det.boxes) >= 1
  ious = [np.logical_and(label == i, truth).sum() / np.logical_or(label == i, truth).sum()
          for i in range(len(det.boxes))]
  assert max(ious) > 0.8
  best = int(np.argmax(ious))
  ys, xs = np.nonzero(truth)
  x1, y1, x2, y2 = det.boxes[best]
  assert abs(y1 - ys.min()) < 20 and abs(y2 - ys.max()) < 20     # the box spans head to feet
  assert abs(x1 - xs.min()) < 20 and abs(x2 - xs.max()) < 20


def test_blazepose_landmarks_land_on_the_person_in_frame_pixels(yolo_files, shared_data):
  import cv2
  from hvisnet_jax.data_pipelines import teacher as teacher_lib
  from hvisnet_jax.interop import packaged_files
  seg = teacher_lib.BlazePoseSegmenter(packaged_files.file_path(
      [f for f in packaged_files.FILES if f.name == 'segmenter'][0]))
  rgb, truth = ccp_person(shared_data)
  ys, xs = np.nonzero(truth)
  box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
  prob, window, pose = seg.segment_with_pose(rgb, box)
  assert pose.shape == (33, 3)
  vis = pose[pose[:, 2] >= 0.5]
  assert len(vis) >= 20                         # a whole person, facing the camera
  near = cv2.dilate(truth.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
  xi, yi = vis[:, 0].astype(int), vis[:, 1].astype(int)
  ok = (xi >= 0) & (xi < truth.shape[1]) & (yi >= 0) & (yi < truth.shape[0])
  assert ok.all() and near[yi, xi].mean() >= 0.9
  assert pose[0, 1] < pose[27, 1] and pose[0, 1] < pose[28, 1]     # the nose above the ankles
  assert teacher_lib.skeleton_distance(pose, box, window) is not None


def test_pseudo_label_with_the_yolo_teacher_tracks_both_players(tmp_path, yolo_files, shared_data):
  src = os.path.join(shared_data, 'real', 'clips', 'mmaction2_basketball_gym.mp4')
  out = str(tmp_path / 'pl')
  assert cli.main(['pseudo-label', src, '--out', out, '--every', '3', '--max-frames', '5',
                   '--teacher-size', '640', '--quiet']) == 0
  gt = json.load(open(os.path.join(out, 'annotations.json')))
  people = [a for a in gt['annotations'] if not a['iscrowd']]
  assert len(people) >= 2 and 'yolov5s-seg' in gt['info']['description']
  for t in range(5):
    segs = [a['segmentations'][t] for a in people if a['segmentations'][t]]
    if len(segs) > 1:
      assert mask_utils.decode(segs).astype(int).sum(-1).max() == 1     # no overlap


def test_teacher_size_must_be_a_multiple_of_32():
  from hvisnet_jax.data_pipelines import yolo_teacher
  with pytest.raises(ValueError, match='size 600: expected a multiple of 32'):
    yolo_teacher.YoloSegTeacher(size=600)
