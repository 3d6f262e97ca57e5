"""Where a Predictor comes from: a built-in model's name, an export folder (local or
gs://), a benchmark spec, or a config file with variables. Weights are laid over the
config's own shapes (`overlay`), so a missing or misshapen tensor is named."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hvisnet_jax import storage
from hvisnet_jax.inference import export as export_lib
from hvisnet_jax.model import hvisnet as model_lib

# Committed models: 'real' (the default; MobileNetV2 student distilled on real footage,
# configs/hvisnet_real.py) and 'synthetic' (tiny DLA, trained on synthetic cartoons).
MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models')
BUILT_IN_MODELS = ('real', 'synthetic')
DEFAULT_MODEL = 'real'


def model_dir(name_or_dir: Optional[str] = None) -> str:
  """A built-in model's name ('real', 'synthetic'; None = the default) or an export directory."""
  name_or_dir = name_or_dir or DEFAULT_MODEL
  if name_or_dir in BUILT_IN_MODELS:
    return os.path.join(MODELS_DIR, name_or_dir)
  return name_or_dir


@contextlib.contextmanager
def local_model_dir(name_or_dir: Optional[str] = None):
  """model_dir(name_or_dir) as a local folder: a remote export (gs://...) is downloaded into
  a temporary one for the duration."""
  directory = model_dir(name_or_dir)
  if not storage.is_remote(directory):
    yield directory
    return
  directory = storage.location(directory)
  if not storage.isfile(storage.join(directory, 'config.json')):
    raise FileNotFoundError(f'{directory}: not an exported model (no config.json)')
  with tempfile.TemporaryDirectory(prefix='hvisnet-model-') as tmp:
    storage.download_tree(directory, tmp)
    yield tmp


def overlay(base, loaded, source, path=()):
  """`base` with every leaf present in `loaded` replaced, checking names and shapes."""
  if not isinstance(loaded, dict):
    if not hasattr(base, 'shape') or tuple(base.shape) != tuple(np.shape(loaded)):
      raise ValueError(f'{source}: {"/".join(path)} has shape {np.shape(loaded)}, the config '
                       f'expects {getattr(base, "shape", "a sub-tree")}')
    return jnp.asarray(loaded, base.dtype)
  if not isinstance(base, dict):
    raise ValueError(f'{source}: {"/".join(path)} is a sub-tree, the config expects a tensor')
  out = dict(base)
  for k, v in loaded.items():
    if k not in base:
      raise ValueError(f'{source}: {"/".join(path + (k,))} does not exist in the model config')
    out[k] = overlay(base[k], v, source, path + (k,))
  return out


def load_export(directory: str = None):
  """An exported model (config.json + variables/): a directory, or a built-in model's
  name ('real', the default, or 'synthetic'; see BUILT_IN_MODELS)."""
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  if storage.is_remote(model_dir(directory)):
    with local_model_dir(directory) as local:
      return load_export(local)
  directory = model_dir(directory)
  cfg_path = os.path.join(directory, 'config.json')
  if not os.path.isfile(cfg_path):
    raise FileNotFoundError(f'{directory}: not an exported model (no config.json)')
  with open(cfg_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  # The shapes alone (no compile, no computation) are the template an export fills.
  base = jax.eval_shape(lambda: model_lib.init_variables(config.model, jax.random.PRNGKey(0)))
  loaded = export_lib.load_variables(os.path.join(directory, 'variables'))
  variables = overlay(base, loaded, directory)
  missing = [jax.tree_util.keystr(k) for k, v in jax.tree_util.tree_leaves_with_path(variables)
             if isinstance(v, jax.ShapeDtypeStruct)]
  if missing:
    raise ValueError(f'{directory}: the export lacks {len(missing)} tensors of its config '
                     f'(first: {missing[0]})')
  return predictor_lib.Predictor(config, variables)


def average_exports(first: str, second: str, weight: float):
  """A Predictor with the first export's config and (1 - weight) * first + weight * second
  of every weight (batch statistics too), in float32. Averaging a model with its own
  fine-tuning keeps most of what each does well (Wortsman et al., WiSE-FT, CVPR 2022);
  the two must share the model config, which is checked by name."""
  a, b = load_export(first), load_export(second)
  if a.config.model.to_json(sort_keys=True) != b.config.model.to_json(sort_keys=True):
    fa, fb = _flat(a.config.model.to_dict()), _flat(b.config.model.to_dict())
    diff = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
    raise ValueError(f'{second}: another model config than {first} (model.{diff[0]}: '
                     f'{fb.get(diff[0])!r} against {fa.get(diff[0])!r}); only exports of one '
                     'architecture can be averaged')
  va, vb = jax.device_get(a.variables), jax.device_get(b.variables)
  mean = jax.tree.map(lambda x, y: ((1.0 - weight) * np.asarray(x, np.float32) +
                                    weight * np.asarray(y, np.float32)), va, vb)
  a.set_variables(mean)
  return a


def _flat(d, prefix=''):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def load_spec(spec: str):
  """The benchmarks' model spec 'NAME_OR_DIR[@[SIZE[+SIZE...]][xN][cCROWD]]'
  ('real@352+800x300', 'real@c0'): an export (from_export) run at those input sizes,
  keeping N detections, with a crowd pass at short side CROWD (0 = none)."""
  name, _, size = spec.partition('@')
  size, _, crowd = size.partition('c')
  size, _, max_det = size.partition('x')
  try:
    sizes = [int(v) for v in size.split('+')] if size else None
    max_det = int(max_det) if max_det else None
    crowd = int(crowd) if crowd else None
  except ValueError:
    raise ValueError(f'model spec {spec!r}: expected NAME[@[SIZE[+SIZE...]][xN][cCROWD]], '
                     "e.g. 'real@352+800x300' or 'real@c0'") from None
  pred = load_export(None if name == DEFAULT_MODEL else name)
  pred.configure(input_size=sizes, max_detections=max_det, crowd_size=crowd)
  return pred


def load_files(config_spec: str, variables_path: str = None, seed: int = 0):
  """Config file[:arg] plus an orbax variables directory (see export_lib.save_variables).

  A checkpoint holding only some modules (e.g. the backbone from `hvisnet convert-torch`)
  fills those modules; the rest keep their initialisation from `seed`. Shapes must match
  the config, or the error names the first mismatched tensor.
  """
  from hvisnet_jax import config_defaults  # pylint: disable=g-import-not-at-top
  config = config_defaults.load_config(config_spec)
  variables = model_lib.init_variables(config.model, jax.random.PRNGKey(seed))
  if variables_path:
    loaded = export_lib.load_variables(variables_path)
    variables = overlay(variables, loaded, variables_path)
  from hvisnet_jax.inference import predictor as predictor_lib  # pylint: disable=g-import-not-at-top
  return predictor_lib.Predictor(config, variables)
