"""The SSDLite graph's COCO-trained MobileNetV2 ported to Flax, and the mobile config that starts from it."""
import os

import jax
import numpy as np
import pytest

from conftest import REPO
from hvisnet_jax import config_defaults
from hvisnet_jax.interop import convert_tf
from hvisnet_jax.model import mobilenet_v2
from hvisnet_jax.training import trainer as train


@pytest.mark.parametrize('stride,size', [(1, (7, 9)), (2, (8, 10)), (2, (7, 9))])
def test_depthwise_conv_equals_grouped_convolution(stride, size):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, *size, 5))
  layer = mobilenet_v2.DepthwiseConv(3, stride)
  v = layer.init(jax.random.PRNGKey(1), x)
  ref = jax.lax.conv_general_dilated(x, v['params']['kernel'], (stride, stride), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                     feature_group_count=5)
  np.testing.assert_allclose(layer.apply(v, x), ref, rtol=1e-5, atol=1e-5)


def test_mobilenet_v2_features_match_the_tensorflow_graph(teacher_files):
  import tensorflow as tf
  path = teacher_files['detector']
  params, stats = convert_tf.mobilenet_v2_variables(path)
  graph_def = tf.compat.v1.GraphDef()
  with open(path, 'rb') as f:
    graph_def.ParseFromString(f.read())
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.import_graph_def(graph_def, name='')
  p = convert_tf.PREFIX
  names = [f'{p}expanded_conv_6/expansion_output:0', f'{p}expanded_conv_13/expansion_output:0',
           f'{p}Conv_1/Relu6:0']
  img = np.random.default_rng(0).uniform(-1, 1, (1, 224, 288, 3)).astype(np.float32)
  with tf.compat.v1.Session(graph=graph) as sess:
    ref = sess.run(names, {f'{p}MobilenetV2/input:0': img})
  out = mobilenet_v2.MobileNetV2().apply({'params': params, 'batch_stats': stats}, img)
  for key, r in zip(('c3', 'c4', 'c5'), ref):
    o = np.asarray(out[key])
    assert o.shape == r.shape
    assert np.linalg.norm(o - r) / np.linalg.norm(r) < 1e-4, key
    assert np.abs(o - r).max() / np.abs(r).max() < 1e-4, key


def test_not_the_ssdlite_graph_is_refused(tmp_path, teacher_files):
  bad = tmp_path / 'x.pb'
  bad.write_bytes(b'\x00garbage')
  with pytest.raises(ValueError, match='x.pb'):
    convert_tf.mobilenet_v2_variables(str(bad))


def _mobile_config():
  cfg = config_defaults.load_config(os.path.join(REPO, 'configs', 'hvisnet_mobile.py') +
                                    ':runlocal')
  cfg.model.backbone.pretrained = 'ssdlite_coco'
  cfg.loss.update(mask_samples=4, id_negatives=4)
  return cfg


def test_pretrained_backbone_loads_and_frozen_blocks_stay_fixed(teacher_files):
  from hvisnet_jax.synthetic import source as synthetic_source
  cfg = _mobile_config()
  source = synthetic_source.SyntheticSource('easy', 1, 4, 64, 96, 0, 4)
  state = train.create_train_state(cfg, jax.random.PRNGKey(0), source.num_ids, source.padded)
  params, _ = convert_tf.mobilenet_v2_variables(teacher_files['detector'])
  bb = state.params['model']['backbone']
  np.testing.assert_array_equal(bb['Conv_1']['conv']['kernel'], params['Conv_1']['conv']['kernel'])
  batch = source.batch(0, 2, 0)
  step = jax.jit(train.make_train_step(cfg))
  new, parts = step(state, batch, jax.random.PRNGKey(1))
  assert bool(parts['finite'])
  frozen = mobilenet_v2.frozen_modules(cfg.model.backbone.frozen_blocks)
  nb = new.params['model']['backbone']
  for name in bb:
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(bb[name]),
                                                    jax.tree.leaves(nb[name])))
    assert same == (name in frozen), name
  assert not np.array_equal(new.params['model']['head']['cls_logits']['kernel'],
                            state.params['model']['head']['cls_logits']['kernel'])
