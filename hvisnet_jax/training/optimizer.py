"""The optimizer: the learning-rate schedule, weight decay off norm parameters and biases,
frozen backbone blocks, gradient clipping (optax)."""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax

from hvisnet_jax.model import hvisnet as model_lib


def learning_rate_schedule(tcfg: ml_collections.ConfigDict):
  """Linear warm-up from warmup_factor * lr, then x decay_factor at each decay_at fraction."""
  boundaries = {int(f * tcfg.steps): tcfg.decay_factor for f in tcfg.decay_at}
  decay = optax.piecewise_constant_schedule(tcfg.lr, boundaries)
  warm = max(1, int(tcfg.warmup_steps))

  def schedule(step):
    frac = jnp.minimum(step / warm, 1.0)
    return decay(step) * (tcfg.warmup_factor + (1 - tcfg.warmup_factor) * frac)
  return schedule


def _decay_mask(params):
  """True where weight decay applies: everything except normalisation layers' parameters."""
  def walk(node):
    if isinstance(node, dict):
      if 'scale' in node:                       # BatchNorm / GroupNorm: scale and bias
        return {k: jax.tree.map(lambda _: False, v) for k, v in node.items()}
      return {k: walk(v) for k, v in node.items()}
    return True
  return walk(params)


def make_optimizer(tcfg: ml_collections.ConfigDict, mcfg: Optional[ml_collections.ConfigDict] = None):
  """The optimizer over {'model', 'extra'} params; parameters the model config freezes
  (model_lib.frozen_param_mask) get neither updates nor weight decay."""
  tx, sched = _base_optimizer(tcfg)
  if mcfg is None or mcfg.backbone.name != 'mobilenet_v2' or not mcfg.backbone.get('frozen_blocks', 0):
    return tx, sched
  def labels(params):
    frozen = model_lib.frozen_param_mask(mcfg, params['model'])
    return {'model': jax.tree.map(lambda f: 'frozen' if f else 'train', frozen),
            'extra': jax.tree.map(lambda _: 'train', params['extra'])}
  return optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()}, labels), sched


def _base_optimizer(tcfg: ml_collections.ConfigDict):
  sched = learning_rate_schedule(tcfg)
  chain = []
  if tcfg.grad_clip > 0:
    chain.append(optax.clip_by_global_norm(tcfg.grad_clip))
  if tcfg.optimizer == 'sgd':
    chain += [optax.add_decayed_weights(tcfg.weight_decay, mask=_decay_mask),
              optax.sgd(sched, momentum=tcfg.momentum)]
  elif tcfg.optimizer == 'adamw':
    chain.append(optax.adamw(sched, weight_decay=tcfg.weight_decay, mask=_decay_mask))
  else:
    raise ValueError(f"train.optimizer must be 'sgd' or 'adamw', got {tcfg.optimizer!r}")
  return optax.chain(*chain), sched
