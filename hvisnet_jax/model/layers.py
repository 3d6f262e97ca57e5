"""Small building blocks shared by the backbone and the heads.

Convolutions use explicit symmetric padding (k // 2) rather than 'SAME': for stride 2
'SAME' pads asymmetrically, which would break parity with PyTorch weights.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import flax.linen as nn
import jax.numpy as jnp


def conv(features: int, kernel: int, stride: int = 1, use_bias: bool = False,
         dtype: Any = jnp.float32, name: Optional[str] = None,
         kernel_init: Callable = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal'),
         bias_init: Callable = nn.initializers.zeros) -> nn.Conv:
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=use_bias, dtype=dtype,
                 param_dtype=jnp.float32, kernel_init=kernel_init, bias_init=bias_init,
                 name=name)


def norm_layer(kind: str, train: bool, *, axis_name: Optional[str] = None,
               num_groups: int = 32, dtype: Any = jnp.float32,
               name: Optional[str] = None) -> Callable:
  """Returns a norm module: 'bn' (optionally synced over `axis_name`), 'gn' or 'none'."""
  if kind == 'bn':
    # PyTorch BatchNorm2d defaults: eps 1e-5, momentum 0.1 (= flax momentum 0.9).
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        axis_name=axis_name if train else None, dtype=dtype,
                        param_dtype=jnp.float32, name=name)
  if kind == 'gn':
    return nn.GroupNorm(num_groups=num_groups, epsilon=1e-5, dtype=dtype,
                        param_dtype=jnp.float32, name=name)
  if kind == 'none':
    return lambda x: x
  raise ValueError(f"norm must be one of 'bn', 'gn', 'none'; got {kind!r}")
