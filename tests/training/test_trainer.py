"""The trainer: it learns, resumes exactly, stops on NaN, refuses mismatched workdirs."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from hvisnet_jax import config_defaults
from hvisnet_jax.synthetic import source as synthetic_source
from hvisnet_jax.training import trainer as train
from hvisnet_jax.training import checkpoints
from conftest import REPO


def _config(**train_kw):
  cfg = config_defaults.load_config(os.path.join(REPO, 'configs', 'hvisnet_tiny.py'))
  cfg.data.update(height=96, width=128, videos=2, frames=6, max_instances=8)
  cfg.loss.update(mask_samples=8, id_negatives=8)
  cfg.train.update(batch_size=2, log_every=2, checkpoint_every=4, warmup_steps=2)
  cfg.train.update(**train_kw)
  return cfg


@pytest.fixture(scope='module')
def source():
  cfg = _config()
  d = cfg.data
  return synthetic_source.SyntheticSource(d.preset, d.videos, d.frames, d.height, d.width,
                                          d.seed, d.max_instances)


def test_batches_are_a_function_of_the_step(source):
  a, b, c = source.batch(3, 4, 0), source.batch(3, 4, 0), source.batch(4, 4, 0)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a['images'], c['images'])
  assert a['valid'].any()
  # Boxes enclose their masks; centers lie inside them.
  for i, k in zip(*np.nonzero(a['valid'])):
    ys, xs = np.nonzero(a['masks'][i, k])
    np.testing.assert_allclose(a['boxes'][i, k], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    x, y = a['inner'][i, k]
    assert a['masks'][i, k, int(y), int(x)]


def test_train_step_compiles_once(source):
  """The state coming out of a step has the types going in (no weak-typed leaves turning
  strong), so jit does not compile the step a second time at step 2."""
  cfg = _config()
  state = train.create_train_state(cfg, jax.random.PRNGKey(0), source.num_ids, source.padded)
  step = jax.jit(train.make_train_step(cfg))

  def types(tree):
    return jax.tree.map(lambda x: (x.dtype, x.shape, x.weak_type), tree)
  before = types(state)
  state, _ = step(state, source.batch(0, 2, 0), jax.random.PRNGKey(1))
  assert types(state) == before
  state, _ = step(state, source.batch(1, 2, 0), jax.random.PRNGKey(2))
  assert step._cache_size() == 1     # pylint: disable=protected-access


class _OneBatch:
  """A source that repeats one batch: for the overfitting test."""

  def __init__(self, source, batch):
    self.num_ids, self.padded, self._batch = source.num_ids, source.padded, batch

  def batch(self, step, batch_size, seed):
    return self._batch


def test_overfits_one_batch(tmp_path, source):
  cfg = _config(steps=120, lr=3e-3, warmup_steps=5, log_every=10, checkpoint_every=1000)
  one = _OneBatch(source, source.batch(0, 2, 0))
  train.train_and_evaluate(cfg, str(tmp_path), source=one)
  log = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  first, last = log[0], log[-1]
  # The total keeps a floor (the entropy of soft centerness targets, the triplet margin),
  # so each learnable part is checked as well.
  assert last['loss'] < first['loss'] / 2.5, (first, last)
  for part, factor in (('focal', 20), ('giou', 2), ('mask', 5), ('semantic', 5), ('id_ce', 5)):
    assert last[part] < first[part] / factor, (part, first[part], last[part])


def test_resume_continues_exactly(tmp_path, source):
  cfg = _config(steps=8)
  straight = train.train_and_evaluate(cfg, str(tmp_path / 'a'), source=source)
  train.train_and_evaluate(cfg, str(tmp_path / 'b'), source=source, stop_after=4)
  resumed = train.train_and_evaluate(cfg, str(tmp_path / 'b'), source=source)
  assert int(resumed.step) == int(straight.step) == 8
  for x, y in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, source):
  cfg = _config(steps=12, lr=1e12, optimizer='sgd', warmup_steps=1, warmup_factor=1.0,
                checkpoint_every=2, log_every=2)
  with pytest.raises(train.NonFiniteLossError, match='non-finite loss or gradient at step'):
    train.train_and_evaluate(cfg, str(tmp_path), source=source)
  mngr = checkpoints.checkpoint_manager(str(tmp_path), cfg.train)
  last = mngr.latest_step()
  if last is not None:
    state = train.create_train_state(cfg, jax.random.PRNGKey(0), source.num_ids, source.padded)
    state = checkpoints.restore_checkpoint(mngr, state)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_workdir_of_another_config_is_refused(tmp_path, source):
  cfg = _config(steps=8)                       # the resume test's config: compiled already
  train.train_and_evaluate(cfg, str(tmp_path), source=source, stop_after=1)
  other = _config(steps=8)
  other.model.fpn_channels = 16
  with pytest.raises(checkpoints.ConfigMismatchError, match=r'model.fpn_channels: saved 32, now 16'):
    train.train_and_evaluate(other, str(tmp_path), source=source)


def test_main_names_an_unknown_config_key(tmp_path):
  r = subprocess.run([sys.executable, '-m', 'hvisnet_jax.main',
                      f'--config={REPO}/configs/hvisnet_tiny.py', f'--workdir={tmp_path}',
                      '--config.train.stepz=3'], capture_output=True, text=True, timeout=120)
  assert r.returncode != 0
  assert 'stepz' in r.stderr


def test_frames_with_nobody_give_finite_losses(source):
  cfg = _config(steps=8)
  cfg.loss.scl_weight = 0.5                          # the SC loss's host callback included
  batch = source.batch(0, 2, 0)
  batch['valid'][:] = False                          # nobody in either frame
  batch['masks'][:] = False
  batch['inner'][:] = np.nan
  state = train.create_train_state(cfg, jax.random.PRNGKey(0), source.num_ids, source.padded)
  step = train.jitted_train_step(cfg)
  new, parts = step(state, batch, jax.random.PRNGKey(1))
  assert bool(parts['finite'])
  assert float(parts['num_pos']) == 0
  for k in ('loss', 'focal', 'giou', 'mask', 'scl', 'triplet', 'id_ce'):
    assert np.isfinite(float(parts[k])), k
  assert int(new.step) == 1
  # With people, an untrained mask is not its target's shape: the SC loss is in (0, 1].
  _, parts = step(new, source.batch(0, 2, 0), jax.random.PRNGKey(2))
  assert 0.0 < float(parts['scl']) <= 1.0


def test_training_evaluates_exports_and_the_export_tracks(tmp_path, source, capsys):
  from hvisnet_jax import cli, evaluators
  cfg = _config(steps=4)
  cfg.evals.synthetic.update(every=2, videos=1, frames=4, height=96, width=128)
  wd = tmp_path / 'wd'
  seen = []     # one predictor for every evaluation (no recompiling), with the new weights
  probe = ('probe', 2, lambda p: seen.append(
      (p, jax.tree.leaves(jax.device_get(p.variables['params']))[0].copy())) or {})
  train.train_and_evaluate(cfg, str(wd), source=source,
                           evaluators=evaluators.make(cfg) + [probe])
  assert len(seen) == 2 and seen[0][0] is seen[1][0]
  assert not np.array_equal(seen[0][1], seen[1][1])
  log = [json.loads(line) for line in open(wd / 'metrics.jsonl')]
  evals = [r for r in log if 'eval/synthetic/HOTA' in r]
  assert [r['step'] for r in evals] == [2, 4]
  assert all(0.0 <= r['eval/synthetic/HOTA'] <= 1.0 for r in evals)
  assert (wd / 'export' / 'config.json').is_file()           # written at the last step
  # `hvisnet export` does the same for any checkpoint; track takes an export or a workdir.
  assert cli.main(['export', str(wd), '--out', str(tmp_path / 'ex'), '--dtype', 'bfloat16']) == 0
  assert 'exported step 4' in capsys.readouterr().out
  from hvisnet_jax.inference import predictor
  a = predictor.Predictor.from_export(str(wd / 'export'))
  b = predictor.Predictor.from_export(str(tmp_path / 'ex'))
  for k in ('params', 'batch_stats'):
    for x, y in zip(jax.tree.leaves(a.variables[k]), jax.tree.leaves(b.variables[k])):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-2, atol=1e-2)
  clip = tmp_path / 'clip'
  clip.mkdir()
  import cv2
  for t in range(3):
    cv2.imwrite(str(clip / f'{t:03d}.jpg'), np.full((96, 128, 3), 100, np.uint8))
  before = sorted(str(p) for p in wd.rglob('*'))
  # A workdir predicts from its checkpoint restored in memory: no export, temporary or not.
  real_export = predictor.Predictor.export
  predictor.Predictor.export = lambda *a, **k: pytest.fail('track wrote an export')
  try:
    for ckpt in (wd, tmp_path / 'ex'):
      out = tmp_path / f'track_{ckpt.name}'
      assert cli.main(['track', str(clip), '--out', str(out), '--checkpoint', str(ckpt),
                       '--quiet']) == 0
      assert (out / 'tracks.txt').is_file()
  finally:
    predictor.Predictor.export = real_export
  assert sorted(str(p) for p in wd.rglob('*')) == before
  assert json.loads((wd / 'config.json').read_text())['num_ids'] == source.num_ids
  # A workdir is not an export: exporting onto it is refused, its checkpoints stay.
  assert cli.main(['export', str(wd), '--out', str(wd)]) == 2
  assert 'not an hvisnet export' in capsys.readouterr().err
  assert (wd / 'checkpoints').is_dir() and (wd / 'metrics.jsonl').is_file()
  assert cli.main(['export', str(tmp_path / 'nope'), '--out', str(tmp_path / 'x')]) == 2
  assert 'not a training workdir' in capsys.readouterr().err


def test_checkpoints_of_the_old_layout_with_extra_still_restore(tmp_path, source):
  cfg = _config()
  state = train.create_train_state(cfg, jax.random.PRNGKey(0), source.num_ids, source.padded)
  state = state.replace(step=np.int32(3))
  old = checkpoints._LegacyTrainState(step=state.step, params=state.params,  # pylint: disable=protected-access
                                batch_stats=state.batch_stats, extra={},
                                opt_state=state.opt_state)
  mngr = checkpoints.checkpoint_manager(str(tmp_path), cfg.train)
  checkpoints.save_checkpoint(mngr, old)
  fresh = train.create_train_state(cfg, jax.random.PRNGKey(1), source.num_ids, source.padded)
  got = checkpoints.restore_checkpoint(mngr, fresh)
  mngr.close()
  assert int(got.step) == 3
  for a, b in zip(jax.tree.leaves(got.params), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(a, b)


def test_init_from_an_export_starts_from_its_weights_and_refuses_another_architecture():
  from hvisnet_jax.inference import predictor
  export = predictor.Predictor.from_export('synthetic')
  cfg = _config(init_from='synthetic')
  cfg.model = export.config.model                    # the built-in synthetic model's shapes
  state = train.create_train_state(cfg, jax.random.PRNGKey(1), num_ids=5, image_hw=(96, 128))
  for x, y in zip(jax.tree.leaves(state.params['model']), jax.tree.leaves(export.variables['params'])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  fresh = train.create_train_state(_config(), jax.random.PRNGKey(1), num_ids=5, image_hw=(96, 128))
  assert not all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(fresh.params['model']),
                                                      jax.tree.leaves(export.variables['params'])))
  cfg = _config(init_from='real')                    # a MobileNetV2 export into the tiny model
  with pytest.raises(ValueError, match=r'models/real: .* (shape|does not exist)'):
    train.create_train_state(cfg, jax.random.PRNGKey(1), num_ids=5, image_hw=(96, 128))
  with pytest.raises(FileNotFoundError, match='not an exported model'):
    train.create_train_state(_config(init_from='/nonexistent/export'), jax.random.PRNGKey(1),
                             num_ids=5, image_hw=(96, 128))



def test_a_workdir_is_new_empty_or_made_by_train(tmp_path, source):
  cfg = _config(steps=1)
  export = tmp_path / 'export'
  (export / 'variables').mkdir(parents=True)
  (export / 'config.json').write_text('{"model": {}, "train": {}}')
  mine = tmp_path / 'mine'
  mine.mkdir()
  (mine / 'config.json').write_text('{"lr": 3}')
  notes = tmp_path / 'notes'
  notes.mkdir()
  (notes / 'notes.txt').write_text('keep')
  for wd, says in ((export, 'is an hvisnet export'),
                   (mine, 'not the config hvisnet train writes'),
                   (notes, r'holds files that hvisnet train did not write \(notes.txt\)')):
    before = {p: p.read_bytes() for p in wd.rglob('*') if p.is_file()}
    with pytest.raises((OSError, ValueError), match=says):
      train.train_and_evaluate(cfg, str(wd), source=source)
    assert {p: p.read_bytes() for p in wd.rglob('*') if p.is_file()} == before


def test_a_run_stopped_before_its_first_checkpoint_leaves_nothing(tmp_path, source):
  class Interrupted:
    num_ids, padded = source.num_ids, source.padded

    def batch(self, step, batch_size, seed):
      raise KeyboardInterrupt

  wd = tmp_path / 'wd'
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(_config(steps=2), str(wd), source=Interrupted())
  assert not wd.exists() or not [e for e in os.listdir(wd) if not e.startswith('.')]


def test_a_failed_checkpoint_save_removes_its_partial_folder_and_names_the_workdir(
    tmp_path, source, monkeypatch):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  def full_disk(self, step, *a, **kw):
    os.makedirs(os.path.join(str(self.directory), f'{step}.orbax-checkpoint-tmp-1'))
    raise OSError(28, 'No space left on device')

  monkeypatch.setattr(ocp.CheckpointManager, 'save', full_disk)
  wd = tmp_path / 'wd'
  with pytest.raises(OSError, match=r'checkpoints: the checkpoint of step 1 could not be '
                     r'written \(No space left on device\).*resume from step 0'):
    train.train_and_evaluate(_config(steps=1, checkpoint_every=1), str(wd), source=source)
  assert not (wd / 'checkpoints').exists() or not os.listdir(wd / 'checkpoints')
  assert not (wd / 'config.json').exists()


def test_stages_follow_the_main_run_with_their_own_schedule_and_resume_into_them(tmp_path,
                                                                                 source):
  from hvisnet_jax.training import optimizer
  cfg = _config(steps=4, lr=1e-3, warmup_steps=1, decay_at=(0.5,),
                stages=({'steps': 4, 'lr': 1e-5},))
  sched = optimizer.learning_rate_schedule(cfg.train)
  assert optimizer.total_steps(cfg.train) == 8 and optimizer.stage_starts(cfg.train) == [0, 4]
  np.testing.assert_allclose([float(sched(s)) for s in (1, 2, 5, 7)],
                             [1e-3, 1e-4, 1e-5, 1e-6], rtol=1e-5)
  straight = train.train_and_evaluate(cfg, str(tmp_path / 'a'), source=source)
  assert int(straight.step) == 8 and (tmp_path / 'a' / 'export' / 'config.json').is_file()
  # Stopped in the main run, before its end: no export yet; resumed, it runs the stage.
  train.train_and_evaluate(cfg, str(tmp_path / 'b'), source=source, stop_after=4)
  assert not (tmp_path / 'b' / 'export').exists()
  resumed = train.train_and_evaluate(cfg, str(tmp_path / 'b'), source=source)
  for x, y in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  # A run that ended is continued by a stage added to its config.
  main_only = train.train_and_evaluate(_config(steps=4, lr=1e-3, warmup_steps=1,
                                               decay_at=(0.5,)), str(tmp_path / 'c'),
                                       source=source)
  assert int(main_only.step) == 4
  again = train.train_and_evaluate(cfg, str(tmp_path / 'c'), source=source)
  for x, y in zip(jax.tree.leaves(straight), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize('stage, says', [
    ({'steps': 0, 'lr': 1e-3}, r'train.stages\[0\].steps must be a whole number >= 1'),
    ({'steps': 2, 'lr': -1.0}, r'train.stages\[0\].lr must be a number > 0'),
    ({'steps': 2, 'lr': 1e-3, 'weights': {'ccp': 0.0}}, r'train.stages\[0\].weights: every '),
    ({'steps': 2, 'lr': 1e-3, 'lrr': 1}, r"train.stages\[0\]: unknown field\(s\) \['lrr'\]"),
])
def test_a_bad_stage_is_named(stage, says):
  from hvisnet_jax.training import optimizer
  with pytest.raises(ValueError, match=says):
    optimizer.total_steps(_config(steps=4, stages=(stage,)).train)
