"""MobileNetV2 backbone (Sandler et al.) in Flax Linen, NHWC, for the real-time student.

Names follow the TensorFlow-slim graph of SSDLite-MobileNetV2 (COCO), whose weights
`convert_tf.py` ports: `Conv`, `expanded_conv`, `expanded_conv_1` .. `_16`, `Conv_1`, each
with `expand` / `depthwise` / `project` convs and their BatchNorm. Convolutions pad 'SAME'
as TensorFlow does (asymmetric for stride 2), so ported weights give the same features.

BatchNorm is frozen (running statistics, never updated): detection fine-tuning with a few
images per device cannot estimate batch statistics (detectron2's FrozenBN does the same).
Its scale and bias stay trainable. `frozen_blocks` stops gradients after the stem and the
first n blocks, which saves their backward pass on a CPU.

Outputs for the FPN (the layers SSDLite's own heads read, at strides 8/16/32):
  c3: expanded_conv_6/expansion_output (192 ch, stride 8)
  c4: expanded_conv_13/expansion_output (576 ch, stride 16)
  c5: Conv_1 (1280 ch, stride 32)
"""
from __future__ import annotations

from typing import Any, Dict

import flax.linen as nn
import jax
import jax.numpy as jnp

# (expansion t, channels c, repeats n, first stride s) of the paper's Table 2.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
TAPS = {6: 'c3', 13: 'c4'}          # block index whose expansion output feeds the FPN
BN_EPS = 1e-3                       # the TF graph's FusedBatchNorm epsilon


def block_name(i: int) -> str:
  return 'expanded_conv' if i == 0 else f'expanded_conv_{i}'


def _same_pads(size: int, kernel: int, stride: int):
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


class DepthwiseConv(nn.Module):
  """k x k depthwise convolution, 'SAME' padded as TensorFlow, as k*k shifted multiply-adds.

  XLA's CPU backend runs grouped convolutions (feature_group_count = channels) an order
  of magnitude slower than this fused elementwise form (measured: 615 ms vs ~60 ms for the
  backbone at 384x512 on 2 cores); on accelerators both are fine.
  """
  kernel_size: int = 3
  stride: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    k, s = self.kernel_size, self.stride
    c = x.shape[-1]
    kernel = self.param('kernel', nn.initializers.variance_scaling(2.0, 'fan_out', 'normal'),
                        (k, k, 1, c), jnp.float32).astype(self.dtype)
    _, h, w, _ = x.shape
    (pt, pb), (pl, pr) = _same_pads(h, k, s), _same_pads(w, k, s)
    xp = jnp.pad(x.astype(self.dtype), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = -(-h // s), -(-w // s)
    out = None
    for dy in range(k):
      for dx in range(k):
        tap = jax.lax.slice(xp, (0, dy, dx, 0),
                            (xp.shape[0], dy + (oh - 1) * s + 1, dx + (ow - 1) * s + 1, c),
                            (1, s, s, 1))
        term = tap * kernel[dy, dx, 0]
        out = term if out is None else out + term
    return out


class ConvBN(nn.Module):
  features: int
  kernel: int = 1
  stride: int = 1
  depthwise: bool = False
  relu6: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.depthwise:
      x = DepthwiseConv(self.kernel, self.stride, self.dtype, name='conv')(x)
    else:
      x = nn.Conv(self.features, (self.kernel, self.kernel), (self.stride, self.stride),
                  padding='SAME', use_bias=False, dtype=self.dtype, param_dtype=jnp.float32,
                  name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, dtype=self.dtype,
                     param_dtype=jnp.float32, name='bn')(x)
    return jnp.clip(x, 0, 6) if self.relu6 else x


class MobileNetV2(nn.Module):
  """Image normalised to [-1, 1] -> {'c3', 'c4', 'c5'}."""
  frozen_blocks: int = 0            # stop gradients after the stem and blocks < this
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x) -> Dict[str, jnp.ndarray]:
    feats = {}
    x = ConvBN(32, 3, 2, dtype=self.dtype, name='Conv')(x)
    i, cin = 0, 32
    for t, c, n, s in BLOCKS:
      for r in range(n):
        if i == self.frozen_blocks:
          x = jax.lax.stop_gradient(x)
        stride = s if r == 0 else 1
        name = block_name(i)
        y = x
        if t != 1:
          y = ConvBN(cin * t, dtype=self.dtype, name=f'{name}_expand')(y)
        if i in TAPS:
          feats[TAPS[i]] = y
        y = ConvBN(cin * t, 3, stride, depthwise=True, dtype=self.dtype,
                   name=f'{name}_depthwise')(y)
        y = ConvBN(c, relu6=False, dtype=self.dtype, name=f'{name}_project')(y)
        x = x + y if stride == 1 and cin == c else y
        i, cin = i + 1, c
    if self.frozen_blocks >= i:
      x = jax.lax.stop_gradient(x)
    feats['c5'] = ConvBN(1280, dtype=self.dtype, name='Conv_1')(x)
    return feats


def num_blocks() -> int:
  return sum(n for _, _, n, _ in BLOCKS)


def frozen_modules(frozen_blocks: int):
  """Names of the backbone submodules whose parameters `frozen_blocks` freezes."""
  if frozen_blocks <= 0:
    return set()
  names = {'Conv'}
  for i in range(min(frozen_blocks, num_blocks())):
    names |= {f'{block_name(i)}_{part}' for part in ('expand', 'depthwise', 'project')}
  if frozen_blocks > num_blocks():
    names.add('Conv_1')
  return names
