"""Data-parallel training on 8 CPU devices: same numbers as 1 device, portable checkpoints,
exact resume after SIGKILL. Each case runs in a subprocess with its own device count."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hvisnet_jax import sharding

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multidevice_helper.py')


def _run(args, devices, **kw):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
             JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, HELPER, *args], env=env, capture_output=True,
                        text=True, timeout=600, **kw)


def _ok(r):
  assert r.returncode == 0, r.stderr[-3000:]


def test_sharded_step_equals_single_device_step(tmp_path):
  out = tmp_path / 'step.npz'
  _ok(_run(['step', str(out)], 8))
  z = np.load(out)
  assert int(z['devices']) == 8 and int(z['batch_sharded']) == 8
  assert float(z['loss1']) == pytest.approx(float(z['loss8']), rel=1e-5)
  keys = [k[2:] for k in z.files if k.startswith('p1')]
  assert len(keys) > 50
  # Tolerance: the same arithmetic with reductions split across devices; float32 sums in
  # another order differ in the last bits (relative 1e-5 of each tensor's scale).
  for k in keys:
    a, b = z['p1' + k], z['p8' + k]
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * (np.abs(a).max() + 1e-12), err_msg=k)
  for k in [k[2:] for k in z.files if k.startswith('b1')]:    # BN statistics: global batch
    a, b = z['b1' + k], z['b8' + k]
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * (np.abs(a).max() + 1e-12), err_msg=k)


def test_checkpoints_move_between_8_and_1_devices(tmp_path):
  _ok(_run(['train', str(tmp_path / 'w8'), '2'], 8))
  _ok(_run(['dump', str(tmp_path / 'w8'), str(tmp_path / 'a.npz')], 8))
  _ok(_run(['dump', str(tmp_path / 'w8'), str(tmp_path / 'b.npz')], 1))
  _ok(_run(['train', str(tmp_path / 'w1'), '2'], 1))
  _ok(_run(['dump', str(tmp_path / 'w1'), str(tmp_path / 'c.npz')], 8))
  a, b, c = (np.load(tmp_path / f) for f in ('a.npz', 'b.npz', 'c.npz'))
  assert int(a['devices']) == 8 and int(b['devices']) == 1 and int(c['devices']) == 8
  assert int(a['step']) == int(b['step']) == int(c['step']) == 2
  for k in a.files:
    if k not in ('devices', 'step'):
      np.testing.assert_array_equal(a[k], b[k])
      np.testing.assert_allclose(c[k], a[k], rtol=1e-4, atol=1e-6)   # 1- vs 8-device training


def test_sigkill_and_resume_matches_uninterrupted(tmp_path):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=1',
             JAX_PLATFORMS='cpu')
  killed = tmp_path / 'killed'
  proc = subprocess.Popen([sys.executable, HELPER, 'train', str(killed), '8'], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  deadline = time.time() + 400
  ckpt = killed / 'checkpoints'
  while time.time() < deadline and proc.poll() is None:
    done = [d for d in (os.listdir(ckpt) if ckpt.exists() else []) if d.isdigit()]
    if any(int(d) >= 4 for d in done):
      break
    time.sleep(0.2)
  assert proc.poll() is None, 'training finished before it could be killed'
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  _ok(_run(['train', str(killed), '8'], 1))
  _ok(_run(['train', str(tmp_path / 'straight'), '8'], 1))
  _ok(_run(['dump', str(killed), str(tmp_path / 'k.npz')], 1))
  _ok(_run(['dump', str(tmp_path / 'straight'), str(tmp_path / 's.npz')], 1))
  k, s = np.load(tmp_path / 'k.npz'), np.load(tmp_path / 's.npz')
  assert int(k['step']) == int(s['step']) == 8
  for key in s.files:
    np.testing.assert_array_equal(k[key], s[key])


def test_mesh_and_batch_errors_name_the_numbers():
  mesh = sharding.make_mesh(-1)
  with pytest.raises(sharding.MeshError, match='mesh data axis of 3 does not match the 1'):
    sharding.make_mesh(3)
  if mesh.devices.size == 1:
    sharding.check_batch(7, mesh)       # any batch divides over one device


def test_indivisible_global_batch_is_named():
  code = ('from hvisnet_jax import sharding\n'
          'm = sharding.make_mesh(-1)\n'
          'try:\n  sharding.check_batch(6, m)\nexcept sharding.MeshError as e:\n  print(e)\n')
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu')
  r = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                     timeout=120)
  assert 'global batch 6 is not divisible by the 8 devices' in r.stdout, r.stderr[-2000:]
