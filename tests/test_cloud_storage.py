"""gs:// locations against a real GCS JSON API on this machine (the fake-gcs-server
emulator of conftest.gcs_emulator): a training run whose workdir is a bucket, preempted by
SIGTERM and resumed, its export, tracking from the bucket, and the refusals. Every command
runs as a user runs it, `hvisnet ...` in a subprocess, from a folder that must stay empty
(no local 'gs:' folder)."""
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import gcs_objects

from hvisnet_jax import storage
from hvisnet_jax.synthetic import synth

# A few-second run of the tiny model (tests/multidevice_helper.py's sizes).
TRAIN_FLAGS = ['--config.data.height=64', '--config.data.width=96', '--config.data.videos=2',
               '--config.data.frames=6', '--config.data.max_instances=6',
               '--config.loss.mask_samples=4', '--config.loss.id_negatives=4',
               '--config.train.batch_size=4', '--config.train.optimizer=sgd',
               '--config.train.lr=0.01', '--config.train.warmup_steps=1',
               '--config.train.log_every=2', '--config.train.checkpoint_every=4',
               '--config.evals.synthetic.every=0', '--config.inference.min_size=96',
               '--config.inference.max_size=160']
STEPS = 40          # long enough (about 10 s) to be interrupted after its first checkpoint


def hvisnet(args, env, cwd, **kw):
  return subprocess.Popen([sys.executable, '-m', 'hvisnet_jax.cli', *args], env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def run(args, env, cwd, timeout=600):
  p = hvisnet(args, env, cwd)
  out, err = p.communicate(timeout=timeout)
  return p.returncode, out, err


def train_args(workdir):
  return ['train', '--config=configs/hvisnet_tiny.py'.replace(
      'configs/', os.path.join(os.path.dirname(os.path.dirname(__file__)), 'configs') + '/'),
          f'--workdir={workdir}', f'--config.train.steps={STEPS}'] + TRAIN_FLAGS


def committed_steps(workdir):
  return sorted(int(f.split('/')[1]) for f in gcs_objects(workdir)
                if f.startswith('checkpoints/') and f.endswith('/commit_success.txt')
                and f.count('/') == 2)


@pytest.fixture(scope='module')
def bucket_run(gcs_emulator, tmp_path_factory):
  """Train to the bucket, SIGTERM mid-run, resume; plus the same run uninterrupted on disk."""
  import uuid  # pylint: disable=g-import-not-at-top
  cwd = tmp_path_factory.mktemp('cwd')
  workdir = f'gs://hvisnet-test/run-{uuid.uuid4().hex[:8]}'
  p = hvisnet(train_args(workdir), gcs_emulator, cwd)
  deadline = time.time() + 400
  while time.time() < deadline and p.poll() is None and not committed_steps(workdir):
    time.sleep(0.3)
  assert p.poll() is None, 'training ended before it could be preempted: ' + p.stderr.read()[-2000:]
  p.send_signal(signal.SIGTERM)
  out, err = p.communicate(timeout=300)
  preempted = dict(rc=p.returncode, err=err, steps=committed_steps(workdir),
                   objects=gcs_objects(workdir))
  resumed = run(train_args(workdir), gcs_emulator, cwd)
  local = tmp_path_factory.mktemp('local') / 'run'
  straight = run(train_args(str(local)), gcs_emulator, cwd)
  return dict(workdir=workdir, cwd=cwd, preempted=preempted, resumed=resumed, local=local,
              straight=straight, env=gcs_emulator)


def test_sigterm_saves_in_the_bucket_and_resume_is_exact(bucket_run):
  from hvisnet_jax.inference import predictor  # pylint: disable=g-import-not-at-top
  pre = bucket_run['preempted']
  assert pre['rc'] == 143, pre['err'][-2000:]
  lines = [l for l in pre['err'].splitlines() if l.startswith('hvisnet train:')]
  assert len(lines) == 1 and 'preempted (SIGTERM) at step' in lines[0], pre['err'][-2000:]
  step = int(lines[0].split('at step ')[1].split(':')[0])
  assert 0 < step < STEPS and step in pre['steps'], (step, pre['steps'])
  assert 'RUNNING' not in pre['objects']               # the marker left with the run
  assert 'export/config.json' not in pre['objects']
  rc, out, err = bucket_run['resumed']
  assert rc == 0, err[-3000:]
  assert f'resumed from step {step}' in err
  rc, _, err = bucket_run['straight']
  assert rc == 0, err[-3000:]
  # Bitwise the parameters and statistics of the uninterrupted run.
  remote = predictor.Predictor.from_export(bucket_run['workdir'] + '/export').variables
  local = predictor.Predictor.from_export(str(bucket_run['local'] / 'export')).variables
  import jax  # pylint: disable=g-import-not-at-top
  flat_r, flat_l = (jax.tree_util.tree_flatten_with_path(v)[0] for v in (remote, local))
  assert len(flat_r) == len(flat_l) > 50
  for (kr, a), (kl, b) in zip(flat_r, flat_l):
    assert kr == kl
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(kr))


def test_the_bucket_holds_the_whole_workdir(bucket_run):
  objects = gcs_objects(bucket_run['workdir'])
  for name in ('config.json', 'metrics.jsonl', 'export/config.json', 'export/train_log.jsonl',
               f'checkpoints/{STEPS}/commit_success.txt'):
    assert name in objects, (name, objects)
  assert 'RUNNING' not in objects
  events = [o for o in objects if o.startswith('events.out.tfevents.')]
  assert len(events) == 2, objects                      # one per run of the command
  summaries = b''.join(storage._epath(bucket_run['workdir'] + '/' + e).read_bytes()  # pylint: disable=protected-access
                       for e in events)
  assert b'loss' in summaries and b'steps_per_s' in summaries
  steps = [int(l.split('"step": ')[1].split(',')[0]) for l in
           storage.read_text(bucket_run['workdir'] + '/metrics.jsonl').splitlines()]
  assert steps[-1] == STEPS and steps == sorted(set(steps)), steps   # resumed, not repeated
  assert os.listdir(bucket_run['cwd']) == []           # nothing landed in a local 'gs:' folder


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
  d = tmp_path_factory.mktemp('clip')
  for t, img in enumerate(synth.render_video(7, 0, 3, 120, 160, 'easy').frames):
    cv2.imwrite(str(d / f'{t:05d}.jpg'), img)
  return d


def test_export_to_the_bucket_and_track_from_it(bucket_run, clip, tmp_path):
  env, cwd, workdir = bucket_run['env'], bucket_run['cwd'], bucket_run['workdir']
  rc, out, err = run(['export', workdir, '--out', workdir + '-exported', '--dtype', 'bfloat16'],
                     env, cwd)
  assert rc == 0, err[-3000:]
  objects = gcs_objects(workdir + '-exported')
  assert objects[-1:] != [] and 'config.json' in objects and any(
      o.startswith('variables/') for o in objects)
  for source in (workdir + '-exported', workdir):        # an export, and the workdir itself
    out_dir = tmp_path / source.rsplit('/', 1)[-1]
    rc, out, err = run(['track', str(clip), '--checkpoint', source, '--out', str(out_dir),
                        '--quiet'], env, cwd)
    assert rc == 0, err[-3000:]
    assert (out_dir / 'tracks.txt').is_file() and (out_dir / 'results.json').is_file()
  # Two exports in the bucket averaged into a third there (hvisnet average).
  rc, out, err = run(['average', workdir + '-exported', workdir + '/export', '--weight', '0.5',
                      '--out', workdir + '-mean'], env, cwd)
  assert rc == 0, err[-3000:]
  assert 'config.json' in gcs_objects(workdir + '-mean')
  rc, out, err = run(['average', workdir + '-exported', workdir + '/export', '--weight', '0.5',
                      '--out', workdir + '-exported'], env, cwd)
  assert rc == 2 and 'is the input' in err
  assert os.listdir(cwd) == []


def test_export_never_writes_over_a_users_objects(bucket_run, tmp_path):
  env, cwd, workdir = bucket_run['env'], bucket_run['cwd'], bucket_run['workdir']
  mine = workdir + '-mine/notes.txt'
  storage.write_text(mine, 'my notes')
  rc, _, err = run(['export', workdir, '--out', workdir + '-mine'], env, cwd)
  assert rc == 2 and 'is not an hvisnet export' in err, err[-2000:]
  assert storage.read_text(mine) == 'my notes' and gcs_objects(workdir + '-mine') == ['notes.txt']


def test_a_bucket_workdir_of_another_model_is_refused(bucket_run):
  env, cwd = bucket_run['env'], bucket_run['cwd']
  rc, _, err = run(train_args(bucket_run['workdir']) + ['--config.model.fpn_channels=16'],
                   env, cwd)
  assert rc == 2, err[-2000:]
  line = err.strip().splitlines()[-1]
  assert line.startswith('hvisnet train: error:') and 'another model config' in line, err[-2000:]
  assert 'Traceback' not in err


def test_a_second_run_on_a_bucket_workdir_is_refused(gcs_dir, gcs_emulator, tmp_path):
  storage.write_text(gcs_dir + '/RUNNING', 'pid=1 host=elsewhere since=2026-01-01T00:00:00\n')
  rc, _, err = run(train_args(gcs_dir), gcs_emulator, tmp_path)
  assert rc == 2 and 'in use by another training run' in err and 'RUNNING' in err, err[-2000:]
  assert gcs_objects(gcs_dir) == ['RUNNING']           # nothing else written


@pytest.mark.parametrize('case', ['no bucket', 'no server'])
def test_an_unusable_bucket_is_one_line_before_the_model_loads(case, gcs_emulator, tmp_path):
  env = dict(gcs_emulator)
  if case == 'no server':
    import socket  # pylint: disable=g-import-not-at-top
    with socket.socket() as s:
      s.bind(('127.0.0.1', 0))
      closed = s.getsockname()[1]
    env['STORAGE_EMULATOR_HOST'] = f'http://127.0.0.1:{closed}'
    env['HVISNET_GCS_CHECK_TIMEOUT_S'] = '3'       # not the default 15 s wait, three times
  for args in (train_args('gs://no-such-bucket/run'),
               ['export', 'gs://no-such-bucket/run', '--out', str(tmp_path / 'e')],
               ['track', str(tmp_path), '--checkpoint', 'gs://no-such-bucket/exp',
                '--out', str(tmp_path / 't')]):
    rc, out, err = run(args, env, tmp_path)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err[-2000:]
    assert 'no-such-bucket' in lines[0]
    assert ('does not exist' if case == 'no bucket' else 'cannot be reached') in lines[0]
  assert os.listdir(tmp_path) == []


def test_a_bad_check_timeout_is_named(monkeypatch):
  monkeypatch.setenv('HVISNET_GCS_CHECK_TIMEOUT_S', '0')
  with pytest.raises(storage.StorageError, match=r"HVISNET_GCS_CHECK_TIMEOUT_S='0': expected"):
    storage.check_reachable('gs://some-bucket/run', '--workdir')


def test_commands_that_write_locally_refuse_a_bucket(gcs_emulator, tmp_path):
  rc, _, err = run(['track', str(tmp_path), '--out', 'gs://hvisnet-test/t'], gcs_emulator,
                   tmp_path)
  assert rc == 2 and '--out gs://hvisnet-test/t' in err and 'local path' in err, err
  assert os.listdir(tmp_path) == []


def _two_processes(workdir, steps, out_dir, env, signal_after_checkpoint=False):
  """The multi-host run of tests/multidevice_helper.py: 2 processes x 2 CPU devices on one
  coordinator; with `signal_after_checkpoint`, SIGTERM to process 1 alone once the first
  checkpoint is committed. Returns (return codes, stderr of each)."""
  import socket  # pylint: disable=g-import-not-at-top
  from conftest import MULTIDEVICE_HELPER  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(('localhost', 0))
    coord = f'localhost:{s.getsockname()[1]}'
  env = dict(env, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
  procs = [subprocess.Popen([sys.executable, MULTIDEVICE_HELPER, 'multihost', coord, '2', str(i),
                             workdir, str(steps), str(out_dir / f'p{i}.npz')],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  if signal_after_checkpoint:
    deadline = time.time() + 500
    while (time.time() < deadline and all(p.poll() is None for p in procs)
           and not committed_steps(workdir)):
      time.sleep(0.3)
    assert all(p.poll() is None for p in procs), 'the run ended before it could be preempted'
    procs[1].send_signal(signal.SIGTERM)
  errs = [p.communicate(timeout=600)[1] for p in procs]
  return [p.returncode for p in procs], errs


def test_two_processes_checkpoint_to_the_bucket_and_survive_preemption(gcs_dir, gcs_emulator,
                                                                      tmp_path):
  """SIGTERM to one host of two: JAX's preemption service brings both to one step, both save
  it to the bucket and stop; relaunched, both restore from the bucket and end with the
  parameters of an uninterrupted two-process run, bit for bit."""
  steps = 18          # checkpoints every 2: SIGTERM lands after the first, 16 steps before the end
  rcs, errs = _two_processes(gcs_dir, steps, tmp_path, gcs_emulator, signal_after_checkpoint=True)
  assert rcs == [143, 143], [e[-2000:] for e in errs]
  said = [[l for l in e.splitlines() if 'preempted (SIGTERM) at step' in l] for e in errs]
  assert all(len(s) == 1 for s in said), errs
  step = int(said[0][0].split('at step ')[1].split(':')[0])
  assert said[1][0].endswith(said[0][0].split(':', 1)[1])      # the same step on both hosts
  assert step in committed_steps(gcs_dir) and step < steps
  (tmp_path / 'resumed').mkdir()
  rcs, errs = _two_processes(gcs_dir, steps, tmp_path / 'resumed', gcs_emulator)
  assert rcs == [0, 0], [e[-2000:] for e in errs]
  (tmp_path / 'straight').mkdir()
  rcs, errs = _two_processes(str(tmp_path / 'local'), steps, tmp_path / 'straight', gcs_emulator)
  assert rcs == [0, 0], [e[-2000:] for e in errs]
  runs = [np.load(tmp_path / d / f'p{i}.npz') for d in ('resumed', 'straight') for i in range(2)]
  assert all(int(r['step']) == steps for r in runs)
  keys = [k for k in runs[0].files if k not in ('step', 'devices', 'local_devices')
          and not k.startswith('init')]
  assert len(keys) > 50
  for k in keys:
    for r in runs[1:]:
      np.testing.assert_array_equal(runs[0][k], r[k], err_msg=k)
  assert not [o for o in gcs_objects(gcs_dir) if o == 'RUNNING']


def test_build_dataset_into_the_bucket(gcs_dir, tmp_path, monkeypatch, capsys):
  """TFDS data built into a bucket (built locally, uploaded with dataset_info.json last) and
  found there by the training pipeline's reader. tf.data then reads the records through
  TensorFlow's own GCS client, which cannot be pointed at an emulator: that step is not
  tested here (docs/cloud-tpu.md)."""
  from hvisnet_jax import cli  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(tmp_path)
  synth.write_dataset(str(tmp_path / 'src'), videos=2, frames=4, height=64, width=96,
                      preset='easy', seed=3)
  args = ['build-dataset', '--format', 'ytvis', '--source', str(tmp_path / 'src'),
          '--out', gcs_dir + '/tfds', '--clip-length', '4']
  assert cli.main(args) == 0
  assert f'--config.data.tfds_dir={gcs_dir}/tfds/ytvis_persons/person/1.0.0' in capsys.readouterr().out
  objects = gcs_objects(gcs_dir + '/tfds')
  assert 'ytvis_persons/person/1.0.0/dataset_info.json' in objects
  assert any('.tfrecord-' in o for o in objects) and not any('incomplete' in o for o in objects)
  builder = pipeline.load_builder(gcs_dir + '/tfds')
  assert builder.info.splits['train'].num_examples == 2
  assert builder.info.metadata['num_ids']['train'] > 0
  assert cli.main(args) == 0                              # the same build: nothing to do
  assert gcs_objects(gcs_dir + '/tfds') == objects
  assert cli.main(args[:-1] + ['3']) == 2                # another build into the same place
  assert 'already holds a dataset built from' in capsys.readouterr().err
  assert sorted(os.listdir(tmp_path)) == ['src']
