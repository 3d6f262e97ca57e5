"""HVISNet: DLA-34 + FPN (P3-P5) + FCOS head + BlendMask + identity-embedding branch.

Every number comes from docs/design.md ("The network"). The network returns raw dense
outputs; decoding, NMS and the blender live in `postprocess.py`, targets and losses in
their own modules, so this file is only the architecture.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from hvisnet_jax.model.dla import DLA
from hvisnet_jax.model.layers import conv, norm_layer
from hvisnet_jax.model.mobilenet_v2 import MobileNetV2

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

_head_init = nn.initializers.normal(0.01)   # FCOS/BlendMask heads: N(0, 0.01), bias 0


def _dtype(name: str):
  return {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}[name]


def resize_bilinear(x, hw):
  """Bilinear resize of NHWC maps, half-pixel centers (PyTorch align_corners=False)."""
  return jax.image.resize(x, (x.shape[0], hw[0], hw[1], x.shape[3]), 'bilinear',
                          antialias=False)


class FPN(nn.Module):
  """Top-down feature pyramid on C3-C5 -> P3-P5 (no P6/P7)."""
  channels: int = 256
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feats: Dict[str, jnp.ndarray]):
    init = nn.initializers.variance_scaling(1.0, 'fan_in', 'uniform')   # kaiming_uniform a=1
    lateral = {l: conv(self.channels, 1, use_bias=True, dtype=self.dtype, kernel_init=init,
                       name=f'lateral{l}')(feats[f'c{l}']) for l in (3, 4, 5)}
    top = lateral[5]
    outs = {5: top}
    for l in (4, 3):
      n, h, w, c = lateral[l].shape
      top = lateral[l] + jax.image.resize(top, (n, h, w, c), 'nearest')
      outs[l] = top
    return [conv(self.channels, 3, use_bias=True, dtype=self.dtype, kernel_init=init,
                 name=f'output{l}')(outs[l]) for l in (3, 4, 5)]


class Tower(nn.Module):
  """num_convs x (3x3 conv + norm + ReLU); shared across pyramid levels."""
  channels: int
  num_convs: int
  norm: str = 'gn'
  num_groups: int = 32
  train: bool = False
  bn_axis_name: Optional[str] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    for i in range(self.num_convs):
      x = conv(self.channels, 3, use_bias=self.norm == 'none', dtype=self.dtype,
               kernel_init=_head_init, name=f'conv{i}')(x)
      x = norm_layer(self.norm, self.train, axis_name=self.bn_axis_name,
                     num_groups=self.num_groups, dtype=self.dtype, name=f'norm{i}')(x)
      x = nn.relu(x)
    return x


class FCOSBlendHead(nn.Module):
  """FCOS towers with class / ltrb / centerness outputs and BlendMask attentions.

  Also holds the identity branch (paper Sec. III-A): parallel to the towers, two convs
  giving an embedding at every location of every level.

  With `dense_instance_outputs=False` the attentions and embeddings are not computed
  over the maps: each level returns the inputs of those convs instead ('box_tower', the
  box tower's output, and 'features', the FPN level), and `instance_outputs` computes them
  from 3x3 neighbourhoods at the few locations inference keeps (postprocess.detect).
  Same parameters, same numbers; on a CPU it saves the largest head conv (ours).
  """
  cfg: ml_collections.ConfigDict
  train: bool = False
  dtype: Any = jnp.float32
  dense_instance_outputs: bool = True

  def setup(self):
    h, bm, idc = self.cfg.head, self.cfg.blendmask, self.cfg.identity
    tower = lambda: Tower(h.channels, h.num_convs, h.norm, h.num_groups, self.train,
                          self.cfg.bn_axis_name, self.dtype)
    self.cls_tower, self.bbox_tower = tower(), tower()
    out_conv = lambda n, bias=nn.initializers.zeros: conv(
        n, 3, use_bias=True, dtype=self.dtype, kernel_init=_head_init, bias_init=bias)
    prior = -math.log((1 - h.prior_prob) / h.prior_prob)
    self.cls_logits = out_conv(self.cfg.num_classes, nn.initializers.constant(prior))
    # Ours: bias 1 (boxes start one stride from the location on each side). With FCOS's zero
    # bias the first boxes have ~zero area, a saddle of the GIoU loss where all its
    # gradients vanish; training then depends on luck to leave it (seen on CPU runs).
    self.bbox_pred = out_conv(4, nn.initializers.ones)
    self.ctrness = out_conv(1)
    self.top_layer = out_conv(bm.num_bases * bm.attn_size ** 2)
    self.id_conv1 = conv(idc.channels, 3, use_bias=True, dtype=self.dtype,
                         kernel_init=_head_init)
    self.id_conv2 = conv(idc.embedding_dim, 1, use_bias=True, dtype=self.dtype,
                         kernel_init=_head_init)
    self.scales = [self.param(f'scale{level}', nn.initializers.ones, (), jnp.float32)
                   for level in range(len(self.cfg.strides))]

  def _attention_and_embedding(self, box_tower, features):
    return (self.top_layer(box_tower).astype(jnp.float32),
            self.id_conv2(nn.relu(self.id_conv1(features))).astype(jnp.float32))

  def __call__(self, pyramid: Sequence[jnp.ndarray]):
    outputs = []
    for level, (x, stride) in enumerate(zip(pyramid, self.cfg.strides)):
      c, b = self.cls_tower(x), self.bbox_tower(x)
      # norm_reg_targets: the regression is in units of the stride.
      reg = nn.relu(self.bbox_pred(b).astype(jnp.float32) * self.scales[level]) * stride
      out = dict(cls_logits=self.cls_logits(c).astype(jnp.float32), bbox_reg=reg,
                 ctrness=self.ctrness(b).astype(jnp.float32))
      if self.dense_instance_outputs:
        out['top_feats'], out['embedding'] = self._attention_and_embedding(b, x)
      else:
        out['box_tower'], out['features'] = b, x
      outputs.append(out)
    return outputs

  def instance_outputs(self, box_patches, feature_patches):
    """(N, 3, 3, C) neighbourhoods of the box tower output and of the FPN level around N
    locations -> (top_feats (N, K*M*M), embedding (N, D)), what the dense maps hold there."""
    top, emb = self._attention_and_embedding(box_patches, feature_patches)
    return top[:, 1, 1], emb[:, 1, 1]


class BasisModule(nn.Module):
  """BlendMask bottom module: K bases at stride 4 from P3-P5 (+ optional semantic head)."""
  cfg: ml_collections.ConfigDict
  train: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, pyramid: Sequence[jnp.ndarray]):
    bm = self.cfg.blendmask
    norm = lambda name: norm_layer(bm.norm, self.train, axis_name=self.cfg.bn_axis_name,
                                   num_groups=self.cfg.head.num_groups, dtype=self.dtype,
                                   name=name)
    block = lambda x, name: nn.relu(norm(name + '_norm')(
        conv(bm.channels, 3, use_bias=bm.norm == 'none', dtype=self.dtype, name=name)(x)))
    p3_hw = pyramid[0].shape[1:3]
    x = None
    for i, p in enumerate(pyramid):
      y = block(p, f'refine{i}')
      if i > 0:
        y = resize_bilinear(y, p3_hw)
      x = y if x is None else x + y
    for i in range(bm.num_convs):
      x = block(x, f'tower{i}')
    x = resize_bilinear(x, (2 * p3_hw[0], 2 * p3_hw[1]))
    x = block(x, 'tower_up')
    bases = conv(bm.num_bases, 1, use_bias=True, dtype=self.dtype, name='bases')(x)
    out = dict(bases=bases.astype(jnp.float32))
    if bm.semantic_head:
      out['semantic_logits'] = conv(self.cfg.num_classes, 1, use_bias=True, dtype=self.dtype,
                                    name='semantic')(x).astype(jnp.float32)
    return out


class HVISNet(nn.Module):
  """Image (N, H, W, 3), float in [0, 255] RGB -> dense per-level outputs and bases.

  H and W must be multiples of the largest stride (32); the predictor pads to that.
  """
  cfg: ml_collections.ConfigDict
  train: bool = False
  dense_instance_outputs: bool = True     # False: see FCOSBlendHead (inference only)

  @nn.compact
  def __call__(self, images):
    dtype = _dtype(self.cfg.dtype)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'images must be (N, H, W, 3); got shape {images.shape}')
    if images.shape[1] % 32 or images.shape[2] % 32:
      raise ValueError(f'image height and width must be multiples of 32; got '
                       f'{images.shape[1]}x{images.shape[2]}')
    b = self.cfg.backbone
    if b.name == 'dla34':
      x = (images.astype(jnp.float32) - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
      feats = DLA(tuple(b.levels), tuple(b.channels), self.train, self.cfg.bn_axis_name, dtype,
                  name='backbone')(x.astype(dtype))
    elif b.name == 'mobilenet_v2':      # TF-slim preprocessing: [0, 255] -> [-1, 1]
      x = images.astype(jnp.float32) / 127.5 - 1.0
      feats = MobileNetV2(b.get('frozen_blocks', 0), dtype, name='backbone')(x.astype(dtype))
    else:
      raise ValueError(f"model.backbone.name must be 'dla34' or 'mobilenet_v2', got {b.name!r}")
    pyramid = FPN(self.cfg.fpn_channels, dtype, name='fpn')(feats)
    levels = FCOSBlendHead(self.cfg, self.train, dtype, self.dense_instance_outputs,
                           name='head')(pyramid)
    basis = BasisModule(self.cfg, self.train, dtype, name='basis')(pyramid)
    return dict(levels=levels, **basis)


def level_shapes(cfg: ml_collections.ConfigDict, height: int, width: int):
  """Feature-map (h, w) per level for a padded input of height x width."""
  return [(height // s, width // s) for s in cfg.strides]


def locations(cfg: ml_collections.ConfigDict, height: int, width: int):
  """Flattened (x, y) image coordinates of every location of every level: (L, 2), (L,)."""
  pts, strides = [], []
  for (h, w), s in zip(level_shapes(cfg, height, width), cfg.strides):
    ys, xs = jnp.meshgrid(jnp.arange(h) * s + s // 2, jnp.arange(w) * s + s // 2,
                          indexing='ij')
    pts.append(jnp.stack([xs.ravel(), ys.ravel()], -1))
    strides.append(jnp.full((h * w,), s))
  return jnp.concatenate(pts).astype(jnp.float32), jnp.concatenate(strides)


def flatten_levels(levels):
  """Per-level dicts of (N, h, w, C) maps -> dict of (N, L, C) arrays, levels concatenated."""
  return {k: jnp.concatenate([lv[k].reshape(lv[k].shape[0], -1, lv[k].shape[-1])
                              for lv in levels], axis=1) for k in levels[0]}


def frozen_param_mask(cfg: ml_collections.ConfigDict, params):
  """Same tree as `params` (the HVISNet params): True where the config freezes a parameter."""
  from hvisnet_jax.model import mobilenet_v2  # pylint: disable=g-import-not-at-top
  frozen = set()
  if cfg.backbone.name == 'mobilenet_v2':
    frozen = mobilenet_v2.frozen_modules(cfg.backbone.get('frozen_blocks', 0))
  def mark(path, _):
    return len(path) > 1 and path[0].key == 'backbone' and path[1].key in frozen
  return jax.tree_util.tree_map_with_path(mark, params)


def init_variables(cfg: ml_collections.ConfigDict, rng=None, image_size=(64, 64)):
  """Initialised variables ({'params', 'batch_stats'}) for the model config `cfg`."""
  rng = jax.random.PRNGKey(0) if rng is None else rng
  model = HVISNet(cfg, train=False)
  dummy = jnp.zeros((1, *image_size, 3), jnp.float32)
  return jax.jit(model.init)(rng, dummy)


def neighbourhoods(maps: Sequence[jnp.ndarray], flat_index):
  """3x3 neighbourhoods (N, 3, 3, C), zero outside the map, of N flattened locations.

  maps: one image's per-level (h, w, C) maps; flat_index (N,): indices into the levels'
  concatenated locations (the order of `locations` and `flatten_levels`).
  """
  out, start = 0.0, 0
  for m in maps:
    h, w, _ = m.shape
    local = flat_index - start
    here = (local >= 0) & (local < h * w)
    local = jnp.clip(local, 0, h * w - 1)
    y, x = local // w, local % w
    padded = jnp.pad(m, ((1, 1), (1, 1), (0, 0)))
    taps = jnp.arange(3)
    patch = padded[y[:, None, None] + taps[None, :, None], x[:, None, None] + taps[None, None, :]]
    out = out + jnp.where(here[:, None, None, None], patch, 0.0)
    start += h * w
  return out


def instance_outputs_at(cfg: ml_collections.ConfigDict, head_variables, box_tower, features,
                        flat_index):
  """top_feats and embeddings at `flat_index` of one image, from the per-level 'box_tower'
  and 'features' maps of a `dense_instance_outputs=False` head: what the dense head
  gives at those locations."""
  head = FCOSBlendHead(cfg, dtype=_dtype(cfg.dtype))
  return head.apply(head_variables, neighbourhoods(box_tower, flat_index),
                    neighbourhoods(features, flat_index), method=FCOSBlendHead.instance_outputs)
