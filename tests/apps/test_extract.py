"""Trajectory-guided extraction: known answers on synthetic videos, parsers on ETH/UCY."""
import os

import numpy as np
import pytest

from hvisnet_jax.training import centers
from hvisnet_jax.apps import extract
from hvisnet_jax.synthetic import synth


def _oracle_frames(video, id_offset=100):
  """What a perfect tracker would report: per frame {track id: {'box'}} from ground truth."""
  n = len(video.frames)
  frames = [{} for _ in range(n)]
  for pid, ms in video.masks.items():
    for t, m in enumerate(ms):
      if m is not None:
        frames[t][pid + id_offset] = {'box': centers.box_of(m)}
  return frames


def test_known_answer_on_synthetic_videos(tmp_path):
  synth.write_dataset(str(tmp_path / 'd'), videos=2, frames=30, height=160, width=224,
                      preset='easy', seed=21)
  h = extract.read_homography(str(tmp_path / 'd' / 'trajectories' / 'H.txt'))
  correct = total = visible = 0
  for v in range(2):
    video = synth.render_video(21, v, 30, 160, 224, 'easy')
    rows = extract.read_obsmat(str(tmp_path / 'd' / 'trajectories' / f'{video.name}.txt'))
    frames = _oracle_frames(video)
    for pid in np.unique(rows[:, 1]).astype(int):       # people who were ever visible
      path = extract.person_image_path(rows, h, pid)
      chosen = extract.associate(path, frames)
      visible += sum(m is not None for m in video.masks[pid])
      total += len(chosen)
      correct += sum(tid == pid + 100 for tid in chosen.values())
  assert total > 0.7 * visible
  assert correct >= 0.95 * total


@pytest.mark.parametrize('seq,shape', [('seq_eth', (480, 640)), ('seq_hotel', (576, 720)),
                                       ('zara01', (576, 720))])
def test_real_eth_ucy_files(shared_data, seq, shape):
  d = os.path.join(shared_data, 'eth_ucy', seq)
  rows = extract.read_obsmat(os.path.join(d, 'obsmat.txt'))
  h = extract.read_homography(os.path.join(d, 'H.txt'))
  assert rows.shape[1] == 8 and len(rows) > 1000
  img = extract.world_to_image(h, rows[:, [2, 4]])
  # The ETH/UCY convention puts the annotated positions inside the reference frame (a few
  # in zara01 lie up to 9 px below it, people walking out of view).
  assert (img[:, 0] >= -2).all() and (img[:, 0] <= shape[1] + 2).all()
  assert (img[:, 1] >= -2).all() and (img[:, 1] <= 1.02 * shape[0]).all()
  pid = int(rows[0, 1])
  step = int(np.median(np.diff(np.unique(rows[rows[:, 1] == pid, 0]))))   # 6 for ETH
  path = extract.person_image_path(rows, h, pid, frame_offset=int(rows[0, 0]), frame_step=1)
  frames = sorted(path)
  assert frames == list(range(frames[0], frames[-1] + 1))     # interpolated between samples
  assert len(frames) >= step


def test_bad_trajectory_input(tmp_path):
  bad = tmp_path / 'obsmat.txt'
  bad.write_text('1 1 0.5 0 0.5 0 0 0\n2 1 0.6 0 0.5 0 0\n')
  with pytest.raises(extract.TrajectoryError, match=r'obsmat\.txt:2: expected 8 columns'):
    extract.read_obsmat(str(bad))
  good = tmp_path / 'good.txt'
  good.write_text('1 1 0.5 0 0.5 0 0 0\n2 1 0.6 0 0.5 0 0 0\n1 3 1 0 1 0 0 0\n')
  rows = extract.read_obsmat(str(good))
  with pytest.raises(extract.TrajectoryError, match=r'pid 7 is not in the file \(2 pids, 1\.\.3\)'):
    extract.person_image_path(rows, np.eye(3), 7, source=str(good))
  hfile = tmp_path / 'H.txt'
  hfile.write_text('1 0\n0 1\n')
  with pytest.raises(extract.TrajectoryError, match='expected a 3x3 homography'):
    extract.read_homography(str(hfile))
  with pytest.raises(FileNotFoundError):
    extract.read_obsmat(str(tmp_path / 'missing.txt'))
