"""TFDS builders and the tf.data pipeline, on the real COCO/OCHuman samples and synthetic data."""
import json
import os
import shutil

import numpy as np
import pytest

import tensorflow as tf        # the data pipelines are the one part that needs tensorflow
import tensorflow_datasets as tfds
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from hvisnet_jax.data_pipelines import builders, pipeline, records
from hvisnet_jax import cli, config_defaults, evaluation, main
from hvisnet_jax.training import centers
from hvisnet_jax.synthetic import synth
from hvisnet_jax.training import trainer as train
from conftest import REPO

tf.config.set_visible_devices([], 'GPU')


@pytest.fixture(scope='module')
def synth_dir(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('synth') / 'videos')
  synth.write_dataset(out, videos=3, frames=6, height=96, width=128, preset='crowd', seed=3)
  return out


@pytest.fixture(scope='module')
def built(tmp_path_factory, synth_dir, shared_data):
  root = tmp_path_factory.mktemp('tfds')
  s = os.path.join(shared_data, 'coco_ochuman_samples')
  return dict(
      coco=builders.build('coco', os.path.join(s, 'coco'), str(root / 'coco'),
                          splits={'train': 'test_coco.json'}),
      ochuman=builders.build('coco', os.path.join(s, 'ochuman'), str(root / 'ochuman'),
                             splits={'train': 'test_ochuman.json'}),
      ytvis=builders.build('ytvis', synth_dir, str(root / 'ytvis')),
      mots=builders.build('mots', synth_dir, str(root / 'mots'), clip_length=4))


def _examples(builder):
  return list(tfds.as_numpy(builder.as_dataset(split='train', shuffle_files=False)))


def _check_centers(ex):
  for k, m in enumerate(ex['instances']['mask'][..., 0].astype(bool)):
    x, y = ex['instances']['inner_center'][k]
    assert m[int(y), int(x)], 'inner center outside its mask'
    np.testing.assert_allclose(ex['instances']['box'][k], centers.box_of(m))
    np.testing.assert_allclose(ex['instances']['centroid'][k], centers.mask_centroid(m),
                               rtol=1e-5)
    assert ex['instances']['area'][k] == m.sum()


@pytest.mark.parametrize('name,ann', [('coco', 'coco/test_coco.json'),
                                      ('ochuman', 'ochuman/test_ochuman.json')])
def test_coco_masks_equal_the_source_annotations(built, shared_data, name, ann):
  """COCO polygons and OCHuman RLE decode to exactly what pycocotools makes of the source."""
  coco = COCO(os.path.join(shared_data, 'coco_ochuman_samples', ann))
  person = coco.getCatIds(catNms=['person'])
  exs = _examples(built[name])
  n_src = sum(1 for a in coco.dataset['annotations'] if a['category_id'] in person)
  assert sum(len(ex['instances']['track']) for ex in exs) == n_src
  for ex in exs:
    assert ex['frames'].shape[0] == 1
    img = coco.loadImgs(int(ex['key']))[0]
    assert ex['frames'][0].shape == (img['height'], img['width'], 3)
    for k, ann_id in enumerate(ex['instances']['track']):
      want = coco.annToMask(coco.loadAnns([int(ann_id)])[0])
      np.testing.assert_array_equal(ex['instances']['mask'][k, ..., 0], want)
    _check_centers(ex)
  ids = np.concatenate([ex['instances']['id'] for ex in exs])
  assert sorted(ids) == list(range(1, n_src + 1))          # one identity per annotation
  assert built[name].info.metadata['num_ids']['train'] == n_src


def test_ytvis_videos_keep_masks_and_identities(built, synth_dir):
  gt = json.load(open(os.path.join(synth_dir, 'annotations.json')))
  exs = _examples(built['ytvis'])
  assert len(exs) == 3 and all(ex['frames'].shape[0] == 6 for ex in exs)
  by_track = {a['id']: a for a in gt['annotations']}
  gid_of = {}
  for ex in exs:
    for k, (t, track) in enumerate(zip(ex['instances']['frame'], ex['instances']['track'])):
      seg = by_track[track]['segmentations'][t]
      np.testing.assert_array_equal(ex['instances']['mask'][k, ..., 0],
                                    mask_utils.decode(dict(seg, counts=seg['counts'].encode())))
      assert gid_of.setdefault(track, ex['instances']['id'][k]) == ex['instances']['id'][k]
    _check_centers(ex)
  assert sorted(gid_of.values()) == list(range(1, len(gt['annotations']) + 1))
  # The frames are the source JPEG bytes, decoded.
  v = gt['videos'][0]
  ex = next(e for e in exs if e['key'].decode() == v['name'])
  src = tf.io.decode_jpeg(open(os.path.join(synth_dir, 'JPEGImages', v['file_names'][2]),
                               'rb').read()).numpy()
  np.testing.assert_array_equal(ex['frames'][2], src)


def test_mots_clips_keep_identity_across_clips(built, synth_dir):
  exs = _examples(built['mots'])
  assert len(exs) == 6                                      # 3 videos x clips of 4 + 2 frames
  seqs = evaluation.read_mots(os.path.join(synth_dir, 'mots'))
  gid_of = {}
  for ex in exs:
    video, clip = ex['key'].decode().split('/clip')
    seq, t0 = seqs[video], int(clip) * 4
    for k, (t, track) in enumerate(zip(ex['instances']['frame'], ex['instances']['track'])):
      rle = seq.masks[t0 + t][list(seq.ids[t0 + t]).index(track)]
      np.testing.assert_array_equal(ex['instances']['mask'][k, ..., 0], mask_utils.decode(rle))
      key = (video, track)
      assert gid_of.setdefault(key, ex['instances']['id'][k]) == ex['instances']['id'][k]
    _check_centers(ex)
  assert built['mots'].info.metadata['num_ids']['train'] == len(gid_of)


def _data_config(tfds_dir, **kw):
  d = config_defaults.data_config()
  d.update(source='tfds', tfds_dir=tfds_dir, scales=(96, 128), max_size=256, pad_size=(160, 224),
           max_instances=8, shuffle_buffer=8)
  d.update(**kw)
  return d


def test_flip_keeps_image_masks_boxes_and_centers_aligned(built):
  d = _data_config(built['coco'].data_dir, scales=(128,), max_instances=16)
  ex = next(iter(built['coco'].as_dataset(split='train', decoders=pipeline._SKIP_DECODING)))
  fn = pipeline.frame_fn(d, 16)
  a, b = fn(ex, 0, tf.constant(False), 0), fn(ex, 0, tf.constant(True), 0)
  a, b = tfds.as_numpy(a), tfds.as_numpy(b)
  h0, w0 = int(ex['height']), int(ex['width'])
  nh, nw = round(h0 * 128 / min(h0, w0)), round(w0 * 128 / min(h0, w0))
  assert a['images'][:nh, :nw].any(1).all() and not a['images'][:, nw:].any()
  np.testing.assert_array_equal(b['images'][:nh, :nw], a['images'][:nh, ::-1][:, -nw:])
  valid = a['valid']
  assert valid.sum() == len(ex['instances']['id']) and (valid == b['valid']).all()
  for k in np.flatnonzero(valid):
    np.testing.assert_array_equal(b['masks'][k, :, :nw], a['masks'][k, :, :nw][:, ::-1])
    bx = a['boxes'][k]
    np.testing.assert_allclose(b['boxes'][k], [nw - bx[2], bx[1], nw - bx[0], bx[3]], atol=1e-4)
    np.testing.assert_allclose(b['inner'][k], [nw - a['inner'][k, 0], a['inner'][k, 1]],
                               atol=1e-4)
    for out in (a, b):     # boxes still fit their resized masks (nearest resize: ~1 px)
      np.testing.assert_allclose(out['boxes'][k], centers.box_of(out['masks'][k]), atol=1.5)
      x, y = out['inner'][k]
      assert out['masks'][k, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].any()
  assert np.isnan(a['inner'][~valid]).all() and not a['masks'][~valid].any()
  # A frame with nobody in it is all background.
  empty = dict(ex, instances=dict(ex['instances'], frame=ex['instances']['frame'] + 1))
  e = tfds.as_numpy(fn(empty, 0, tf.constant(True), 0))
  assert not e['valid'].any() and not e['masks'].any()
  np.testing.assert_array_equal(e['images'], b['images'])


def _zoomed(fn, ex, z, fy, fx):
  zoom = (tf.constant(True), tf.constant(z), tf.constant(fy), tf.constant(fx))
  return tfds.as_numpy(fn(ex, 0, tf.constant(False), 0, zoom))


def test_zoom_crop_cuts_people_at_the_window_and_recomputes_their_boxes(built):
  """A 2x zoom-in shows a quarter of the photo: whoever shows enough of their mask stays,
  with a box and an inner center on what shows; slivers become ignore regions."""
  d = _data_config(built['coco'].data_dir, scales=(128,), max_instances=16)
  ex = next(iter(built['coco'].as_dataset(split='train', decoders=pipeline._SKIP_DECODING)))
  fn = pipeline.frame_fn(d, 16)
  plain = tfds.as_numpy(fn(ex, 0, tf.constant(False), 0))
  h0, w0 = int(ex['height']), int(ex['width'])
  for fy, fx in ((0.5, 0.3), (0.0, 1.0)):
    z = _zoomed(fn, ex, 2.0, fy, fx)
    # The window is the photo's own pixels, enlarged: its mean colour matches the same
    # region of the unzoomed frame.
    nh, nw = round(h0 * 128 / min(h0, w0)), round(w0 * 128 / min(h0, w0))
    ch, cw = round(h0 / 2), round(w0 / 2)
    oy, ox = min(int(fy * (h0 - ch + 1)), h0 - ch), min(int(fx * (w0 - cw + 1)), w0 - cw)
    region = plain['images'][round(oy * nh / h0):round((oy + ch) * nh / h0),
                             round(ox * nw / w0):round((ox + cw) * nw / w0)]
    assert abs(z['images'][:nh, :nw].mean() - region.mean()) < 4
    assert 0 < z['valid'].sum() < plain['valid'].sum()
    for k in np.flatnonzero(z['valid']):
      np.testing.assert_allclose(z['boxes'][k], centers.box_of(z['masks'][k]), atol=1.5)
      x, y = z['inner'][k]
      assert z['masks'][k, int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].any()
    assert np.isnan(z['inner'][~z['valid']]).all() and not z['masks'][~z['valid']].any()
  # Asking for the whole of each person turns the cut ones into ignore regions.
  strict = pipeline.frame_fn(_data_config(built['coco'].data_dir, scales=(128,),
                                          max_instances=16, zoom_min_visible=0.999), 16)
  loose = _zoomed(fn, ex, 2.0, 0.5, 0.3)
  tight = _zoomed(strict, ex, 2.0, 0.5, 0.3)
  cut = loose['valid'].sum() - tight['valid'].sum()
  assert cut > 0 and tight['ignore_valid'].sum() == loose['ignore_valid'].sum() + cut


@pytest.mark.parametrize('bad', [dict(zoom_in=0.5), dict(zoom_prob=1.5),
                                 dict(zoom_min_visible=0.0)])
def test_bad_zoom_settings_are_refused_by_name(built, bad):
  with pytest.raises(ValueError, match=r'data\.zoom_in must be >= 1'):
    pipeline.train_dataset(built['ytvis'], _data_config(built['ytvis'].data_dir, **bad), 4,
                           seed=0, process_index=0, process_count=1)


def test_zoom_in_batches_train_and_zoom_off_leaves_the_stream_as_it_was(built):
  base = _data_config(built['ytvis'].data_dir)
  off = pipeline.TfdsSource(base, global_batch=4, process_index=0, process_count=1).batch(1, 4, 0)
  zoom = _data_config(built['ytvis'].data_dir, zoom_in=3.0, zoom_prob=1.0)
  on = pipeline.TfdsSource(zoom, global_batch=4, process_index=0, process_count=1).batch(1, 4, 0)
  same = _data_config(built['ytvis'].data_dir, zoom_in=1.0, zoom_prob=1.0)
  again = pipeline.TfdsSource(same, global_batch=4, process_index=0, process_count=1).batch(1, 4, 0)
  for k in off:
    np.testing.assert_array_equal(off[k], again[k])
  assert on['images'].shape == off['images'].shape
  assert not np.array_equal(on['images'], off['images'])
  v = on['valid']
  assert np.isfinite(on['boxes'][v]).all() and (on['boxes'][v][:, 2:] > on['boxes'][v][:, :2]).all()


def test_two_hosts_see_disjoint_clips(built):
  d = _data_config(built['ytvis'].data_dir)
  seen = []
  for host in range(2):
    ds = pipeline.train_dataset(built['ytvis'], d, 4, seed=0, process_index=host,
                                process_count=2)
    ids = set()
    for batch in tfds.as_numpy(ds.take(6)):
      assert batch['images'].shape == (4, 160, 224, 3)
      ids |= set(batch['ids'][batch['valid']].tolist())
    seen.append(ids)
  assert seen[0] and seen[1] and not seen[0] & seen[1]


def test_batches_pair_frames_and_resume_exactly(built):
  d = _data_config(built['ytvis'].data_dir)
  src = pipeline.TfdsSource(d, global_batch=4, process_index=0, process_count=1)
  stream = [src.batch(s, 4, 0) for s in range(3)]
  again = pipeline.TfdsSource(d, global_batch=4, process_index=0, process_count=1).batch(2, 4, 0)
  for k in again:
    np.testing.assert_array_equal(again[k], stream[2][k])
  assert not np.array_equal(stream[1]['images'], stream[2]['images'])
  for b in stream:       # frames 2i, 2i+1 come from one clip: they share identities
    for i in range(0, 4, 2):
      assert set(b['ids'][i][b['valid'][i]]) & set(b['ids'][i + 1][b['valid'][i + 1]])
    assert b['ids'].max() <= src.num_ids


def test_trainer_reads_a_tfds_dataset_by_config_alone(built, tmp_path):
  cfg = config_defaults.load_config(os.path.join(REPO, 'configs', 'hvisnet_tiny.py'))
  cfg.data = _data_config(built['mots'].data_dir)
  cfg.loss.update(mask_samples=8, id_negatives=8)
  cfg.train.update(batch_size=2, steps=2, log_every=1, checkpoint_every=2, warmup_steps=1)
  state = train.train_and_evaluate(cfg, str(tmp_path), main.make_source(cfg))
  assert int(state.step) == 2
  log = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert len(log) == 2 and all(np.isfinite(r['loss']) for r in log)
  n_ids = built['mots'].info.metadata['num_ids']['train']
  assert state.params['extra']['id_classifier']['kernel'].shape[1] == n_ids + 1


# --------------------------------------------------------------------------- bad input

def _tiny_coco(tmp_path, anns, images=None):
  img = np.full((20, 30, 3), 128, np.uint8)
  tf.io.write_file(str(tmp_path / 'a.jpg'), tf.io.encode_jpeg(img))
  gt = {'images': images or [{'id': 1, 'file_name': 'a.jpg', 'height': 20, 'width': 30}],
        'annotations': anns, 'categories': [{'id': 1, 'name': 'person'}]}
  (tmp_path / 'annotations.json').write_text(json.dumps(gt))
  return str(tmp_path)


def _person(ann_id, poly, **kw):
  return dict(id=ann_id, image_id=1, category_id=1, iscrowd=0, segmentation=poly, **kw)


_BOX = [[2, 2, 12, 2, 12, 15, 2, 15]]
_IMAGE = {'id': 1, 'file_name': 'a.jpg', 'height': 20, 'width': 30}
_EMPTY_10X10 = mask_utils.encode(np.zeros((10, 10), np.uint8, order='F'))['counts'].decode()


@pytest.mark.parametrize('anns,images,match', [
    # a missing image: the record and the file
    ([_person(1, _BOX)], [dict(_IMAGE, file_name='nope.jpg')],
     r'images\[0\] \(id 1\).*nope\.jpg does not exist'),
    # a segmentation whose size disagrees with its image
    ([_person(7, {'size': [10, 10], 'counts': _EMPTY_10X10})], None,
     r'annotations\[0\] \(id 7\).*10x10 differs from the image size 20x30'),
    # an image file whose size disagrees with its record
    ([_person(1, _BOX)], [dict(_IMAGE, height=25)], r'a\.jpg is 20x30 but the annotations say'),
    # an annotation of an image that does not exist
    ([dict(_person(1, _BOX), image_id=9)], None, r'annotations\[0\] \(id 1\).*image_id 9'),
    # a file name that leaves the image folder is never opened
    ([_person(1, _BOX)], [dict(_IMAGE, file_name='../../etc/passwd')],
     r"images\[0\] \(id 1\) file_name: '\.\./\.\./etc/passwd' points outside the image folder"),
    ([_person(1, _BOX)], [dict(_IMAGE, file_name='/etc/passwd')], r'points outside the image folder'),
])
def test_bad_input_names_file_and_record(tmp_path, anns, images, match):
  _tiny_coco(tmp_path, anns, images)
  with pytest.raises(records.DataInputError, match=match):
    list(records.coco_records(str(tmp_path / 'annotations.json')))


def test_bad_json_and_counted_skips(tmp_path):
  box = _BOX
  # Malformed JSON: file and position.
  (tmp_path / 'bad').mkdir()
  (tmp_path / 'bad' / 'annotations.json').write_text('{"images": [1, }')
  with pytest.raises(records.DataInputError, match=r'annotations\.json: not valid JSON.*line 1'):
    list(records.coco_records(str(tmp_path / 'bad' / 'annotations.json')))
  (tmp_path / 'bad' / 'annotations.json').write_text('[]')
  with pytest.raises(records.DataInputError, match=r'expected COCO JSON with "images" and'):
    list(records.coco_records(str(tmp_path / 'bad' / 'annotations.json')))
  # Zero-area masks and images without people are skipped and counted.
  d = tmp_path / 'skips'
  d.mkdir()
  _tiny_coco(d, [_person(1, box), _person(2, [[1, 1, 1, 1, 1, 1]]), _person(3, [])],
             images=[{'id': 1, 'file_name': 'a.jpg', 'height': 20, 'width': 30},
                     {'id': 2, 'file_name': 'a.jpg', 'height': 20, 'width': 30}])
  skips = records.Skips()
  recs = list(records.coco_records(str(d / 'annotations.json'), skips=skips))
  assert [r.key for r in recs] == ['1'] and [i.track for i in recs[0].instances] == [1]
  assert skips == {'zero_area_masks': 2, 'images_without_people': 1}


def test_ytvis_videos_without_people_and_other_categories_are_counted(tmp_path, synth_dir):
  gt = json.load(open(os.path.join(synth_dir, 'annotations.json')))
  gt['categories'].append({'id': 2, 'name': 'dog'})
  first = gt['videos'][0]['id']
  for ann in gt['annotations']:
    if ann['video_id'] == first:
      ann['category_id'] = 2
  path = tmp_path / 'a.json'
  path.write_text(json.dumps(gt))
  skips = records.Skips()
  recs = list(records.ytvis_records(str(path), os.path.join(synth_dir, 'JPEGImages'),
                                    skips=skips))
  n_first = sum(a['video_id'] == first for a in gt['annotations'])
  assert len(recs) == 2 and skips == {'other_category_annotations': n_first,
                                      'videos_without_people': 1}
  # Keeping the other category instead keeps only that video.
  assert [r.key for r in records.ytvis_records(str(path), os.path.join(synth_dir, 'JPEGImages'),
                                               categories=('dog',))] == [gt['videos'][0]['name']]


def test_mots_layouts_motschallenge_and_kitti(tmp_path, synth_dir):
  """The synthetic MOTS output rearranged as MOTSChallenge and as KITTI-MOTS reads the same."""
  names = sorted(f[:-4] for f in os.listdir(os.path.join(synth_dir, 'mots')))
  for name in names:
    frames = sorted(os.listdir(os.path.join(synth_dir, 'JPEGImages', name)))
    lines = open(os.path.join(synth_dir, 'mots', f'{name}.txt')).read().splitlines()
    challenge = tmp_path / 'challenge' / name
    (challenge / 'gt').mkdir(parents=True)
    (challenge / 'gt' / 'gt.txt').write_text('\n'.join(lines) + '\n')
    shutil.copytree(os.path.join(synth_dir, 'JPEGImages', name), challenge / 'img1')
    kitti = tmp_path / 'kitti'
    (kitti / 'instances_txt').mkdir(parents=True, exist_ok=True)
    (kitti / 'instances_txt' / f'{name}.txt').write_text(
        '\n'.join(f'{int(l.split()[0]) - 1} {l.split(" ", 1)[1]}' for l in lines) + '\n')
    shutil.copytree(os.path.join(synth_dir, 'JPEGImages', name), kitti / 'images' / name)
    assert len(frames) == 6
  ref = list(records.mots_records(synth_dir, clip_length=0))
  for layout in ('challenge', 'kitti'):
    got = list(records.mots_records(str(tmp_path / layout), clip_length=0))
    assert [r.key for r in got] == [r.key for r in ref] == names
    for a, b in zip(got, ref):
      assert [(i.frame, i.track) for i in a.instances] == [(i.frame, i.track) for i in b.instances]
      assert [os.path.basename(f) for f in a.frames] == [os.path.basename(f) for f in b.frames]
  # An annotated frame beyond the images is an error naming the file.
  gt = tmp_path / 'challenge' / names[0] / 'gt' / 'gt.txt'
  rest_of_first_line = gt.read_text().splitlines()[0].split(' ', 1)[1]
  gt.write_text(gt.read_text() + f'9 {rest_of_first_line}\n')
  with pytest.raises(records.DataInputError, match=r'gt\.txt: annotates frame 9 but .*img1 '
                     r'holds only 6 images'):
    list(records.mots_records(str(tmp_path / 'challenge')))


def test_build_dataset_cli(tmp_path, synth_dir, capsys):
  out = tmp_path / 'out'
  assert cli.main(['build-dataset', '--format', 'ytvis', '--source', synth_dir,
                   '--out', str(out), '--clip-length', '4']) == 0
  text = capsys.readouterr().out
  assert 'train: 6 clips' in text and '--config.data.tfds_dir=' in text
  assert pipeline.find_dataset_dir(str(out)).endswith(os.path.join('person', '1.0.0'))
  # The same build again is a no-op; another source into the same place is refused.
  assert cli.main(['build-dataset', '--format', 'ytvis', '--source', synth_dir,
                   '--out', str(out), '--clip-length', '4']) == 0
  assert 'train: 6 clips' in capsys.readouterr().out
  link = tmp_path / 'link'                    # a link to the same folder is the same source
  link.symlink_to(synth_dir)
  assert cli.main(['build-dataset', '--format', 'ytvis', '--source', str(link),
                   '--out', str(out), '--clip-length', '4']) == 0
  assert 'train: 6 clips' in capsys.readouterr().out
  other = tmp_path / 'other'
  shutil.copytree(synth_dir, other)
  assert cli.main(['build-dataset', '--format', 'ytvis', '--source', str(other),
                   '--out', str(out), '--clip-length', '4']) == 2
  assert f'already holds a dataset built from {synth_dir}' in capsys.readouterr().err
  assert cli.main(['build-dataset', '--format', 'ytvis', '--source', synth_dir,
                   '--out', str(out), '--clip-length', '3']) == 2
  assert "'clip_length': 4" in capsys.readouterr().err
  # Errors name the file; nothing half-built is left looking finished.
  bad = tmp_path / 'bad'
  shutil.copytree(synth_dir, bad)
  gt = json.load(open(bad / 'annotations.json'))
  gt['annotations'][1]['segmentations'] = gt['annotations'][1]['segmentations'][:2]
  (bad / 'annotations.json').write_text(json.dumps(gt))
  assert cli.main(['build-dataset', '--format', 'ytvis', '--source', str(bad),
                   '--out', str(tmp_path / 'out2')]) == 2
  err = capsys.readouterr().err
  assert 'annotations.json: annotations[1]' in err and 'expected 6 segmentations' in err
  with pytest.raises(FileNotFoundError):
    pipeline.find_dataset_dir(str(tmp_path / 'out2'))


def test_a_training_stage_draws_from_its_own_mix_and_resumes_inside_it(built):
  # Two datasets, the second's identities offset past the first's: the ids say which
  # dataset each pair came from.
  first = pipeline.num_identities(built['ytvis'], 'train')
  d = _data_config(','.join([built['ytvis'].data_dir, built['coco'].data_dir]),
                   tfds_weights=(1.0, 1e-6), tfds_stages=((2, (1e-6, 1.0)),))
  src = pipeline.TfdsSource(d, global_batch=4, process_index=0, process_count=1)
  stream = [src.batch(s, 4, 0) for s in range(4)]
  ids = [b['ids'][b['valid'] & (b['ids'] > 0)] for b in stream]
  assert all(len(i) for i in ids)
  assert all((i <= first).all() for i in ids[:2]) and all((i > first).all() for i in ids[2:])
  again = pipeline.TfdsSource(d, global_batch=4, process_index=0, process_count=1).batch(3, 4, 0)
  for k in again:
    np.testing.assert_array_equal(again[k], stream[3][k])
