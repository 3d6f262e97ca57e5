"""Evaluators the trainer runs, named by the config (big_vision's way).

Each entry of `config.evals` names a module of this package by its key (or by its
`evaluator` field, so one module can serve two entries); the module's `build(cfg)` returns
fn(predictor) -> {metric: value}. The trainer runs it every `every` steps and at the end
(0 = never) and writes the values as eval/<name>/<metric>.
"""
from __future__ import annotations

import importlib
from typing import Callable, List, Tuple

Evaluator = Tuple[str, int, Callable]


def make(config) -> List[Evaluator]:
  """(name, every, fn) for every entry of config.evals with every > 0."""
  out = []
  for name, ecfg in (config.get('evals') or {}).items():
    if not ecfg.get('every'):
      continue
    module = ecfg.get('evaluator', name)
    try:
      lib = importlib.import_module(f'hvisnet_jax.evaluators.{module}')
    except ModuleNotFoundError:
      raise ValueError(f'config.evals.{name}: no evaluator module {module!r} in '
                       'hvisnet_jax/evaluators/') from None
    out.append((name, int(ecfg.every), lib.build(ecfg)))
  return out
