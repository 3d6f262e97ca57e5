"""Data-parallel training on 8 CPU devices: same numbers as 1 device, portable checkpoints,
exact resume after SIGKILL. Each case runs in a subprocess with its own device count."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import MULTIDEVICE_HELPER, REPO, assert_ok, run_multidevice

from hvisnet_jax.training import sharding

HELPER = MULTIDEVICE_HELPER
_run, _ok = run_multidevice, assert_ok


def test_sharded_step_equals_single_device_step(tmp_path):
  out = tmp_path / 'step.npz'
  _ok(_run(['step', str(out)], 8))
  z = np.load(out)
  assert int(z['devices']) == 8 and int(z['batch_sharded']) == 8
  assert float(z['loss1']) == pytest.approx(float(z['loss8']), rel=1e-5)
  keys = [k[2:] for k in z.files if k.startswith('p1')]
  assert len(keys) > 50
  # Tolerances. Loss and BatchNorm statistics (means over the global batch): 1e-5 relative.
  # Parameters after one SGD step: the two updates agree to 1% of the largest update in each
  # tensor. Gradients are sums over the batch that XLA now splits across devices; float32
  # sums in another order differ most where terms cancel (BN-bias gradients: measured 0.3%).
  for k in [k[2:] for k in z.files if k.startswith('b1')]:
    a, b = z['b1' + k], z['b8' + k]
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * (np.abs(a).max() + 1e-12), err_msg=k)
  moved = 0
  for k in keys:
    d1, d8 = z['p1' + k] - z['p0' + k], z['p8' + k] - z['p0' + k]
    scale = np.abs(d1).max()
    moved += scale > 0
    assert np.abs(d8 - d1).max() <= 1e-2 * scale + 1e-9, (k, np.abs(d8 - d1).max(), scale)
  assert moved > 0.9 * len(keys)


def test_checkpoints_move_between_8_and_1_devices(tmp_path):
  """Written on 8 devices, restored on 1 and on 8; written on 1, restored on 8 and on 1:
  the same values every time."""
  for writer, reader in ((8, 1), (1, 8)):
    work = tmp_path / f'w{writer}'
    _ok(_run(['train_dump', str(work), '2', str(tmp_path / f'w{writer}_a.npz')], writer))
    _ok(_run(['dump', str(work), str(tmp_path / f'w{writer}_b.npz')], reader))
    a, b = (np.load(tmp_path / f'w{writer}_{x}.npz') for x in 'ab')
    assert int(a['step']) == int(b['step']) == 2
    assert {int(a['devices']), int(b['devices'])} == {1, 8}
    for k in a.files:
      if k not in ('devices', 'step'):
        np.testing.assert_array_equal(a[k], b[k])


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
  _ok(_run(['train_dump', str(killed), '8', str(tmp_path / 'k.npz')], 1))
  _ok(_run(['train_dump', str(tmp_path / 'straight'), '8', str(tmp_path / 's.npz')], 1))
  k, s = np.load(tmp_path / 'k.npz'), np.load(tmp_path / 's.npz')
  assert int(k['step']) == int(s['step']) == 8
  for key in s.files:
    np.testing.assert_array_equal(k[key], s[key])


def _free_port():
  import socket  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_train_like_one(tmp_path):
  """A multi-host run on this machine: 2 processes x 2 CPU devices (jax.distributed, gloo
  collectives), each feeding its half of the global batch and checkpointing together,
  against one process with 4 devices on the same global batches. The second process starts
  training 35 s late, beyond gloo's 30 s limit for joining the first collective (a slow
  host's compile on a busy CI machine did exactly that)."""
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2',
             JAX_PLATFORMS='cpu')
  coord = f'localhost:{_free_port()}'
  procs = [subprocess.Popen([sys.executable, HELPER, 'multihost', coord, '2', str(i),
                             str(tmp_path / 'multi'), '2', str(tmp_path / f'p{i}.npz'), str(35 * i)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
  _ok(_run(['train_dump', str(tmp_path / 'single'), '2', str(tmp_path / 's.npz')], 4))
  a, b, s = (np.load(tmp_path / f'{x}.npz') for x in ('p0', 'p1', 's'))
  assert int(a['step']) == int(s['step']) == 2
  assert (int(a['devices']), int(a['local_devices']), int(s['devices'])) == (4, 2, 4)
  keys = [k for k in s.files if k not in ('step', 'devices')]
  assert len(keys) > 50
  for k in keys:
    np.testing.assert_array_equal(a[k], b[k])       # both hosts hold the same parameters
    # The updates agree to 5% of the largest update in each tensor (2 steps; sums over the
    # batch are split differently: BN-bias gradients, which cancel, differ most). Wrong
    # per-host rows would change the updates by their own size.
    d_multi, d_single = a[k] - a['init' + k], s[k] - a['init' + k]
    assert np.abs(d_multi - d_single).max() <= 5e-2 * np.abs(d_single).max() + 1e-9, k


def test_mesh_and_batch_errors_name_the_numbers():
  mesh = sharding.make_mesh(-1)
  with pytest.raises(sharding.MeshError, match='mesh data axis of 3 does not match the 1'):
    sharding.make_mesh(3)
  if mesh.devices.size == 1:
    sharding.check_batch(7, mesh)       # any batch divides over one device


def test_indivisible_global_batch_is_named():
  code = ('from hvisnet_jax.training import sharding\n'
          'm = sharding.make_mesh(-1)\n'
          'try:\n  sharding.check_batch(6, m)\nexcept sharding.MeshError as e:\n  print(e)\n')
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8',
             JAX_PLATFORMS='cpu')
  r = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                     timeout=120)
  assert 'global batch 6 is not divisible by the 8 devices' in r.stdout, r.stderr[-2000:]


def test_train_command_splits_the_cpu_with_cpu_devices(tmp_path):
  """`hvisnet train --cpu_devices=2` trains on 2 XLA CPU devices (set before JAX starts)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)
  r = subprocess.run([sys.executable, '-m', 'hvisnet_jax.cli', 'train',
                      '--config=configs/hvisnet_tiny.py', '--cpu_devices=2',
                      f'--workdir={tmp_path / "w"}', '--config.train.steps=1',
                      '--config.train.batch_size=2', '--config.data.videos=2',
                      '--config.data.frames=4'],
                     cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'training data-parallel on 2 cpu device(s)' in r.stderr
