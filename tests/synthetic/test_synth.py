"""The synthetic generator: deterministic bytes, the promised layout, heavy overlap in crowd."""
import filecmp
import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from hvisnet_jax import cli, evaluation
from hvisnet_jax.apps import extract
from hvisnet_jax.synthetic import synth


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
  out = tmp_path_factory.mktemp('synth') / 'd'
  synth.write_dataset(str(out), videos=2, frames=8, height=96, width=128, preset='crowd',
                      seed=3)
  return out


def test_same_arguments_same_bytes(dataset, tmp_path):
  again = tmp_path / 'again'
  assert cli.main(['synth', '--out', str(again), '--videos', '2', '--frames', '8', '--size',
                   '96x128', '--preset', 'crowd', '--seed', '3', '--quiet']) == 0
  cmp = filecmp.dircmp(dataset, again)
  def same(c):
    _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
    return (not mismatch and not errors and not c.left_only and not c.right_only and
            all(same(s) for s in c.subdirs.values()))
  assert same(cmp)
  other = tmp_path / 'other'
  synth.write_dataset(str(other), 2, 8, 96, 128, 'crowd', seed=4)
  assert (other / 'annotations.json').read_bytes() != (dataset / 'annotations.json').read_bytes()


def test_layout_and_formats(dataset):
  ann = json.loads((dataset / 'annotations.json').read_text())
  assert ann['categories'][0]['name'] == 'person'
  assert len(ann['videos']) == 2
  for v in ann['videos']:
    assert v['length'] == 8 and (v['height'], v['width']) == (96, 128)
    for name in v['file_names']:
      assert (dataset / 'JPEGImages' / name).is_file()
  taken = {}
  for a in ann['annotations']:
    assert len(a['segmentations']) == len(a['bboxes']) == len(a['areas']) == 8
    for t, (seg, box, area) in enumerate(zip(a['segmentations'], a['bboxes'], a['areas'])):
      assert (seg is None) == (box is None) == (area is None)
      if seg is None:
        continue
      m = mask_utils.decode({'size': seg['size'], 'counts': seg['counts'].encode()}).astype(bool)
      assert m.sum() == area >= synth.MIN_VISIBLE_PX
      ys, xs = np.nonzero(m)
      assert box == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
      key = (a['video_id'], t)
      assert not (taken.get(key, np.zeros_like(m)) & m).any()     # visible masks are disjoint
      taken[key] = taken.get(key, np.zeros_like(m)) | m
  # MOTS txt holds the same ground truth as the YouTube-VIS file.
  gt_json = dataset / 'annotations.json'
  via_mots = evaluation.read_mots(str(dataset / 'mots'))
  results = [{'video_id': a['video_id'], 'category_id': 1, 'score': 1.0,
              'segmentations': a['segmentations']} for a in ann['annotations']]
  res_path = dataset.parent / 'res.json'
  res_path.write_text(json.dumps(results))
  gt_seqs, _ = evaluation.read_ytvis(str(gt_json), str(res_path))
  r = evaluation.evaluate_mots(gt_seqs, via_mots)['combined']
  assert r['MOTSA'] == pytest.approx(1.0) and r['IDSW'] == 0 and r['FP'] == 0
  for line in (dataset / 'mots' / f'{ann["videos"][0]["name"]}.txt').read_text().splitlines():
    frame, obj, cls = (int(x) for x in line.split()[:3])
    assert frame >= 1 and obj > 2000 and cls == 2


def test_trajectories_in_eth_layout(dataset):
  h = np.loadtxt(dataset / 'trajectories' / 'H.txt')
  assert h.shape == (3, 3)
  name = json.loads((dataset / 'annotations.json').read_text())['videos'][0]['name']
  rows = np.loadtxt(dataset / 'trajectories' / f'{name}.txt')
  assert rows.ndim == 2 and rows.shape[1] == 8
  assert (rows[:, 3] == 0).all() and (rows[:, 6] == 0).all()     # z unused, as in ETH
  # The inverse homography brings world positions back to image pixels inside the frame
  # region where feet can be (below the top third, give or take people walking off-screen).
  img = extract.world_to_image(h, rows[:, [2, 4]])           # (col, row), ETH convention
  assert (img[:, 1] > 0.3 * 96).all()
  np.testing.assert_allclose(extract.image_to_world(h, img), rows[:, [2, 4]], atol=1e-6)


def test_crowd_overlap_and_easy_separation():
  def share_overlapping(preset):
    hits = total = 0
    for index in range(3):
      video = synth.render_video(11, index, 30, 128, 160, preset)
      for t in range(30):
        boxes = []
        for ms in video.masks.values():
          if ms[t] is not None:
            ys, xs = np.nonzero(ms[t])
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        if len(boxes) > 1:
          iou = mask_utils.iou(boxes, boxes, [0] * len(boxes))
          hits += (np.triu(np.asarray(iou), 1) > 0.5).any()
        total += 1
    return hits / total
  assert share_overlapping('crowd') >= 0.25
  assert share_overlapping('easy') < share_overlapping('crowd')


def test_bad_arguments(tmp_path, capsys):
  assert cli.main(['synth', '--out', str(tmp_path / 'x'), '--size', '96by128', '--quiet']) == 2
  assert '--size must be HxW' in capsys.readouterr().err
  with pytest.raises(ValueError, match='preset must be one of'):
    synth.render_video(0, 0, 2, 64, 64, 'party')
  with pytest.raises(ValueError, match='at least 32x32'):
    synth.write_dataset(str(tmp_path / 'y'), 1, 1, 16, 16, 'easy', 0)
  assert not os.path.exists(tmp_path / 'y')


def test_write_dataset_never_replaces_a_folder_it_did_not_write(tmp_path):
  """--out holding the user's files is refused before any work, never deleted;
  an earlier synth output, recognised by its marker, is replaced whole."""
  import pytest  # pylint: disable=g-import-not-at-top
  user = tmp_path / 'mine'
  user.mkdir()
  (user / 'notes.txt').write_text('keep me')
  with pytest.raises(FileExistsError, match='mine: holds files that hvisnet synth did not'):
    synth.write_dataset(str(user), 1, 2, 48, 64, 'easy', 0)
  assert (user / 'notes.txt').read_text() == 'keep me' and len(list(user.iterdir())) == 1
  out = tmp_path / 'syn'
  synth.write_dataset(str(out), 1, 2, 48, 64, 'easy', 0)
  (out / 'JPEGImages' / 'stale.txt').write_text('from the first run')
  synth.write_dataset(str(out), 1, 3, 48, 64, 'easy', 1)
  assert not (out / 'JPEGImages' / 'stale.txt').exists()
  assert not [p for p in tmp_path.iterdir() if p.name.startswith('.synth')]
