"""The optimizer: the learning-rate schedule (with the stages that follow the main run),
weight decay off norm parameters and biases, frozen backbone blocks, gradient clipping
(optax)."""
from __future__ import annotations

from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import optax

from hvisnet_jax.model import hvisnet as model_lib


def stages(tcfg: ml_collections.ConfigDict) -> List[Dict]:
  """`train.stages`, checked: the runs that follow the main one (train.steps at train.lr) in
  the same workdir, each {'steps': N, 'lr': LR} and optionally 'weights': {part: weight}
  of data.recipe's parts (the others keep theirs). A recipe's later stages (close-ups,
  full-body photos) so continue one command's run instead of a chain of fine-tunings."""
  out = []
  for i, st in enumerate(tcfg.get('stages', ()) or ()):
    st = dict(st)
    unknown = sorted(set(st) - {'steps', 'lr', 'weights'})
    if unknown:
      raise ValueError(f'train.stages[{i}]: unknown field(s) {unknown}; a stage has steps, lr '
                       'and optionally weights')
    if not isinstance(st.get('steps'), int) or st['steps'] < 1:
      raise ValueError(f'train.stages[{i}].steps must be a whole number >= 1, got '
                       f'{st.get("steps")!r}')
    if not isinstance(st.get('lr'), (int, float)) or not st['lr'] > 0:
      raise ValueError(f'train.stages[{i}].lr must be a number > 0, got {st.get("lr")!r}')
    weights = dict(st.get('weights') or {})
    bad = {k: w for k, w in weights.items() if not isinstance(w, (int, float)) or not w > 0}
    if bad:
      raise ValueError(f'train.stages[{i}].weights: every weight must be > 0, got {bad}')
    out.append(dict(steps=int(st['steps']), lr=float(st['lr']), weights=weights))
  return out


def total_steps(tcfg: ml_collections.ConfigDict) -> int:
  """The run's last step: the main run's train.steps plus every stage's."""
  return int(tcfg.steps) + sum(st['steps'] for st in stages(tcfg))


def stage_starts(tcfg: ml_collections.ConfigDict) -> List[int]:
  """The step at which each stage begins (the main run is stage 0, at step 0)."""
  starts = [0, int(tcfg.steps)]
  for st in stages(tcfg)[:-1]:
    starts.append(starts[-1] + st['steps'])
  return starts[:len(stages(tcfg)) + 1]


def _one_schedule(tcfg, steps: int, lr: float):
  """Linear warm-up from warmup_factor * lr, then x decay_factor at each decay_at fraction."""
  boundaries = {int(f * steps): tcfg.decay_factor for f in tcfg.decay_at}
  decay = optax.piecewise_constant_schedule(lr, boundaries)
  warm = max(1, int(tcfg.warmup_steps))

  def schedule(step):
    frac = jnp.minimum(step / warm, 1.0)
    return decay(step) * (tcfg.warmup_factor + (1 - tcfg.warmup_factor) * frac)
  return schedule


def learning_rate_schedule(tcfg: ml_collections.ConfigDict):
  """The main run's schedule, then each stage's own (warm-up and decays over its steps)."""
  parts = stages(tcfg)
  main = _one_schedule(tcfg, int(tcfg.steps), tcfg.lr)
  if not parts:
    return main
  schedules = [main] + [_one_schedule(tcfg, st['steps'], st['lr']) for st in parts]
  return optax.join_schedules(schedules, stage_starts(tcfg)[1:])


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
