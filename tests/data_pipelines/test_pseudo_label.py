"""`hvisnet pseudo-label`: YouTube-VIS + MOTS out, resumable, nothing half-written; inputs checked first."""
import json
import os

import cv2
import numpy as np
import pytest


def test_pseudo_label_writes_ytvis_that_build_dataset_reads_and_resumes(
    tmp_path, shared_data, ssdlite_teacher, monkeypatch):
  from hvisnet_jax.data_pipelines import builders, pseudo_label, records
  src = os.path.join(shared_data, 'real', 'clips', 'mmaction2_basketball_gym.mp4')
  empty = tmp_path / 'empty_room'
  empty.mkdir()
  for i in range(4):                          # a clip without people: skipped and counted
    cv2.imwrite(str(empty / f'{i:03d}.jpg'), np.full((64, 80, 3), 200, np.uint8))
  out = str(tmp_path / 'pl')
  opts = pseudo_label.Options(every=2, max_frames=6, min_track_len=2)

  # Interrupted in the middle of the first source: nothing that looks finished is left.
  calls = {'n': 0}
  real_detect = ssdlite_teacher.detect
  def failing(rgb):
    calls['n'] += 1
    if calls['n'] == 3:
      raise KeyboardInterrupt
    return real_detect(rgb)
  monkeypatch.setattr(ssdlite_teacher, 'detect', failing)
  with pytest.raises(KeyboardInterrupt):
    pseudo_label.run([src, str(empty)], out, opts, teacher=ssdlite_teacher)
  assert not os.path.exists(os.path.join(out, 'annotations.json'))
  assert not os.listdir(os.path.join(out, 'parts'))
  monkeypatch.setattr(ssdlite_teacher, 'detect', real_detect)

  stats = pseudo_label.run([src, str(empty)], out, opts, teacher=ssdlite_teacher)
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
  monkeypatch.setattr(ssdlite_teacher, 'detect', lambda rgb: pytest.fail('relabelled a finished source'))
  again = pseudo_label.run([src, str(empty)], out, opts, teacher=ssdlite_teacher)
  assert again['done_before'] == 2 and again['labelled'] == 0
  b = builders.build('ytvis', out, str(tmp_path / 'tfds'))
  assert b.info.splits['train'].num_examples == 1


def test_pseudo_label_checks_sources_first(tmp_path):
  from hvisnet_jax.data_pipelines import pseudo_label
  with pytest.raises(FileNotFoundError, match='nope.mp4'):
    pseudo_label.run(['nope.mp4'], str(tmp_path / 'o'), pseudo_label.Options(), teacher=object())
  a, b = tmp_path / 'x' / 'JPEGImages', tmp_path / 'y'
  a.mkdir(parents=True)
  (b / 'x').mkdir(parents=True)
  with pytest.raises(ValueError, match="share the name 'x'"):
    pseudo_label.run([str(a), str(b / 'x')], str(tmp_path / 'o'), pseudo_label.Options(),
                     teacher=object())


def test_source_names_stay_inside_the_output_folder(tmp_path, monkeypatch):
  from hvisnet_jax.data_pipelines import pseudo_label
  sub = tmp_path / 'clips' / 'sub'
  sub.mkdir(parents=True)
  monkeypatch.chdir(sub)
  assert pseudo_label.source_name('..') == 'clips'
  assert pseudo_label.source_name('.') == 'sub'
  assert pseudo_label.source_name('./') == 'sub'
  assert pseudo_label.source_name(str(tmp_path / 'a b' / 'JPEGImages')) == 'a_b'
  assert pseudo_label.source_name('/tmp/.hidden.mp4') == 'hidden'
  assert pseudo_label.source_name(str(tmp_path / 'my clip (1).mp4')) == 'my_clip__1_'


def test_labelling_a_relative_source_never_touches_other_files_in_out(tmp_path, monkeypatch):
  from hvisnet_jax.data_pipelines import pseudo_label, teacher as teacher_lib

  class Nobody:                              # a teacher that finds no one: the source is
    def detect(self, rgb):                   # labelled, then left out as without people
      return teacher_lib.Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

  frames = tmp_path / 'frames' / 'sub'
  frames.mkdir(parents=True)
  for folder in (frames, frames.parent):
    for i in range(3):
      cv2.imwrite(str(folder / f'{i}.jpg'), np.full((32, 48, 3), 90, np.uint8))
  out = tmp_path / 'out'
  (out / 'JPEGImages' / 'other').mkdir(parents=True)
  (out / 'JPEGImages' / 'other' / '00000.jpg').write_bytes(b'another source')
  monkeypatch.chdir(frames)
  for source in ('.', '..'):               # '.' named JPEGImages itself, '..' all of OUT
    stats = pseudo_label.run([source], str(out), pseudo_label.Options(), teacher=Nobody(),
                             log=lambda *_: None, add=source == '..')
    assert stats['without_people'] == (1 if source == '.' else 2)    # --add kept the first
  assert (out / 'JPEGImages' / 'other' / '00000.jpg').read_bytes() == b'another source'
  assert sorted(os.listdir(frames)) == ['0.jpg', '1.jpg', '2.jpg']


def test_an_out_folder_holding_other_files_is_refused_before_labelling(tmp_path):
  from hvisnet_jax.data_pipelines import pseudo_label  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'mine'
  out.mkdir()
  (out / 'notes.txt').write_text('keep me')
  src = tmp_path / 'frames'
  src.mkdir()
  with pytest.raises(FileExistsError, match='mine: holds files that hvisnet pseudo-label'):
    pseudo_label.run([str(src)], str(out), pseudo_label.Options(), teacher=object())
  assert sorted(p.name for p in out.iterdir()) == ['notes.txt']
  pseudo_label.check_out_dir(str(tmp_path / 'new'))           # new or earlier output: fine
  (tmp_path / 'earlier' / 'parts').mkdir(parents=True)
  pseudo_label.check_out_dir(str(tmp_path / 'earlier'))


def test_pseudo_label_into_a_bucket_resumes_from_it(tmp_path, shared_data, ssdlite_teacher,
                                                   gcs_dir, monkeypatch):
  """--out gs://...: labelled in a local copy, uploaded with annotations.json last; a rerun
  finds the finished source in the bucket and labels nothing."""
  from conftest import gcs_objects  # pylint: disable=g-import-not-at-top
  from hvisnet_jax.data_pipelines import pseudo_label
  monkeypatch.chdir(tmp_path)
  src = os.path.join(shared_data, 'real', 'clips', 'mmaction2_basketball_gym.mp4')
  opts = pseudo_label.Options(every=2, max_frames=4, min_track_len=2)
  stats = pseudo_label.run([src], gcs_dir, opts, teacher=ssdlite_teacher)
  assert stats['labelled'] == 1 and stats['tracks'] >= 1
  objects = gcs_objects(gcs_dir)
  assert 'annotations.json' in objects and 'parts/mmaction2_basketball_gym.json' in objects
  assert sum(o.startswith('JPEGImages/mmaction2_basketball_gym/') for o in objects) == 4
  monkeypatch.setattr(ssdlite_teacher, 'detect', lambda rgb: pytest.fail('relabelled'))
  again = pseudo_label.run([src], gcs_dir, opts, teacher=ssdlite_teacher)
  assert again['done_before'] == 1 and again['labelled'] == 0
  assert os.listdir(tmp_path) == []                     # no local 'gs:' folder


class _BoxTeacher:
  """A teacher that sees the same two people in every frame: a clear one and a faint one
  (score 0.3, under the 0.5 that makes a person), masks filling their boxes."""
  BOXES = np.array([[20, 10, 45, 90], [90, 20, 120, 100]], np.float32)
  SCORES = np.array([0.9, 0.3], np.float32)

  def detect(self, rgb):
    from hvisnet_jax.data_pipelines import teacher as teacher_lib
    return teacher_lib.Detections(self.BOXES.copy(), self.SCORES.copy())

  def masks(self, rgb, boxes, scores):
    label = np.full(rgb.shape[:2], -1, np.int32)
    for j, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
      label[y1:y2, x1:x2] = j
    return label


def test_photos_are_labelled_one_by_one_and_unclaimed_heads_are_ignored(tmp_path):
  from hvisnet_jax.data_pipelines import pseudo_label
  src = tmp_path / 'crowd' / 'images'
  src.mkdir(parents=True)
  for name in ('a.jpg', 'b.jpg'):
    cv2.imwrite(str(src / name), np.full((120, 160, 3), 128, np.uint8))
  heads = {'a.jpg': [[30, 20], [140, 15]], 'b.jpg': [[32, 22]]}
  (tmp_path / 'crowd' / 'heads.json').write_text(json.dumps(heads))
  opts = pseudo_label.Options(heads=True, photos=True)
  stats = pseudo_label.run([str(src)], str(tmp_path / 'pl'), opts, teacher=_BoxTeacher())
  assert stats['tracks'] == 2                       # the clear person, once in each photo
  part = json.load(open(tmp_path / 'pl' / 'parts' / 'crowd.json'))
  assert [sorted(int(t) for t in f) for f in part['tracks'].values()] == [[0], [1]]
  # Photo a: the faint person's box and the head at (140, 15), which nobody claims; the
  # head at (30, 20) is the clear person's. Photo b: only the faint person.
  ignore_a = part['ignore']['0']
  assert [90, 20, 120, 100] in [[round(v) for v in b] for b in ignore_a]
  unclaimed = [b for b in ignore_a if b[0] <= 140 <= b[2] and b[1] <= 15 <= b[3]]
  assert len(ignore_a) == 2 and len(unclaimed) == 1
  assert len(part['ignore']['1']) == 1
  # A file without an entry in heads.json is refused, naming both.
  cv2.imwrite(str(src / 'c.jpg'), np.full((120, 160, 3), 128, np.uint8))
  with pytest.raises(ValueError, match=r"heads.json: no entry for 'c.jpg'"):
    pseudo_label.run([str(src)], str(tmp_path / 'pl2'), opts, teacher=_BoxTeacher())


def test_unclaimed_head_regions_take_their_size_from_the_neighbours():
  from hvisnet_jax.data_pipelines import pseudo_label
  pts = np.array([[100.0, 50.0], [130.0, 50.0], [160.0, 50.0]])
  boxes = pseudo_label.unclaimed_head_regions(pts, [], (480, 640))
  assert len(boxes) == 3
  x1, y1, x2, y2 = boxes[1]                       # neighbours 30 px away: a 10 px head
  assert (x2 - x1, y2 - y1) == pytest.approx((24.0, 68.0))
  assert x1 < 130 < x2 and y1 < 50 < y2
  # Claimed by a person whose box holds the head in its top third: no region.
  assert pseudo_label.unclaimed_head_regions(pts[:1], [[80, 40, 40, 120]], (480, 640)) == []
  # A head low in a person's box is another person's (in front of or behind it).
  assert len(pseudo_label.unclaimed_head_regions(np.array([[100.0, 140.0]]),
                                                 [[80, 40, 40, 120]], (480, 640))) == 1


def test_an_earlier_output_of_other_sources_is_kept_only_on_purpose(tmp_path):
  from hvisnet_jax.data_pipelines import pseudo_label
  srcs = []
  for name in ('first', 'second'):
    d = tmp_path / name
    d.mkdir()
    for i in range(2):
      cv2.imwrite(str(d / f'{i}.jpg'), np.full((120, 160, 3), 128, np.uint8))
    srcs.append(str(d))
  out = tmp_path / 'pl'
  opts = pseudo_label.Options(photos=True)
  pseudo_label.run(srcs[:1], str(out), opts, teacher=_BoxTeacher())
  before = (out / 'annotations.json').read_bytes()
  with pytest.raises(FileExistsError, match=r'holds the labels of other sources \(first\)'):
    pseudo_label.run(srcs[1:], str(out), opts, teacher=_BoxTeacher())
  assert (out / 'annotations.json').read_bytes() == before
  stats = pseudo_label.run(srcs[1:], str(out), opts, teacher=_BoxTeacher(), add=True)
  assert stats['videos'] == 2 and stats['done_before'] == 0
  names = [v['name'] for v in json.load(open(out / 'annotations.json'))['videos']]
  assert sorted(names) == ['first', 'second']
