"""config.data.recipe: parts checked by name before any work, built under the workdir, and
found again (resumable)."""
import os

import ml_collections
import pytest

from hvisnet_jax.configs import hvisnet_real


def _data(root, **parts):
  return ml_collections.ConfigDict(dict(root=str(root), recipe=parts))


def test_bad_parts_are_refused_by_name(tmp_path):
  from hvisnet_jax.data_pipelines import recipe
  (tmp_path / 'clips').mkdir()
  with pytest.raises(ValueError, match=r'data.recipe.x.kind must be one of'):
    recipe.check(_data(tmp_path, x=dict(kind='video', sources=('clips',), weight=1.0)))
  with pytest.raises(FileNotFoundError, match=r"data.recipe.x.sources: 'nothing/\*' matches "
                     'nothing under data.root'):
    recipe.check(_data(tmp_path, x=dict(kind='pseudo', sources=('nothing/*',), weight=1.0)))
  with pytest.raises(ValueError, match=r'data.recipe.x.weight must be > 0'):
    recipe.check(_data(tmp_path, x=dict(kind='pseudo', sources=('clips',), weight=0.0)))
  with pytest.raises(FileNotFoundError, match=r'data.recipe.x: .*a.json not found'):
    recipe.check(_data(tmp_path, x=dict(kind='coco', sources=('clips',), annotations='a.json',
                                        weight=1.0)))
  with pytest.raises(FileNotFoundError, match='data.root='):
    recipe.check(_data(tmp_path / 'absent'))


def test_the_real_recipe_names_only_what_exists_and_keeps_held_out_footage_out(shared_data):
  from hvisnet_jax.data_pipelines import recipe
  cfg = hvisnet_real.get_config()
  data = cfg.data
  data.root = shared_data
  recipe.check(data)
  stages = recipe.stage_weights(data, cfg.train)       # its stages name its own parts
  assert [start for start, _ in stages] == [cfg.train.steps, cfg.train.steps + 500]
  clips = recipe._part_sources(shared_data, 'clips', data.recipe.clips)  # pylint: disable=protected-access
  held = {os.path.join(shared_data, h) for h in hvisnet_real.HELD_OUT}
  assert clips and not held & set(clips)
  assert not any(c.endswith('.tsv') for c in clips)


def test_a_coco_part_is_built_once_in_the_workdir(tmp_path, shared_data):
  from hvisnet_jax.data_pipelines import recipe
  data = _data(shared_data, coco=dict(kind='coco', sources=('real/coco_mini',),
                                      annotations='annotations/instances_train2017.json',
                                      images='train2017', weight=2.0))
  tfds_dir, weights = recipe.prepare(data, str(tmp_path / 'wd'), log=lambda m: None)
  assert weights == (2.0,) and tfds_dir.startswith(str(tmp_path / 'wd' / 'data' / 'coco'))
  assert os.path.isfile(os.path.join(tfds_dir, 'dataset_info.json'))
  stamp = os.path.getmtime(os.path.join(tfds_dir, 'dataset_info.json'))
  assert recipe.prepare(data, str(tmp_path / 'wd'), log=lambda m: None) == (tfds_dir, weights)
  assert os.path.getmtime(os.path.join(tfds_dir, 'dataset_info.json')) == stamp


def test_stage_weights_change_the_parts_they_name_and_refuse_unknown_ones(tmp_path):
  from hvisnet_jax import config_defaults
  from hvisnet_jax.data_pipelines import recipe
  data = _data(tmp_path, a=dict(kind='pseudo', sources=('clips',), weight=2.0),
               b=dict(kind='coco', sources=('c',), weight=1.0))
  tcfg = config_defaults.train_config()
  tcfg.update(steps=100, stages=({'steps': 10, 'lr': 1e-4, 'weights': {'b': 4.0}},
                                 {'steps': 5, 'lr': 1e-5}))
  assert recipe.stage_weights(data, tcfg) == ((100, (2.0, 4.0)), (110, (2.0, 1.0)))
  tcfg.stages = ({'steps': 10, 'lr': 1e-4, 'weights': {'ccp': 4.0}},)
  with pytest.raises(ValueError, match=r"train.stages\[0\].weights: \['ccp'\] not among "
                                       r"data.recipe's parts \['a', 'b'\]"):
    recipe.stage_weights(data, tcfg)
