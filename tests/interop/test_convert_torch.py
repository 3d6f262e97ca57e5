"""PyTorch DLA-34 import: parity with timm's dla34 and loud failures on mismatches."""
import importlib.util
import os

import jax.numpy as jnp
import numpy as np
import pytest

from hvisnet_jax import cli
from hvisnet_jax.inference import export as export_lib
from hvisnet_jax.interop import convert_torch
from hvisnet_jax.model import dla

HAVE_TORCH = importlib.util.find_spec('torch') is not None
HAVE_TIMM = importlib.util.find_spec('timm') is not None
needs_torch = pytest.mark.skipif(
    not (HAVE_TORCH and HAVE_TIMM),
    reason='torch and timm are not installed (pip install torch==2.13.0; pip install '
           '--no-deps timm); the timm parity test needs them')


def _timm_dla34():
  import torch
  import torchvision_stub
  torchvision_stub.install()
  import timm
  torch.manual_seed(0)
  m = timm.create_model('dla34', pretrained=False, features_only=True, out_indices=(3, 4, 5))
  gen = torch.Generator().manual_seed(1)
  for mod in m.modules():     # non-trivial BN statistics, so eval-mode BN is exercised
    if isinstance(mod, torch.nn.BatchNorm2d):
      mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=gen) - 0.5)
      mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
      mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=gen) + 0.5)
      mod.bias.data.copy_(torch.rand(mod.bias.shape, generator=gen) - 0.5)
  return m.eval()


@pytest.fixture(scope='module')
def timm_model():
  return _timm_dla34()


@pytest.fixture(scope='module')
def state_dict(timm_model):
  return {k: v.numpy() for k, v in timm_model.state_dict().items()}


@needs_torch
def test_features_match_timm(timm_model, state_dict):
  import torch
  variables = convert_torch.backbone_variables(state_dict)
  x = np.random.default_rng(0).normal(size=(2, 3, 96, 128)).astype(np.float32)
  with torch.no_grad():
    ref = [r.numpy().transpose(0, 2, 3, 1) for r in timm_model(torch.from_numpy(x))]
  out = dla.DLA().apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
  for r, key, stride in zip(ref, ('c3', 'c4', 'c5'), (8, 16, 32)):
    o = np.asarray(out[key])
    assert o.shape == (2, 96 // stride, 128 // stride, r.shape[-1])
    rel = np.abs(o - r).max() / np.abs(r).max()
    assert rel < 1e-4, f'{key}: relative error {rel:.2e}'


@needs_torch
def test_ucbdrive_layout_is_accepted(state_dict):
  """ucbdrive/dla checkpoints also carry the classifier and unused projections."""
  sd = dict(state_dict)
  sd['fc.weight'] = np.zeros((1000, 512, 1, 1), np.float32)
  sd['fc.bias'] = np.zeros((1000,), np.float32)
  for lvl, (cin, cout) in (('level3', (64, 128)), ('level4', (128, 256))):
    sd[f'{lvl}.project.0.weight'] = np.zeros((cout, cin, 1, 1), np.float32)
    for stat in ('weight', 'bias', 'running_mean', 'running_var'):
      sd[f'{lvl}.project.1.{stat}'] = np.zeros((cout,), np.float32)
  a = convert_torch.backbone_variables(sd)
  b = convert_torch.backbone_variables(state_dict)
  np.testing.assert_array_equal(a['params']['level5']['root']['conv']['kernel'],
                                b['params']['level5']['root']['conv']['kernel'])


@needs_torch
def test_missing_unexpected_and_misshaped_are_all_named(state_dict):
  sd = dict(state_dict)
  del sd['level2.tree1.conv1.weight']
  sd['level2.tree1.bn9.weight'] = np.zeros(3)
  sd['level4.tree2.root.conv.weight'] = np.zeros((256, 10, 1, 1), np.float32)
  with pytest.raises(convert_torch.ConversionError) as e:
    convert_torch.backbone_variables(sd)
  msg = str(e.value)
  assert 'missing (1): level2.tree1.conv1.weight' in msg
  assert 'unexpected (1): level2.tree1.bn9.weight' in msg
  assert 'level4.tree2.root.conv.weight: expected (256, 896, 1, 1), got (256, 10, 1, 1)' in msg


@needs_torch
def test_cli_round_trip(tmp_path, state_dict):
  import torch
  pth = tmp_path / 'dla34.pth'
  torch.save({'state_dict': {'module.' + k: torch.from_numpy(v) for k, v in state_dict.items()}},
             pth)
  out = tmp_path / 'params'
  assert cli.main(['convert-torch', str(pth), '--out', str(out)]) == 0
  restored = export_lib.load_variables(str(out))
  np.testing.assert_array_equal(restored['params']['backbone']['base_layer_0']['kernel'],
                                state_dict['base_layer.0.weight'].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(restored['batch_stats']['backbone']['level1_1']['var'],
                                state_dict['level1.1.running_var'])


def test_other_architecture_is_rejected(tmp_path, capsys):
  """A ResNet-18-like state_dict: every DLA tensor missing, every ResNet tensor unexpected."""
  sd = {'conv1.weight': np.zeros((64, 3, 7, 7), np.float32),
        'layer1.0.conv1.weight': np.zeros((64, 64, 3, 3), np.float32),
        'layer1.0.bn1.running_mean': np.zeros(64, np.float32)}
  path = tmp_path / 'resnet.npz'
  np.savez(path, **sd)
  assert cli.main(['convert-torch', str(path), '--out', str(tmp_path / 'p')]) == 2
  assert 'resnet.npz: state_dict does not match DLA' in capsys.readouterr().err
  with pytest.raises(convert_torch.ConversionError, match=r'missing \(\d+\).*\n.*unexpected \(3\)'):
    convert_torch.backbone_variables(convert_torch.load_state_dict(str(path)))
  assert not os.path.exists(tmp_path / 'p')


def test_unreadable_and_absent_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='no such file'):
    convert_torch.load_state_dict(str(tmp_path / 'nope.pth'))
  assert cli.main(['convert-torch', str(tmp_path / 'nope.pth'), '--out',
                   str(tmp_path / 'p')]) == 2
