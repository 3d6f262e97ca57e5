"""The PyTorch twin (benchmarks only) computes what the Flax model computes."""
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hvisnet_jax import config_defaults
from hvisnet_jax.model import hvisnet as model

pytestmark = pytest.mark.skipif(importlib.util.find_spec('torch') is None,
                                reason='torch is not installed (pip install torch==2.13.0)')


@pytest.mark.parametrize('which,hw', [('tiny', (96, 128)), ('paper', (64, 96))])
def test_every_head_matches_in_float32(which, hw):
  import torch
  from hvisnet_jax.interop import torch_model
  cfg = (config_defaults.tiny_model_config() if which == 'tiny'
         else config_defaults.model_config())
  variables = model.init_variables(cfg, jax.random.PRNGKey(1))
  # Move BN statistics, norm scales and biases off their initial 0 or 1, so that a wrongly
  # mapped tensor cannot hide behind a default (kernels keep their random init: a shared
  # positive shift would blow activations up through the deep backbone).
  leaves, tree = jax.tree.flatten(variables)
  keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
  variables = jax.tree.unflatten(tree, [x + 0.05 * jax.random.uniform(k, x.shape)
                                        if x.ndim <= 1 else x for x, k in zip(leaves, keys)])
  net = torch_model.HVISNet(cfg).eval()
  torch_model.load_flax_variables(net, variables)
  x = np.random.default_rng(0).uniform(0, 255, (2, *hw, 3)).astype(np.float32)
  ours = model.HVISNet(cfg).apply(variables, jnp.asarray(x))
  with torch.no_grad():
    ref = net(torch.from_numpy(x.transpose(0, 3, 1, 2)))
  pairs = [(f'level{i}.{k}', a[k], b[k]) for i, (a, b) in
           enumerate(zip(ours['levels'], ref['levels'])) for k in a]
  pairs += [(k, ours[k], ref[k]) for k in ('bases', 'semantic_logits')]
  for name, j, t in pairs:
    j, t = np.asarray(j), t.numpy().transpose(0, 2, 3, 1)
    assert j.shape == t.shape, name
    rel = np.abs(j - t).max() / max(np.abs(j).max(), 1e-12)
    assert rel < 1e-4, f'{name}: relative error {rel:.2e}'


def test_mismatched_variables_are_refused():
  from hvisnet_jax.interop import torch_model
  tiny = config_defaults.tiny_model_config()
  other = config_defaults.tiny_model_config()
  other.fpn_channels = 16
  variables = model.init_variables(other, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match='PyTorch shape'):
    torch_model.load_flax_variables(torch_model.HVISNet(tiny), variables)
