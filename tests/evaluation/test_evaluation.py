"""`hvisnet eval`: identical to trackeval's own Evaluator, hand-checked cases, COCO AP."""
import copy
import json
import os

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from hvisnet_jax import cli, evaluation as ev

H, W = 48, 64


def _box_mask(x0, y0, x1, y1, h=H, w=W):
  m = np.zeros((h, w), bool)
  m[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
  return m


def _random_sequences(seed, name, frames=15, people=4):
  """GT of moving rectangles (disjoint per frame) and a noisy tracker output for it."""
  rng = np.random.default_rng(seed)
  gt = ev.Sequence.empty(name, frames, H, W)
  pred = ev.Sequence.empty(name, frames, H, W)
  start = rng.integers(0, 40, (people, 2))
  vel = rng.integers(-2, 3, (people, 2))
  swap_at = frames // 2
  for t in range(frames):
    taken = np.zeros((H, W), bool)
    ptaken = np.zeros((H, W), bool)
    for p in range(people):
      if rng.uniform() < 0.1:
        continue                                     # person missing in this frame
      x, y = start[p] + vel[p] * t
      m = _box_mask(x, y, x + 12, y + 16) & ~taken
      if m.sum() < 20:
        continue
      taken |= m
      gt.add(t, 2001 + p, m)
      if rng.uniform() < 0.15:
        continue                                     # tracker misses it (FN)
      dx, dy = rng.integers(-2, 3, 2)
      pm = np.roll(m, (dy, dx), (0, 1)) & ~ptaken
      if pm.any():
        ptaken |= pm
        pid = 2001 + p if not (p == 0 and t >= swap_at) else 2099    # an identity switch
        pred.add(t, pid, pm)
    if t % 4 == 1:                                   # a false positive now and then
      fp = _box_mask(50, 30, 60, 44) & ~ptaken
      if fp.any():
        ptaken |= fp
        pred.add(t, 2500, fp)
  ignore = _box_mask(0, 40, 20, 48) & ~gt_taken_last(gt)
  gt.add(frames - 1, 10000, ignore, ev.IGNORE)
  return gt, pred


def gt_taken_last(gt):
  t = gt.num_frames - 1
  m = np.zeros((H, W), bool)
  for rle in gt.masks[t]:
    m |= mask_utils.decode(rle).astype(bool)
  return m


def test_matches_trackeval_file_based_evaluator(tmp_path):
  import trackeval
  seqs = {f'seq{i}': _random_sequences(i, f'seq{i}') for i in range(3)}
  gt_dir, pred_dir = tmp_path / 'gt', tmp_path / 'trackers' / 'ours' / 'data'
  pred_dir.mkdir(parents=True)
  for name, (g, p) in seqs.items():
    (gt_dir / name / 'gt').mkdir(parents=True)
    ev.write_mots_txt(str(gt_dir / name / 'gt' / 'gt.txt'), g)
    ev.write_mots_txt(str(pred_dir / f'{name}.txt'), p)
  dataset = trackeval.datasets.MOTSChallenge({
      'GT_FOLDER': str(gt_dir), 'TRACKERS_FOLDER': str(tmp_path / 'trackers'),
      'SKIP_SPLIT_FOL': True, 'SEQ_INFO': {n: g.num_frames for n, (g, _) in seqs.items()},
      'TRACKERS_TO_EVAL': ['ours'], 'PRINT_CONFIG': False})
  evaluator = trackeval.Evaluator({
      'USE_PARALLEL': False, 'PRINT_RESULTS': False, 'OUTPUT_SUMMARY': False,
      'OUTPUT_DETAILED': False, 'PLOT_CURVES': False, 'PRINT_CONFIG': False,
      'TIME_PROGRESS': False, 'BREAK_ON_ERROR': True, 'DISPLAY_LESS_PROGRESS': True})
  metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({'PRINT_CONFIG': False}),
             trackeval.metrics.Identity({'PRINT_CONFIG': False})]
  ref, _ = evaluator.evaluate([dataset], metrics)
  ref = ref['MOTSChallenge']['ours']

  gt_read = {n: ev.read_mots_txt(str(gt_dir / n / 'gt' / 'gt.txt'), name=n) for n in seqs}
  ours = ev.evaluate_mots(gt_read, ev.read_mots(str(pred_dir)))
  for name in list(seqs) + ['COMBINED_SEQ']:
    r = ref[name]['pedestrian']
    want = dict(sMOTSA=r['CLEAR']['sMOTA'], MOTSA=r['CLEAR']['MOTA'], MOTSP=r['CLEAR']['MOTP'],
                TP=r['CLEAR']['CLR_TP'], FP=r['CLEAR']['CLR_FP'], FN=r['CLEAR']['CLR_FN'],
                IDSW=r['CLEAR']['IDSW'], HOTA=np.mean(r['HOTA']['HOTA']),
                DetA=np.mean(r['HOTA']['DetA']), AssA=np.mean(r['HOTA']['AssA']),
                IDF1=r['Identity']['IDF1'])
    got = ours['combined'] if name == 'COMBINED_SEQ' else ours['per_sequence'][name]
    assert set(got) == set(ev.METRIC_KEYS)
    for k, v in want.items():
      assert got[k] == pytest.approx(float(v), abs=1e-9), (name, k)
  c = ours['combined']
  assert c['IDSW'] >= 1 and c['FP'] >= 1 and c['FN'] >= 1 and 0 < c['sMOTSA'] < 1


def _seq(name, frames, entries, h=H, w=W):
  s = ev.Sequence.empty(name, frames, h, w)
  for t, obj, mask, *cls in entries:
    s.add(t, obj, mask, *cls)
  return s


def _mots(gt_entries, pred_entries, frames=1):
  g = _seq('s', frames, gt_entries)
  p = _seq('s', frames, pred_entries)
  return ev.evaluate_mots({'s': g}, {'s': p})['combined']


A = _box_mask(0, 0, 10, 10)          # 100 px
A_SHIFT = _box_mask(1, 0, 11, 10)    # IoU with A: 90 / 110
B = _box_mask(30, 20, 40, 30)


def test_one_false_positive():
  r = _mots([(0, 2001, A)], [(0, 2001, A_SHIFT), (0, 2002, B)])
  iou = 90 / 110
  assert (r['TP'], r['FP'], r['FN'], r['IDSW']) == (1, 1, 0, 0)
  assert r['MOTSA'] == pytest.approx(0.0)
  assert r['sMOTSA'] == pytest.approx(iou - 1)
  assert r['MOTSP'] == pytest.approx(iou)


def test_one_false_negative():
  r = _mots([(0, 2001, A), (0, 2002, B)], [(0, 2001, A)])
  assert (r['TP'], r['FP'], r['FN'], r['IDSW']) == (1, 0, 1, 0)
  assert r['MOTSA'] == pytest.approx(0.5) and r['sMOTSA'] == pytest.approx(0.5)
  assert r['MOTSP'] == pytest.approx(1.0)


def test_one_identity_switch():
  r = _mots([(0, 2001, A), (1, 2001, A)], [(0, 2001, A), (1, 2005, A)], frames=2)
  assert (r['TP'], r['FP'], r['FN'], r['IDSW']) == (2, 0, 0, 1)
  assert r['MOTSA'] == pytest.approx(0.5) and r['sMOTSA'] == pytest.approx(0.5)
  assert r['IDF1'] == pytest.approx(0.5)


def test_ignore_region_swallows_a_detection():
  region = _box_mask(25, 15, 45, 35)
  with_ignore = _mots([(0, 2001, A), (0, 10000, region, ev.IGNORE)],
                      [(0, 2001, A), (0, 2002, B)])
  without = _mots([(0, 2001, A)], [(0, 2001, A), (0, 2002, B)])
  assert with_ignore['FP'] == 0 and with_ignore['MOTSA'] == pytest.approx(1.0)
  assert without['FP'] == 1


def test_mask_iou_threshold_is_half():
  # trackeval matches at IoU >= 0.5 (up to float eps): exactly one half counts, 0.49 not.
  half = _box_mask(0, 0, 10, 5)
  r = _mots([(0, 2001, A)], [(0, 2001, half)])
  assert (r['TP'], r['FP'], r['FN']) == (1, 0, 0)
  below = _box_mask(0, 0, 7, 7)        # 49 px inside A: IoU 0.49
  r = _mots([(0, 2001, A)], [(0, 2001, below)])
  assert (r['TP'], r['FP'], r['FN']) == (0, 1, 1)


def test_overlapping_predictions_are_an_error_unless_resolved():
  g = _seq('s', 2, [(0, 2001, A), (1, 2001, A)])
  p = _seq('s', 2, [(0, 2001, A), (1, 2001, A), (1, 2002, A_SHIFT)])
  with pytest.raises(ev.EvalInputError, match=r'overlap in sequence s, frame 2 \(ids 2001 and 2002\)'):
    ev.evaluate_mots({'s': g}, {'s': p})
  r = ev.evaluate_mots({'s': g}, {'s': p}, resolve='order')['combined']
  assert (r['TP'], r['FP']) == (2, 1)          # 2002 keeps its 10-pixel strip


def test_resolve_by_score_keeps_the_higher_score():
  p = ev.Sequence.empty('s', 1, H, W, with_scores=True)
  p.add(0, 1, A, score=0.2)
  p.add(0, 2, A_SHIFT, score=0.9)
  r = ev.resolve_overlaps(p, 'score')
  assert r.ids[0].tolist() == [2, 1]
  assert mask_utils.area(r.masks[0]).tolist() == [100, 10]


def test_sequence_mismatches_are_named():
  g = {'a': _seq('a', 1, [(0, 1, A)]), 'b': _seq('b', 1, [(0, 1, A)])}
  p = {'a': _seq('a', 1, [(0, 1, A)]), 'c': _seq('c', 1, [(0, 1, A)])}
  with pytest.raises(ev.EvalInputError, match='only in ground truth: b; only in predictions: c'):
    ev.evaluate_mots(g, p)
  small = {'a': _seq('a', 1, [(0, 1, np.ones((10, 10), bool))], h=10, w=10)}
  with pytest.raises(ev.EvalInputError, match='image size 10x10 .* differs from 48x64'):
    ev.evaluate_mots({'a': g['a']}, small)


@pytest.mark.parametrize('line,match', [
    ('1 2001 2 48 64', r'x\.txt:2: expected 6 space-separated fields'),
    ('1 2001 two 48 64 abc', r'x\.txt:2: the first five fields must be integers'),
    ('0 2001 2 48 64 {rle}', r'x\.txt:2: frame 0 < 1 .*--kitti'),
    ('1 2002 2 40 64 {rle}', r'x\.txt:2: image size 40x64 differs from 48x64 on line 1'),
    ('1 2002 2 48 64 0', r'x\.txt:2: malformed RLE: run lengths sum to 0, expected .* 3072'),
    ('1 2001 2 48 64 {rle}', r'x\.txt:2: id 2001 appears twice in frame 1'),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, match):
  rle = mask_utils.encode(np.asfortranarray(B.astype(np.uint8)))['counts'].decode()
  first = mask_utils.encode(np.asfortranarray(A.astype(np.uint8)))['counts'].decode()
  path = tmp_path / 'x.txt'
  path.write_text(f'1 2001 2 48 64 {first}\n' + line.format(rle=rle) + '\n')
  with pytest.raises(ev.EvalInputError, match=match):
    ev.read_mots_txt(str(path))


def test_kitti_frames_start_at_zero(tmp_path):
  rle = mask_utils.encode(np.asfortranarray(A.astype(np.uint8)))['counts'].decode()
  path = tmp_path / 'k.txt'
  path.write_text(f'0 2001 2 48 64 {rle}\n2 2001 2 48 64 {rle}\n')
  s = ev.read_mots_txt(str(path), kitti=True)
  assert s.num_frames == 3 and [len(i) for i in s.ids] == [1, 0, 1]


def test_rle_counts_round_trip():
  rng = np.random.default_rng(0)
  m = np.asfortranarray((rng.uniform(size=(37, 53)) > 0.6).astype(np.uint8))
  rle = mask_utils.encode(m)
  runs = ev.rle_counts(rle['counts'])
  assert sum(runs) == m.size and sum(runs[1::2]) == m.sum()


def test_cli_mots_json_layout(tmp_path, capsys):
  g, p = _random_sequences(5, 'walk')
  (tmp_path / 'gt').mkdir()
  (tmp_path / 'pred').mkdir()
  ev.write_mots_txt(str(tmp_path / 'gt' / 'walk.txt'), g)
  ev.write_mots_txt(str(tmp_path / 'pred' / 'walk.txt'), p)
  out = tmp_path / 'm.json'
  assert cli.main(['eval', '--gt', str(tmp_path / 'gt'), '--pred', str(tmp_path / 'pred'),
                   '--json', str(out)]) == 0
  printed = capsys.readouterr().out
  assert 'COMBINED' in printed and 'walk' in printed and 'sMOTSA' in printed
  res = json.loads(out.read_text())
  assert set(res) == {'combined', 'per_sequence'} and set(res['per_sequence']) == {'walk'}
  assert set(res['combined']) == set(ev.METRIC_KEYS)
  assert all(isinstance(res['combined'][k], int) for k in ev.COUNT_KEYS)
  assert 0 <= res['combined']['MOTSP'] <= 1


def test_empty_prediction_file_means_nobody_found(tmp_path, capsys):
  g, _ = _random_sequences(6, 'walk')
  ev.write_mots_txt(str(tmp_path / 'gt.txt'), g)
  (tmp_path / 'pred.txt').write_text('')
  out = tmp_path / 'm.json'
  assert cli.main(['eval', '--gt', str(tmp_path / 'gt.txt'), '--pred', str(tmp_path / 'pred.txt'),
                   '--json', str(out)]) == 0
  res = json.loads(out.read_text())['combined']
  n_gt = sum(int(np.sum(np.asarray(c) == ev.PEDESTRIAN)) for c in g.classes)
  assert (res['TP'], res['FP'], res['FN']) == (0, 0, n_gt) and res['sMOTSA'] == 0
  # An empty ground truth: nobody there, sized by the predictions; each prediction is an FP.
  assert cli.main(['eval', '--gt', str(tmp_path / 'pred.txt'), '--pred', str(tmp_path / 'gt.txt'),
                   '--json', str(out)]) == 0
  res = json.loads(out.read_text())['combined']
  assert (res['TP'], res['FP'], res['FN']) == (0, n_gt, 0)


def test_a_folder_of_one_sequence_pairs_with_one_prediction_file_and_empty_is_nobody(
    tmp_path):
  g, p = _random_sequences(5, 'easy_1000_0000')
  (tmp_path / 'gt').mkdir()
  ev.write_mots_txt(str(tmp_path / 'gt' / 'easy_1000_0000.txt'), g)
  ev.write_mots_txt(str(tmp_path / 'tracks.txt'), p)
  out = tmp_path / 'm.json'
  assert cli.main(['eval', '--gt', str(tmp_path / 'gt'), '--pred', str(tmp_path / 'tracks.txt'),
                   '--json', str(out)]) == 0
  direct = tmp_path / 'direct.json'
  ev.write_mots_txt(str(tmp_path / 'gt.txt'), g)
  assert cli.main(['eval', '--gt', str(tmp_path / 'gt.txt'), '--pred',
                   str(tmp_path / 'tracks.txt'), '--json', str(direct)]) == 0
  assert (json.loads(out.read_text())['combined'] ==
          json.loads(direct.read_text())['combined'])
  # Empty on both sides, in folders: a score, not an error.
  for side in ('ge', 'pe'):
    (tmp_path / side).mkdir()
    (tmp_path / side / 'a.txt').write_text('')
  assert cli.main(['eval', '--gt', str(tmp_path / 'ge'), '--pred', str(tmp_path / 'pe'),
                   '--json', str(out)]) == 0
  res = json.loads(out.read_text())['combined']
  assert (res['TP'], res['FP'], res['FN']) == (0, 0, 0)


def test_json_never_lands_on_an_input_or_a_users_file(tmp_path, capsys):
  g, p = _random_sequences(4, 'walk')
  ev.write_mots_txt(str(tmp_path / 'gt.txt'), g)
  ev.write_mots_txt(str(tmp_path / 'pred.txt'), p)
  before = {f: (tmp_path / f).read_bytes() for f in ('gt.txt', 'pred.txt')}
  for target in ('gt.txt', 'pred.txt'):
    assert cli.main(['eval', '--gt', str(tmp_path / 'gt.txt'), '--pred',
                     str(tmp_path / 'pred.txt'), '--json', str(tmp_path / target)]) == 2
    assert 'would write over' in capsys.readouterr().err
  (tmp_path / 'notes.json').write_text('{"mine": 1}')
  assert cli.main(['eval', '--gt', str(tmp_path / 'gt.txt'), '--pred', str(tmp_path / 'pred.txt'),
                   '--json', str(tmp_path / 'notes.json')]) == 2
  assert 'is not an hvisnet eval result' in capsys.readouterr().err
  assert {f: (tmp_path / f).read_bytes() for f in before} == before
  assert (tmp_path / 'notes.json').read_text() == '{"mine": 1}'


def test_cli_reports_bad_input_without_writing(tmp_path, capsys):
  (tmp_path / 'g.txt').write_text('1 2001 2 48 64\n')
  out = tmp_path / 'm.json'
  assert cli.main(['eval', '--gt', str(tmp_path / 'g.txt'), '--pred', str(tmp_path / 'g.txt'),
                   '--json', str(out)]) == 2
  assert 'g.txt:1: expected 6' in capsys.readouterr().err
  assert not out.exists()


def _ytvis(seqs):
  gt = {'videos': [], 'annotations': [], 'categories': [{'id': 1, 'name': 'person'}]}
  res = []
  for vid, (g, p) in enumerate(seqs, 1):
    gt['videos'].append({'id': vid, 'name': g.name, 'height': H, 'width': W,
                         'length': g.num_frames,
                         'file_names': [f'{g.name}/{t:05d}.jpg' for t in range(g.num_frames)]})
    for seq, sink, key in ((g, gt['annotations'], 'gt'), (p, res, 'pred')):
      ids = sorted({int(i) for f in seq.ids for i in f if i != 10000})
      for obj in ids:
        segs = []
        for t in range(seq.num_frames):
          hit = [m for i, m in zip(seq.ids[t], seq.masks[t]) if i == obj]
          segs.append({'size': [H, W], 'counts': hit[0]['counts'].decode()} if hit else None)
        rec = {'video_id': vid, 'category_id': 1, 'segmentations': segs}
        if key == 'gt':
          rec.update(id=len(sink) + 1, iscrowd=0)
        else:
          rec['score'] = 0.9
        sink.append(rec)
  return gt, res


def test_ytvis_equals_mots_on_the_same_masks(tmp_path):
  seqs = [_random_sequences(i, f'v{i}') for i in (7, 8)]
  for g, _ in seqs:                    # YouTube-VIS has no ignore regions here
    for t in range(g.num_frames):
      keep = g.classes[t] != ev.IGNORE
      g.ids[t], g.classes[t] = g.ids[t][keep], g.classes[t][keep]
      g.masks[t] = [m for m, k in zip(g.masks[t], keep) if k]
  gt, res = _ytvis(seqs)
  (tmp_path / 'gt.json').write_text(json.dumps(gt))
  (tmp_path / 'res.json').write_text(json.dumps(res))
  g2, p2 = ev.read_ytvis(str(tmp_path / 'gt.json'), str(tmp_path / 'res.json'))
  via_ytvis = ev.evaluate_mots(g2, p2)
  via_mots = ev.evaluate_mots({g.name: g for g, _ in seqs}, {g.name: p for g, p in seqs})
  for k in ev.METRIC_KEYS:
    assert via_ytvis['combined'][k] == pytest.approx(via_mots['combined'][k], abs=1e-12), k


def test_ytvis_bad_video_id(tmp_path):
  gt, res = _ytvis([_random_sequences(1, 'v')])
  res[0]['video_id'] = 99
  (tmp_path / 'gt.json').write_text(json.dumps(gt))
  (tmp_path / 'res.json').write_text(json.dumps(res))
  with pytest.raises(ev.EvalInputError, match=r'res\.json: \[0\]: video_id 99'):
    ev.read_ytvis(str(tmp_path / 'gt.json'), str(tmp_path / 'res.json'))


def _coco_results_from_gt(gt):
  from pycocotools.coco import COCO
  coco = COCO()
  coco.dataset = copy.deepcopy(gt)
  coco.createIndex()
  res = []
  for ann in gt['annotations']:
    if ann.get('iscrowd'):
      continue
    rle = coco.annToRLE(ann)
    res.append({'image_id': ann['image_id'], 'category_id': ann['category_id'], 'score': 1.0,
                'segmentation': {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode()
                                 if isinstance(rle['counts'], bytes) else rle['counts']}})
  return res, coco


@pytest.mark.parametrize('sample', ['coco/test_coco.json', 'ochuman/test_ochuman.json'])
def test_coco_mask_ap_on_real_samples(shared_data, tmp_path, sample):
  path = os.path.join(shared_data, 'coco_ochuman_samples', sample)
  with open(path) as f:
    gt = json.load(f)
  res, coco = _coco_results_from_gt(gt)
  perfect = ev.evaluate_coco(path, res)
  assert perfect['AP'] == pytest.approx(1.0) and perfect['AP50'] == pytest.approx(1.0)
  # Perturb: shift every mask by a quarter of its box, so IoUs drop below the high thresholds.
  worse = []
  for r in res:
    m = mask_utils.decode(r['segmentation'])
    x, y, w, h = mask_utils.toBbox(r['segmentation'])
    m = np.roll(m, (int(h // 4) + 1, int(w // 4) + 1), (0, 1))
    e = mask_utils.encode(np.asfortranarray(m))
    worse.append(dict(r, segmentation={'size': [int(v) for v in e['size']], 'counts': e['counts'].decode()}))
  (tmp_path / 'res.json').write_text(json.dumps(worse))
  degraded = ev.evaluate_coco(path, str(tmp_path / 'res.json'))
  assert degraded['AP'] < 0.9 and degraded['AP'] < perfect['AP']
  assert degraded['AP75'] <= degraded['AP50']


def test_box_tracks_by_trackeval_known_answers():
  b = np.array([[0, 0, 10, 20], [30, 0, 40, 20]], float)
  gt = {'s': [(np.array([1, 2]), b + t) for t in range(5)]}
  perfect = ev.evaluate_box_tracks(gt, gt)['combined']
  assert perfect['HOTA'] == perfect['IDF1'] == perfect['MOTA'] == 1.0
  # Ids swap after frame 3: 2 switches; IDF1 = 2 * 6 / (10 + 10); every box still found.
  swapped = {'s': [(np.array([7, 8]), b + t) for t in range(3)] +
                  [(np.array([8, 7]), b + t) for t in range(3, 5)]}
  r = ev.evaluate_box_tracks(gt, swapped)['combined']
  assert (r['IDSW'], r['TP'], r['FP'], r['FN']) == (2, 10, 0, 0)
  assert r['IDF1'] == pytest.approx(0.6) and r['MOTA'] == pytest.approx(0.8)
  # A box shifted to IoU < 0.5 is a miss plus a false positive.
  off = {'s': [(np.array([1, 2]), b + t + np.array([0, 15, 0, 15]) * (t == 4)) for t in range(5)]}
  r = ev.evaluate_box_tracks(gt, off)['combined']
  assert (r['TP'], r['FP'], r['FN']) == (8, 2, 2)


def _coco_gt():
  return dict(images=[dict(id=1, height=427, width=640)],
              annotations=[dict(id=1, image_id=1, category_id=1, iscrowd=0, area=100.0,
                                bbox=[10, 10, 10, 10],
                                segmentation=[[10, 10, 20, 10, 20, 20, 10, 20]])],
              categories=[dict(id=1, name='person')])


@pytest.mark.parametrize('seg,score,message', [
    (dict(size=[10, 10], counts='0T1'), 0.9, r'\[0\] segmentation: mask size 10x10 differs from the image size 427x640'),
    (dict(size=[427, 640], counts='!!!garbage'), 0.9, r'\[0\] segmentation: malformed RLE'),
    (None, '0.9', r'\[0\] "score" must be a number'),
])
def test_coco_results_of_the_wrong_size_or_type_are_refused(seg, score, message):
  from pycocotools import mask as mask_utils
  from hvisnet_jax import evaluation
  if seg is None:
    m = np.zeros((427, 640), np.uint8, order='F')
    m[10:20, 10:20] = 1
    seg = mask_utils.encode(m)
    seg['counts'] = seg['counts'].decode()
  with pytest.raises(evaluation.EvalInputError, match=message):
    evaluation.evaluate_coco(_coco_gt(), [dict(image_id=1, category_id=1, segmentation=seg,
                                                score=score)])


def test_youtube_vis_results_with_wrong_types_are_refused(tmp_path):
  import json
  from hvisnet_jax import evaluation
  gt = dict(videos=[dict(id=1, name='v', height=8, width=8, length=2)],
            annotations=[], categories=[dict(id=1, name='person')])
  (tmp_path / 'gt.json').write_text(json.dumps(gt))
  for pred, message in (([dict(video_id=1, category_id=1, score='high',
                               segmentations=[None, None])], r'\[0\]: "score" must be a number'),
                        ([dict(video_id=1, category_id=1, score=0.5, segmentations={})],
                         r'\[0\]: "segmentations" must be a list')):
    (tmp_path / 'pred.json').write_text(json.dumps(pred))
    with pytest.raises(evaluation.EvalInputError, match=message):
      evaluation.read_ytvis(str(tmp_path / 'gt.json'), str(tmp_path / 'pred.json'))


def test_a_prediction_past_the_ground_truths_last_frame_is_refused(tmp_path, capsys):
  g, p = _random_sequences(6, 'walk')
  ev.write_mots_txt(str(tmp_path / 'gt.txt'), g)
  ev.write_mots_txt(str(tmp_path / 'pred.txt'), p)
  line = (tmp_path / 'pred.txt').read_text().splitlines()[0].split(' ')
  line[0] = '500'                                  # the ground truth has 15 frames
  with open(tmp_path / 'pred.txt', 'a') as f:
    f.write(' '.join(line) + '\n')
  out = tmp_path / 'm.json'
  assert cli.main(['eval', '--gt', str(tmp_path / 'gt.txt'), '--pred', str(tmp_path / 'pred.txt'),
                   '--json', str(out)]) == 2
  err = capsys.readouterr().err
  assert 'frame 500 is past the end of the ground truth' in err and '(15 frames' in err
  assert not out.exists()


@pytest.mark.parametrize('order', ['C', 'F'])
def test_encode_id_map_gives_pycocotools_bytes_for_every_id(order):
  """One scan of an id map gives each id's RLE, the bytes pycocotools gives its binary
  mask; with background=-1 a detector's label map (id 0 is a person) works the same."""
  rng = np.random.default_rng(0)
  for trial in range(60):
    h, w = (int(x) for x in rng.integers(1, 30, 2))
    m = rng.integers(-1, 4, (h, w)).astype(np.int32)
    if trial % 4 == 0:                          # blocks: long runs, edges, empty columns
      m[:] = -1
      m[:h // 2, :w // 2] = 2
      m[h // 2:, w // 3:] = 0
    m = np.asarray(m, order=order)
    want = {int(i): ev.encode_mask(m == i)['counts'] for i in np.unique(m) if i != -1}
    assert ev.encode_id_map(m, background=-1) == want
    got0 = ev.encode_id_map(np.where(m < 0, 0, m))
    assert got0 == {int(i): ev.encode_mask(np.where(m < 0, 0, m) == i)['counts']
                    for i in np.unique(m) if i > 0}
  assert ev.encode_id_map(np.zeros((4, 5), np.int32)) == {}


def test_coco_results_with_polygons_are_scored_as_their_masks(tmp_path):
  """Some tools write COCO results with polygon segmentations: they are scored as the
  masks they draw (a perfect polygon scores AP 1), not a traceback."""
  h, w = 60, 80
  gt = dict(images=[dict(id=1, height=h, width=w, file_name='a.jpg')],
            categories=[dict(id=1, name='person')],
            annotations=[dict(id=1, image_id=1, category_id=1, iscrowd=0, area=40 * 30.0,
                              bbox=[10, 10, 40, 30],
                              segmentation=[[10, 10, 50, 10, 50, 40, 10, 40]])])
  (tmp_path / 'gt.json').write_text(json.dumps(gt))
  res = [dict(image_id=1, category_id=1, score=0.9,
              segmentation=[[10, 10, 50, 10, 50, 40, 10, 40]])]
  r = ev.evaluate_coco(str(tmp_path / 'gt.json'), res)
  assert r['AP'] == pytest.approx(1.0)
  assert isinstance(res[0]['segmentation'], list)          # the caller's list is untouched


def test_ytvis_entries_of_the_wrong_kind_and_repeated_ids_are_one_line(tmp_path, capsys):
  gt = {'videos': [{'id': 1, 'name': 'v', 'height': 10, 'width': 10, 'length': 2}],
        'annotations': [{'id': 1, 'video_id': 1, 'category_id': 1, 'iscrowd': 0,
                         'segmentations': [None, None]}],
        'categories': [{'id': 1, 'name': 'person'}]}
  (tmp_path / 'gt.json').write_text(json.dumps(gt))
  (tmp_path / 'strings.json').write_text(json.dumps(['a', 'b']))
  assert cli.main(['eval', '--gt', str(tmp_path / 'gt.json'), '--pred',
                   str(tmp_path / 'strings.json')]) == 2
  assert 'strings.json: [0]: expected an object' in capsys.readouterr().err
  gt['annotations'] = gt['annotations'] * 2
  (tmp_path / 'dup.json').write_text(json.dumps(gt))
  (tmp_path / 'none.json').write_text('[]')
  assert cli.main(['eval', '--gt', str(tmp_path / 'dup.json'), '--pred',
                   str(tmp_path / 'none.json')]) == 2
  assert 'annotations[1] (id 1): id 1 repeats annotations[0]' in capsys.readouterr().err
