"""Tracking results in the field's formats, in memory (TrackResult) or streamed to a run
folder as frames come (RunFiles): MOTS txt and YouTube-VIS results, each written here."""
from __future__ import annotations

import array
import json
import os
from typing import Dict, List, Optional, Protocol

import numpy as np

from hvisnet_jax.evaluation import formats as evaluation


class ResultSink(Protocol):
  """What apps/track.track_source hands each frame's results to, in frame order."""

  def add(self, frame_index: int, masks: Dict[int, bytes], boxes, scores) -> None:
    """masks: track id -> COCO RLE counts; boxes, scores: by track id."""


def _ytvis_record(video_id, track_id, height, width, segments, scores) -> dict:
  """One YouTube-VIS result: segments per frame (RLE counts bytes, or None where absent)."""
  segs = [None if c is None else {'size': [height, width], 'counts': c.decode()}
          for c in segments]
  return {'video_id': video_id, 'category_id': 1, 'score': float(np.mean(scores)),
          'segmentations': segs, 'track_id': track_id}


class TrackResult:
  """Per-frame identities of one video, kept in memory as RLE masks (for the API; `hvisnet
  track` streams them to disk with RunFiles instead)."""

  def __init__(self, height: int, width: int):
    self.height, self.width = height, width
    self.frames: List[Dict[int, dict]] = []     # frame -> {track id: {rle, box, score}}

  def add(self, frame_index: int, masks: Dict[int, bytes], boxes, scores):
    """masks: track id -> COCO RLE counts (evaluation.encode_id_map)."""
    while len(self.frames) <= frame_index:
      self.frames.append({})
    for tid, counts in masks.items():
      self.frames[frame_index][tid] = dict(
          rle={'size': [self.height, self.width], 'counts': counts},
          box=boxes.get(tid), score=scores.get(tid, 1.0))

  def add_id_map(self, frame_index: int, id_map: np.ndarray, boxes, scores):
    """add() with the masks of an (H, W) track-id map (0 = nobody)."""
    self.add(frame_index, evaluation.encode_id_map(id_map), boxes, scores)

  def sequence(self, name: str, num_frames: Optional[int] = None) -> evaluation.Sequence:
    n = max(len(self.frames), num_frames or 0)
    seq = evaluation.Sequence.empty(name, n, self.height, self.width)
    for t, dets in enumerate(self.frames):
      for tid, d in sorted(dets.items()):
        seq.add(t, evaluation.mots_object_id(tid), d['rle'])
    return seq

  def ytvis_results(self, video_id: int = 1) -> List[dict]:
    ids = sorted({tid for f in self.frames for tid in f})
    return [_ytvis_record(video_id, tid, self.height, self.width,
                          [f[tid]['rle']['counts'] if tid in f else None for f in self.frames],
                          [f[tid]['score'] for f in self.frames if tid in f])
            for tid in ids]


class RunFiles:
  """`hvisnet track`'s result files, written as frames come, in constant memory.

  tracks.txt (MOTS) gets each frame's lines at once. results.json (YouTube-VIS) needs every
  frame of a track together, so each mask's RLE goes to a spill file and only its frame,
  offset, length and score stay in memory (32 bytes a mask); close() composes
  results.json one track at a time and removes the spill. The files are byte for byte
  what TrackResult + write_mots_txt + json.dump give.
  """

  def __init__(self, directory: str, name: str, height: int, width: int):
    self.dir, self.name = directory, name
    self.height, self.width = height, width
    self.num_frames = 0
    self._mots = open(os.path.join(directory, 'tracks.txt.partial'), 'w')
    self._spill_path = os.path.join(directory, '.segments.spill')
    self._spill = open(self._spill_path, 'wb')
    self._offset = 0
    self._tracks: Dict[int, tuple] = {}       # id -> (frames, offsets, lengths, scores)

  def add(self, frame_index: int, masks: Dict[int, bytes], boxes, scores):
    """masks: track id -> COCO RLE counts (evaluation.encode_id_map)."""
    del boxes
    self.num_frames = max(self.num_frames, frame_index + 1)
    lines = []
    for tid, counts in sorted(masks.items()):
      lines.append(f'{frame_index + 1} {evaluation.mots_object_id(tid)} '
                   f'{evaluation.PEDESTRIAN} {self.height} {self.width} {counts.decode()}\n')
      rec = self._tracks.get(tid)
      if rec is None:
        rec = self._tracks[tid] = (array.array('q'), array.array('q'), array.array('q'),
                                   array.array('d'))
      for column, v in zip(rec, (frame_index, self._offset, len(counts), scores.get(tid, 1.0))):
        column.append(v)
      self._spill.write(counts)
      self._offset += len(counts)
    self._mots.write(''.join(lines))

  @property
  def identities(self) -> int:
    return len(self._tracks)

  def close(self, video_id: int = 1) -> None:
    """Finishes tracks.txt and writes results.json (call once, after the last frame)."""
    self._mots.close()
    os.replace(os.path.join(self.dir, 'tracks.txt.partial'), os.path.join(self.dir, 'tracks.txt'))
    self._spill.close()
    tmp = os.path.join(self.dir, 'results.json.partial')
    with open(self._spill_path, 'rb') as spill, open(tmp, 'w') as f:
      f.write('[')
      for k, tid in enumerate(sorted(self._tracks)):
        frames, offsets, lengths, scores = self._tracks[tid]
        segments = [None] * self.num_frames
        for t, off, n in zip(frames, offsets, lengths):
          spill.seek(off)
          segments[t] = spill.read(n)
        if k:
          f.write(', ')
        json.dump(_ytvis_record(video_id, tid, self.height, self.width, segments,
                                np.frombuffer(scores, np.float64)), f)
      f.write(']')
    os.replace(tmp, os.path.join(self.dir, 'results.json'))
    os.remove(self._spill_path)

  def abort(self) -> None:
    for fh in (self._mots, self._spill):
      fh.close()
