"""Import a PyTorch DLA-34 state_dict (ucbdrive/dla or timm `dla34` naming) into Flax.

The Flax backbone uses the reference module names with Sequential indices folded in, so
the mapping is a rule: `level3.tree1.conv1.weight` <-> params/level3/tree1/conv1/kernel.
Tensors the reference carries but never uses (the classifier `fc.*`, the projections
ucbdrive defines on trees with more than one level, BN's `num_batches_tracked`) are
skipped; anything else missing, unexpected or mis-shaped is an error listing all of them.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, Mapping, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from hvisnet_jax.model.dla import DLA

_LEAF_TO_TORCH = {('params', 'kernel'): 'weight', ('params', 'scale'): 'weight',
                  ('params', 'bias'): 'bias', ('batch_stats', 'mean'): 'running_mean',
                  ('batch_stats', 'var'): 'running_var'}


class ConversionError(ValueError):
  """The state_dict does not match the expected architecture."""


def load_state_dict(path: str) -> Dict[str, np.ndarray]:
  """Reads a .pth/.pt (needs torch) or .npz file into {name: float32 ndarray}."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such file')
  if path.endswith('.npz'):
    with np.load(path) as z:
      return {k: np.asarray(z[k]) for k in z.files}
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConversionError(f'{path}: reading PyTorch files needs torch, which hvisnet does '
                          'not install: pip install torch==2.13.0 (CPU), or save the '
                          'state_dict as .npz where torch is installed') from None
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # torch raises many types for corrupt files
    raise ConversionError(f'{path}: not a readable PyTorch state_dict ({e})') from e
  if isinstance(obj, Mapping) and 'state_dict' in obj and isinstance(obj['state_dict'], Mapping):
    obj = obj['state_dict']
  if not isinstance(obj, Mapping):
    raise ConversionError(f'{path}: expected a state_dict (a mapping of tensor names to '
                          f'tensors), got {type(obj).__name__}')
  out = {}
  for k, v in obj.items():
    if hasattr(v, 'detach'):
      out[k[len('module.'):] if k.startswith('module.') else k] = v.detach().float().numpy()
  return out


def _torch_name(collection: str, path: Tuple[str, ...]) -> str:
  *modules, leaf = path
  parts = [re.sub(r'_(\d+)$', r'.\1', m) for m in modules]
  return '.'.join(parts + [_LEAF_TO_TORCH[(collection, leaf)]])


def _ignorable(key: str, expected: set) -> bool:
  if key.endswith('num_batches_tracked') or key.startswith('fc.'):
    return True
  m = re.match(r'(.*)\.project\.[01]\.', key)
  # ucbdrive defines `project` on every tree with in != out, but only leaf trees use it.
  return bool(m) and any(e.startswith(m.group(1) + '.tree1.tree1.') for e in expected)


def backbone_variables(state_dict: Mapping[str, np.ndarray], levels=(1, 1, 1, 2, 2, 1),
                       channels=(16, 32, 64, 128, 256, 512)) -> Dict[str, Any]:
  """Maps a DLA state_dict onto the Flax DLA's {'params', 'batch_stats'} (numpy arrays)."""
  shapes = jax.eval_shape(DLA(tuple(levels), tuple(channels)).init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 64, 64, 3)))
  flat = {(col,) + tuple(k.key for k in path): leaf
          for col in ('params', 'batch_stats')
          for path, leaf in jax.tree_util.tree_flatten_with_path(shapes[col])[0]}
  names = {key: _torch_name(key[0], key[1:]) for key in flat}
  expected = set(names.values())
  missing = sorted(expected - set(state_dict))
  unexpected = sorted(k for k in set(state_dict) - expected if not _ignorable(k, expected))
  bad_shape, out = [], {}
  for key, name in names.items():
    if name not in state_dict:
      continue
    t = np.asarray(state_dict[name], np.float32)
    if key[-1] == 'kernel':
      t = t.transpose(2, 3, 1, 0) if t.ndim == 4 else t
    if t.shape != flat[key].shape:
      bad_shape.append(f'{name}: expected {_torch_shape(key, flat[key].shape)}, got '
                       f'{tuple(state_dict[name].shape)}')
      continue
    node = out
    for p in key[:-1]:
      node = node.setdefault(p, {})
    node[key[-1]] = t
  if missing or unexpected or bad_shape:
    msg = [f'state_dict does not match DLA levels={tuple(levels)} channels={tuple(channels)} '
           '(expected ucbdrive/timm `dla34` naming, e.g. dla34-ba72cf86.pth):']
    for title, items in (('missing', missing), ('unexpected', unexpected),
                         ('wrong shape', bad_shape)):
      if items:
        shown = ', '.join(items[:12]) + (f', ... ({len(items)} in all)' if len(items) > 12 else '')
        msg.append(f'  {title} ({len(items)}): {shown}')
    raise ConversionError('\n'.join(msg))
  return out


def _torch_shape(key, shape):
  return (shape[3], shape[2], shape[0], shape[1]) if key[-1] == 'kernel' else tuple(shape)
