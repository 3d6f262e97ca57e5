"""Frames in (video files, image folders, cameras, stream URLs) and rendered frames out.

A reader thread decodes ahead of the accelerator. A frame that fails to decode mid-stream
is reported (warning), skipped, and its number is kept, so outputs stay aligned with
the source's frame numbering.
"""
from __future__ import annotations

import glob
import logging
import os
import queue
import threading
from typing import Iterator, Optional, Tuple

import cv2
import numpy as np

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
_END = object()


class VideoSourceError(ValueError):
  pass


class FrameReader:
  """Iterates (frame_index, RGB uint8 frame or None if it failed to decode)."""

  def __init__(self, source, prefetch: int = 8, max_consecutive_failures: int = 25,
               start: int = 0, count: Optional[int] = None, stride: int = 1):
    """start, count, stride: a part of the source, its frames start, start + stride, ...
    (at most count of them), numbered 0, 1, ... Skipped video frames are grabbed, not
    decoded."""
    for name, v, least in (('start', start, 0), ('stride', stride, 1), ('count', count, 1)):
      if v is not None and (not isinstance(v, int) or v < least):
        raise ValueError(f'{name} is {v!r}; expected an integer >= {least}')
    self.start, self.count, self.stride = start, count, stride
    self.source = source
    self.max_failures = max_consecutive_failures
    self.files = None
    self.cap = None
    self.failed = []             # frame numbers that did not decode (kept as gaps)
    self.resized = []            # folder frames of another size, resized to the first's
    self.size_hw = None          # (height, width) of every frame yielded
    self.stopped_early = False   # a video whose reads failed before its declared length
    self.frames_seen = 0         # frame numbers yielded, decoded or not
    # A live source (a camera, a stream, or a capture object with read/get/release) is
    # never made to wait: when the consumer is busy (a crowd pass takes a second or more on
    # a CPU) the oldest waiting frame is dropped for the newest, and its number recorded.
    self.live = False
    self.dropped = []
    if hasattr(source, 'read') and hasattr(source, 'release'):
      self.cap, self.live = source, True
    elif isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
      self.cap, self.live = cv2.VideoCapture(int(source)), True
      if not self.cap.isOpened():
        raise VideoSourceError(f'camera {source}: cannot be opened')
    elif isinstance(source, str) and '://' in source:
      self.cap, self.live = cv2.VideoCapture(source), True
      if not self.cap.isOpened():
        raise VideoSourceError(f'{source}: cannot open the stream')
    elif os.path.isdir(source):
      self.files = sorted(f for f in glob.glob(os.path.join(source, '*'))
                          if f.lower().endswith(IMAGE_EXTS))
      if not self.files:
        raise VideoSourceError(f'{source}: folder holds no images ({", ".join(IMAGE_EXTS)})')
    elif not os.path.exists(source):
      raise FileNotFoundError(f'{source}: no such video file or image folder')
    else:
      if os.path.getsize(source) == 0:
        raise VideoSourceError(f'{source}: empty file')
      self.cap = cv2.VideoCapture(source)
      if not self.cap.isOpened():
        raise VideoSourceError(f'{source}: not a readable video (OpenCV cannot open it)')
    self.fps = 30.0
    self.frame_count = len(self.files) if self.files else 0
    if self.cap is not None:
      self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
      self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    self.source_frame_count = self.frame_count
    if self.frame_count:
      if start >= self.frame_count:
        raise VideoSourceError(f'{source}: start {start} is past its last frame (it has '
                               f'{self.frame_count} frames, numbered from 0)')
      self.frame_count = len(range(start, self.frame_count, stride)[:count])
    self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
    self._thread = threading.Thread(target=self._produce, daemon=True)
    self._started = False
    self._stop = threading.Event()
    self._error: Optional[BaseException] = None

  def _frames(self) -> Iterator[Tuple[int, Optional[np.ndarray]]]:
    if self.files is not None:
      for k, f in enumerate(self.files[self.start::self.stride][:self.count]):
        yield k, self._same_size(k, f, read_image(f))
      return
    i, k, failures = 0, 0, 0                  # source frame, output frame, failures in a row
    declared = self.source_frame_count
    while self.count is None or k < self.count:
      wanted = i >= self.start and (i - self.start) % self.stride == 0
      if wanted:
        ok, img = self.cap.read()
        ok = ok and img is not None
      else:
        ok, img = self.cap.grab(), None
      if ok:
        failures = 0
        if wanted:
          yield k, cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
          k += 1
        i += 1
        continue
      # A failed read is the end, unless the container says more frames follow.
      if declared and i < declared and failures < self.max_failures:
        failures += 1
        if wanted:
          yield k, None
          k += 1
        i += 1
        continue
      self.stopped_early = bool(declared) and i < declared
      return

  def _same_size(self, index, path, img):
    """Every frame of a folder takes the first decoded frame's size (outputs are one size)."""
    if img is None:
      return None
    if self.size_hw is None:
      self.size_hw = img.shape[:2]
    elif img.shape[:2] != self.size_hw:
      logging.warning('%s: %dx%d, not %dx%d like the first frame; resized', path,
                      img.shape[1], img.shape[0], self.size_hw[1], self.size_hw[0])
      self.resized.append(index)
      img = cv2.resize(img, self.size_hw[::-1], interpolation=cv2.INTER_AREA)
    return img

  def _produce(self):
    try:
      for item in self._frames():
        if self._stop.is_set():
          break
        if self.live:
          self._put_newest(item)
        else:
          self._queue.put(item)
    except BaseException as e:  # surfaced in the consumer
      self._error = e
    finally:
      self._queue.put(_END)

  def _put_newest(self, item):
    while True:
      try:
        self._queue.put_nowait(item)
        return
      except queue.Full:
        try:
          old_idx, _ = self._queue.get_nowait()
          self.dropped.append(old_idx)
        except queue.Empty:
          pass

  def __iter__(self):
    if not self._started:
      self._thread.start()
      self._started = True
    decoded = 0
    while True:
      item = self._queue.get()
      if item is _END:
        break
      idx, frame = item
      self.frames_seen = idx + 1
      if frame is None:
        self.failed.append(idx)
        logging.warning('%s: frame %d failed to decode; skipped (numbering kept)',
                        self.source, idx)
      else:
        decoded += 1
      yield idx, frame
    if self._error is not None:
      raise self._error
    if decoded == 0:
      raise VideoSourceError(f'{self.source}: no frame could be decoded')

  def close(self):
    """Stops the reader thread (also when the consumer stopped early) and frees the source.

    The capture is released only after the thread has finished: releasing it under a read
    in progress deadlocks OpenCV.
    """
    self._stop.set()
    if self._started:
      while self._thread.is_alive():
        try:                                # unblock a producer waiting on a full queue
          self._queue.get(timeout=0.05)
        except queue.Empty:
          pass
      self._thread.join()
    if self.cap is not None:
      self.cap.release()


def read_image(path: str) -> Optional[np.ndarray]:
  """RGB uint8, or None when the file does not decode whole.

  OpenCV decodes a truncated JPEG without an error (the missing rows come out grey), so a
  JPEG must end with its end-of-image marker to count as decoded.
  """
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    logging.warning('%s: cannot be read (%s)', path, e)
    return None
  if path.lower().endswith(('.jpg', '.jpeg')) and not data.rstrip(b'\0\r\n ').endswith(
      b'\xff\xd9'):
    logging.warning('%s: truncated JPEG (no end-of-image marker)', path)
    return None
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def palette(track_id: int) -> Tuple[int, int, int]:
  """A stable, distinct RGB colour per identity (golden-ratio hue steps)."""
  hue = int((track_id * 0.618033988749895 % 1.0) * 179)
  rgb = cv2.cvtColor(np.uint8([[[hue, 200, 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
  return tuple(int(c) for c in rgb)


def render(frame: np.ndarray, id_map: np.ndarray, boxes=None, alpha: float = 0.5) -> np.ndarray:
  """Colours each identity's pixels and labels it with its ID; returns RGB uint8."""
  out = frame.astype(np.float32)
  ids = [int(i) for i in np.unique(id_map) if i > 0]
  for tid in ids:
    m = id_map == tid
    out[m] = (1 - alpha) * out[m] + alpha * np.float32(palette(tid))
  out = out.astype(np.uint8)
  for tid in ids:
    ys, xs = np.nonzero(id_map == tid)
    x, y = int(xs.min()), int(ys.min())
    if boxes is not None and tid in boxes:
      x, y = int(boxes[tid][0]), int(boxes[tid][1])
    cv2.putText(out, str(tid), (x, max(12, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(out, str(tid), (x, max(12, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                palette(tid), 1, cv2.LINE_AA)
  return out


class VideoWriter:
  """An MP4 written to a temporary name and renamed on close().

  codec 'h264': H.264 in yuv420p with the index at the front (what browsers, GitHub and
  Colab's inline player play), encoded by the FFmpeg inside PyAV's wheel (libx264; OpenCV's
  wheel has no H.264 encoder). Without PyAV it falls back to 'mp4v' with a warning:
  OpenCV's MPEG-4 Part 2, which desktop players play and browsers do not. `self.codec`
  says which was written.
  """

  def __init__(self, path: str, fps: float, size_hw: Tuple[int, int], codec: str = 'h264'):
    self.path, self.tmp = path, path + '.partial.mp4'
    h, w = size_hw
    if codec == 'h264':
      try:
        import av  # pylint: disable=g-import-not-at-top
      except ImportError:
        logging.warning('%s: PyAV is not installed, so the video is MPEG-4 Part 2, which '
                        'browsers do not play (pip install av for H.264)', path)
        codec = 'mp4v'
    self.codec, self.size_hw = codec, (h, w)
    if codec == 'h264':
      import fractions  # pylint: disable=g-import-not-at-top
      self._container = av.open(self.tmp, 'w', format='mp4',
                                options={'movflags': '+faststart'})
      stream = self._container.add_stream(
          'libx264', rate=fractions.Fraction(fps).limit_denominator(1001))
      stream.width, stream.height = w + w % 2, h + h % 2      # yuv420p needs even sides
      stream.pix_fmt = 'yuv420p'
      stream.options = {'crf': '20', 'preset': 'veryfast'}
      self._stream, self._av = stream, av
    elif codec == 'mp4v':
      self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
      if not self.writer.isOpened():
        raise VideoSourceError(f'{path}: cannot open an mp4 writer')
    else:
      raise ValueError(f"codec must be 'h264' or 'mp4v', got {codec!r}")

  def write(self, rgb: np.ndarray):
    if self.codec == 'mp4v':
      self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
      return
    h, w = rgb.shape[:2]
    if (h % 2) or (w % 2):                    # repeat the last row / column
      rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge')
    frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
    for packet in self._stream.encode(frame):
      self._container.mux(packet)

  def _release(self, flush: bool):
    if self.codec == 'mp4v':
      self.writer.release()
      return
    try:
      if flush:
        for packet in self._stream.encode():
          self._container.mux(packet)
    finally:
      self._container.close()

  def close(self):
    self._release(flush=True)
    os.replace(self.tmp, self.path)

  def abort(self):
    try:
      self._release(flush=False)
    finally:
      if os.path.exists(self.tmp):
        os.remove(self.tmp)
