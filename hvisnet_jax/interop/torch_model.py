"""The same HVISNet in PyTorch (NCHW), for JAX-vs-PyTorch benchmarks only.

Module attribute names mirror the Flax parameter paths (with `_N` suffixes as PyTorch
Sequential indices, the reference DLA naming), so `load_flax_variables` copies a Flax
checkpoint by rule. Torch is imported here only: nothing in the JAX package imports this.
"""
from __future__ import annotations

import math
import re
from typing import Dict

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def _conv(cin, cout, k, stride=1, bias=False):
  return nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias)


def _bn(c):
  return nn.BatchNorm2d(c, eps=1e-5)


class BasicBlock(nn.Module):
  def __init__(self, cin, cout, stride=1):
    super().__init__()
    self.conv1, self.bn1 = _conv(cin, cout, 3, stride), _bn(cout)
    self.conv2, self.bn2 = _conv(cout, cout, 3), _bn(cout)

  def forward(self, x, shortcut=None):
    shortcut = x if shortcut is None else shortcut
    y = F.relu(self.bn1(self.conv1(x)))
    return F.relu(self.bn2(self.conv2(y)) + shortcut)


class Root(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.conv, self.bn = _conv(cin, cout, 1), _bn(cout)

  def forward(self, *children):
    return F.relu(self.bn(self.conv(torch.cat(children, 1))))


class Tree(nn.Module):
  def __init__(self, levels, cin, cout, stride=1, level_root=False, root_dim=0):
    super().__init__()
    root_dim = root_dim or 2 * cout
    if level_root:
      root_dim += cin
    self.levels, self.level_root, self.stride = levels, level_root, stride
    self.project = None
    if levels == 1:
      self.tree1 = BasicBlock(cin, cout, stride)
      self.tree2 = BasicBlock(cout, cout, 1)
      self.root = Root(root_dim, cout)
      if cin != cout:
        self.project = nn.Sequential(_conv(cin, cout, 1), _bn(cout))
    else:
      self.tree1 = Tree(levels - 1, cin, cout, stride, root_dim=0)
      self.tree2 = Tree(levels - 1, cout, cout, 1, root_dim=root_dim + cout)

  def forward(self, x, shortcut=None, children=None):
    children = [] if children is None else children
    bottom = F.max_pool2d(x, self.stride, self.stride) if self.stride > 1 else x
    shortcut = self.project(bottom) if self.project is not None else bottom
    if self.level_root:
      children.append(bottom)
    if self.levels == 1:
      x1 = self.tree1(x, shortcut)
      x2 = self.tree2(x1)
      return self.root(x2, x1, *children)
    x1 = self.tree1(x, shortcut)
    children.append(x1)
    return self.tree2(x1, children=children)


class DLA(nn.Module):
  def __init__(self, levels, channels):
    super().__init__()
    self.base_layer = nn.Sequential(_conv(3, channels[0], 7), _bn(channels[0]), nn.ReLU())
    for lvl, stride in ((0, 1), (1, 2)):
      mods, cin = [], channels[max(lvl - 1, 0)] if lvl else channels[0]
      for i in range(levels[lvl]):
        mods += [_conv(cin, channels[lvl], 3, stride if i == 0 else 1), _bn(channels[lvl]),
                 nn.ReLU()]
        cin = channels[lvl]
      setattr(self, f'level{lvl}', nn.Sequential(*mods))
    for lvl in range(2, 6):
      setattr(self, f'level{lvl}', Tree(levels[lvl], channels[lvl - 1], channels[lvl], 2,
                                        level_root=lvl > 2))

  def forward(self, x):
    x = self.level1(self.level0(self.base_layer(x)))
    feats = []
    for lvl in range(2, 6):
      x = getattr(self, f'level{lvl}')(x)
      if lvl >= 3:
        feats.append(x)
    return feats


def _norm(kind, c, groups):
  return nn.GroupNorm(groups, c, eps=1e-5) if kind == 'gn' else (
      _bn(c) if kind == 'bn' else nn.Identity())


class Tower(nn.Module):
  def __init__(self, cin, c, n, norm, groups):
    super().__init__()
    self.n = n
    for i in range(n):
      setattr(self, f'conv{i}', _conv(cin if i == 0 else c, c, 3, bias=norm == 'none'))
      setattr(self, f'norm{i}', _norm(norm, c, groups))

  def forward(self, x):
    for i in range(self.n):
      x = F.relu(getattr(self, f'norm{i}')(getattr(self, f'conv{i}')(x)))
    return x


class Head(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    h, bm, idc = cfg.head, cfg.blendmask, cfg.identity
    c_in = cfg.fpn_channels
    self.cls_tower = Tower(c_in, h.channels, h.num_convs, h.norm, h.num_groups)
    self.bbox_tower = Tower(c_in, h.channels, h.num_convs, h.norm, h.num_groups)
    self.cls_logits = _conv(h.channels, cfg.num_classes, 3, bias=True)
    self.bbox_pred = _conv(h.channels, 4, 3, bias=True)
    self.ctrness = _conv(h.channels, 1, 3, bias=True)
    self.top_layer = _conv(h.channels, bm.num_bases * bm.attn_size ** 2, 3, bias=True)
    self.id_conv1 = _conv(c_in, idc.channels, 3, bias=True)
    self.id_conv2 = _conv(idc.channels, idc.embedding_dim, 1, bias=True)
    for i in range(len(cfg.strides)):
      self.register_parameter(f'scale{i}', nn.Parameter(torch.ones(())))
    self.strides = tuple(cfg.strides)
    nn.init.constant_(self.cls_logits.bias, -math.log((1 - h.prior_prob) / h.prior_prob))

  def forward(self, pyramid):
    out = []
    for i, (x, s) in enumerate(zip(pyramid, self.strides)):
      c, b = self.cls_tower(x), self.bbox_tower(x)
      out.append(dict(cls_logits=self.cls_logits(c),
                      bbox_reg=F.relu(self.bbox_pred(b) * getattr(self, f'scale{i}')) * s,
                      ctrness=self.ctrness(b), top_feats=self.top_layer(b),
                      embedding=self.id_conv2(F.relu(self.id_conv1(x)))))
    return out


class Basis(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    bm, c = cfg.blendmask, cfg.blendmask.channels
    self.norm_kind, self.groups, self.n = bm.norm, cfg.head.num_groups, bm.num_convs
    def block(name, cin):
      setattr(self, name, _conv(cin, c, 3, bias=bm.norm == 'none'))
      setattr(self, name + '_norm', _norm(bm.norm, c, cfg.head.num_groups))
    for i in range(3):
      block(f'refine{i}', cfg.fpn_channels)
    for i in range(bm.num_convs):
      block(f'tower{i}', c)
    block('tower_up', c)
    self.bases = _conv(c, bm.num_bases, 1, bias=True)
    self.semantic = _conv(c, cfg.num_classes, 1, bias=True) if bm.semantic_head else None

  def _block(self, name, x):
    return F.relu(getattr(self, name + '_norm')(getattr(self, name)(x)))

  def forward(self, pyramid):
    hw = pyramid[0].shape[-2:]
    x = None
    for i, p in enumerate(pyramid):
      y = self._block(f'refine{i}', p)
      if i:
        y = F.interpolate(y, size=hw, mode='bilinear', align_corners=False)
      x = y if x is None else x + y
    for i in range(self.n):
      x = self._block(f'tower{i}', x)
    x = F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)
    x = self._block('tower_up', x)
    out = dict(bases=self.bases(x))
    if self.semantic is not None:
      out['semantic_logits'] = self.semantic(x)
    return out


class FPN(nn.Module):
  def __init__(self, in_channels, c):
    super().__init__()
    for lvl, cin in zip((3, 4, 5), in_channels):
      setattr(self, f'lateral{lvl}', _conv(cin, c, 1, bias=True))
      setattr(self, f'output{lvl}', _conv(c, c, 3, bias=True))

  def forward(self, feats):
    lat = {l: getattr(self, f'lateral{l}')(f) for l, f in zip((3, 4, 5), feats)}
    top, outs = lat[5], {5: lat[5]}
    for l in (4, 3):
      top = lat[l] + F.interpolate(top, size=lat[l].shape[-2:], mode='nearest')
      outs[l] = top
    return [getattr(self, f'output{l}')(outs[l]) for l in (3, 4, 5)]


class HVISNet(nn.Module):
  """Input (N, 3, H, W) float RGB in [0, 255]; outputs as model.HVISNet, NCHW."""

  def __init__(self, cfg):
    super().__init__()
    b = cfg.backbone
    self.backbone = DLA(tuple(b.levels), tuple(b.channels))
    self.fpn = FPN(tuple(b.channels[3:6]), cfg.fpn_channels)
    self.head = Head(cfg)
    self.basis = Basis(cfg)

  def forward(self, images):
    x = (images - MEAN.to(images)) / STD.to(images)
    pyramid = self.fpn(self.backbone(x))
    return dict(levels=self.head(pyramid), **self.basis(pyramid))


def _torch_key(path) -> str:
  *mods, leaf = path
  name = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean',
          'var': 'running_var'}.get(leaf, leaf)
  parts = [re.sub(r'_(\d+)$', r'.\1', m) for m in mods]
  return '.'.join(parts + [name])


def load_flax_variables(model: HVISNet, variables: Dict) -> None:
  """Copies Flax {'params', 'batch_stats'} into the PyTorch model; every tensor must match."""
  import jax  # pylint: disable=g-import-not-at-top
  sd = model.state_dict()
  seen = set()
  for col in ('params', 'batch_stats'):
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables.get(col, {}))[0]:
      keys = tuple(p.key for p in path)
      if keys[0] == 'head' and keys[1].startswith('scale'):
        name = f'head.{keys[1]}'
      else:
        name = _torch_key(keys)
      arr = np.asarray(leaf, np.float32)
      if arr.ndim == 4:
        arr = arr.transpose(3, 2, 0, 1)
      if name not in sd:
        raise KeyError(f'Flax tensor {"/".join(keys)} has no PyTorch counterpart {name}')
      if tuple(sd[name].shape) != arr.shape:
        raise ValueError(f'{name}: PyTorch shape {tuple(sd[name].shape)} vs Flax {arr.shape}')
      sd[name] = torch.from_numpy(arr.copy())
      seen.add(name)
  missing = [k for k in sd if k not in seen and not k.endswith('num_batches_tracked')]
  if missing:
    raise KeyError(f'PyTorch tensors without a Flax value: {missing[:8]}')
  model.load_state_dict(sd)
