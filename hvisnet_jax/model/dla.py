"""DLA-34 backbone (Yu et al., "Deep Layer Aggregation") in Flax Linen, NHWC.

Submodule names follow the reference PyTorch naming (ucbdrive/dla, timm `dla34`) with
`nn.Sequential` indices folded in (`base_layer.0` -> `base_layer_0`), so that
`convert_torch.py` maps a state_dict onto these parameters by rule, not by table.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from hvisnet_jax.model.layers import conv, norm_layer


class BasicBlock(nn.Module):
  """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU."""
  planes: int
  stride: int = 1
  train: bool = False
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, shortcut=None):
    if shortcut is None:
      shortcut = x
    bn = lambda name: norm_layer('bn', self.train, axis_name=self.bn_axis_name,
                                 dtype=self.dtype, name=name)
    y = conv(self.planes, 3, self.stride, dtype=self.dtype, name='conv1')(x)
    y = nn.relu(bn('bn1')(y))
    y = conv(self.planes, 3, 1, dtype=self.dtype, name='conv2')(y)
    y = bn('bn2')(y)
    return nn.relu(y + shortcut)


class Root(nn.Module):
  """Aggregation node: 1x1 conv over the concatenated children, BN, ReLU."""
  planes: int
  train: bool = False
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, *children):
    y = conv(self.planes, 1, dtype=self.dtype, name='conv')(jnp.concatenate(children, -1))
    y = norm_layer('bn', self.train, axis_name=self.bn_axis_name, dtype=self.dtype,
                   name='bn')(y)
    return nn.relu(y)


class Tree(nn.Module):
  """A DLA tree of `levels` levels of BasicBlocks with a root at the leaves' level."""
  levels: int
  in_planes: int
  planes: int
  stride: int = 1
  level_root: bool = False
  root_dim: int = 0
  train: bool = False
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, shortcut=None, children=None):
    kw = dict(train=self.train, bn_axis_name=self.bn_axis_name, dtype=self.dtype)
    root_dim = self.root_dim or 2 * self.planes
    if self.level_root:
      root_dim += self.in_planes
    children = [] if children is None else children
    bottom = x
    if self.stride > 1:
      bottom = nn.max_pool(x, (self.stride, self.stride), (self.stride, self.stride))
    if self.levels == 1 and self.in_planes != self.planes:
      # The reference also defines this projection on trees with levels > 1, where it is
      # never used; the converter skips those tensors.
      shortcut = conv(self.planes, 1, dtype=self.dtype, name='project_0')(bottom)
      shortcut = norm_layer('bn', self.train, axis_name=self.bn_axis_name,
                            dtype=self.dtype, name='project_1')(shortcut)
    else:
      shortcut = bottom
    if self.level_root:
      children.append(bottom)
    if self.levels == 1:
      x1 = BasicBlock(self.planes, self.stride, name='tree1', **kw)(x, shortcut)
      x2 = BasicBlock(self.planes, 1, name='tree2', **kw)(x1)
      return Root(self.planes, name='root', **kw)(x2, x1, *children)
    x1 = Tree(self.levels - 1, self.in_planes, self.planes, self.stride, root_dim=0,
              name='tree1', **kw)(x, shortcut)
    children.append(x1)
    return Tree(self.levels - 1, self.planes, self.planes, 1,
                root_dim=root_dim + self.planes, name='tree2', **kw)(x1, children=children)


class DLA(nn.Module):
  """DLA backbone returning the stride-8/16/32 feature maps (levels 3, 4, 5)."""
  levels: Sequence[int] = (1, 1, 1, 2, 2, 1)
  channels: Sequence[int] = (16, 32, 64, 128, 256, 512)
  train: bool = False
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x) -> Dict[str, jnp.ndarray]:
    kw = dict(train=self.train, bn_axis_name=self.bn_axis_name, dtype=self.dtype)
    bn = lambda name: norm_layer('bn', self.train, axis_name=self.bn_axis_name,
                                 dtype=self.dtype, name=name)
    ch, lv = self.channels, self.levels
    x = conv(ch[0], 7, dtype=self.dtype, name='base_layer_0')(x)
    x = nn.relu(bn('base_layer_1')(x))
    in_planes = ch[0]
    for level, stride in ((0, 1), (1, 2)):
      for i in range(lv[level]):
        x = conv(ch[level], 3, stride if i == 0 else 1, dtype=self.dtype,
                 name=f'level{level}_{3 * i}')(x)
        x = nn.relu(bn(f'level{level}_{3 * i + 1}')(x))
      in_planes = ch[level]
    feats = {}
    for level in range(2, 6):
      x = Tree(lv[level], in_planes, ch[level], 2, level_root=level > 2,
               name=f'level{level}', **kw)(x)
      in_planes = ch[level]
      if level >= 3:
        feats[f'c{level}'] = x
    return feats
