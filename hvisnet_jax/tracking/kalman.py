"""Constant-velocity Kalman filter on (x, y, aspect, height), as DeepSORT and FairMOT use.

The state is (x, y, a, h) and their velocities; process and measurement noise scale with
the box height (std_pos = h/20, std_vel = h/160: docs/design.md, "The tracker").
"""
from __future__ import annotations

import numpy as np

CHI2_95_4DOF = 9.4877      # gate on the squared Mahalanobis distance (4 degrees of freedom)
CHI2_99_4DOF = 13.2767     # the same at 0.99


class KalmanFilter:
  """Constant-velocity filter on (x, y, aspect, height) with velocities, as in DeepSORT."""

  def __init__(self, std_pos: float = 1.0 / 20, std_vel: float = 1.0 / 160):
    self.F = np.eye(8)
    self.F[:4, 4:] = np.eye(4)
    self.H = np.eye(4, 8)
    self.std_pos, self.std_vel = std_pos, std_vel

  def initiate(self, z):
    mean = np.r_[z, np.zeros(4)]
    h = z[3]
    std = [2 * self.std_pos * h, 2 * self.std_pos * h, 1e-2, 2 * self.std_pos * h,
           10 * self.std_vel * h, 10 * self.std_vel * h, 1e-5, 10 * self.std_vel * h]
    return mean, np.diag(np.square(std))

  def _motion_noise(self, h):
    return np.diag(np.square([self.std_pos * h, self.std_pos * h, 1e-2, self.std_pos * h,
                              self.std_vel * h, self.std_vel * h, 1e-5, self.std_vel * h]))

  def predict(self, mean, cov):
    return self.F @ mean, self.F @ cov @ self.F.T + self._motion_noise(mean[3])

  def multi_predict(self, means, covs):
    """predict() for (T, 8) means and (T, 8, 8) covariances at once (FairMOT's
    multi_predict): one batched product instead of T small ones."""
    h = means[:, 3]
    std = np.stack([self.std_pos * h, self.std_pos * h, np.full_like(h, 1e-2),
                    self.std_pos * h, self.std_vel * h, self.std_vel * h,
                    np.full_like(h, 1e-5), self.std_vel * h], -1)
    q = np.square(std)[:, :, None] * np.eye(8)[None]
    return means @ self.F.T, self.F @ covs @ self.F.T + q

  def project(self, mean, cov):
    h = mean[3]
    r = np.diag(np.square([self.std_pos * h, self.std_pos * h, 1e-1, self.std_pos * h]))
    return self.H @ mean, self.H @ cov @ self.H.T + r

  def update(self, mean, cov, z):
    m, s = self.project(mean, cov)
    # 4x4 systems: numpy's solve costs far less per call than scipy's Cholesky wrappers.
    gain = np.linalg.solve(s, (cov @ self.H.T).T).T
    return mean + gain @ (z - m), cov - gain @ s @ gain.T

  def gating_distances(self, means, covs, zs):
    """(T, N) squared Mahalanobis distances, all T states against all N measurements."""
    h = means[:, 3]
    r = np.square(np.stack([self.std_pos * h, self.std_pos * h, np.full_like(h, 1e-1),
                            self.std_pos * h], -1))
    m = means[:, :4]
    s = covs[:, :4, :4] + r[:, :, None] * np.eye(4)[None]
    d = np.asarray(zs, float)[None] - m[:, None]                      # (T, N, 4)
    sol = np.linalg.solve(s, d.transpose(0, 2, 1))                   # (T, 4, N)
    return np.einsum('tnk,tkn->tn', d, sol)


def tlbr_to_xyah(b):
  w, h = b[2] - b[0], b[3] - b[1]
  return np.array([b[0] + w / 2, b[1] + h / 2, w / max(h, 1e-6), h], float)


def xyah_to_tlbr(x):
  w = x[2] * x[3]
  return np.array([x[0] - w / 2, x[1] - x[3] / 2, x[0] + w / 2, x[1] + x[3] / 2])


def warp_states(means: np.ndarray, covs: np.ndarray, warp: np.ndarray):
  """Kalman states (T, 8) x, y, a, h and their velocities, (T, 8, 8) covariances, moved by
  a 2x3 similarity transform: centre and its velocity rotated, scaled and (the centre)
  shifted, height and its velocity scaled, aspect unchanged."""
  r, t = warp[:, :2], warp[:, 2]
  s = float(np.sqrt(abs(np.linalg.det(r))))
  m = np.zeros((8, 8))
  m[0:2, 0:2] = m[4:6, 4:6] = r
  m[2, 2] = m[6, 6] = 1.0
  m[3, 3] = m[7, 7] = s
  means = means @ m.T
  means[:, 0:2] += t
  covs = m[None] @ covs @ m.T[None]
  return means, covs
