"""A person teacher built on a COCO instance-segmentation YOLO (v5s-seg or v7-seg), in JAX.

YOLO-seg finds people that the SSDLite teacher misses (crowds, small, occluded people) and
boxes them well, but its masks come from prototypes at a quarter of the input and stop
short of the outline. So each person's mask comes from one of:
- 'yolo': the network's own mask (sigmoid of coefficients . prototypes, inside the box);
- 'blazepose': BlazePose's segmentation in a crop around the YOLO box (teacher.py);
- 'max': per pixel the larger of the two probabilities;
- 'agree': BlazePose's where it traces the same person as YOLO (mask IoU >= 0.6: then it
  reaches the head and the feet that YOLO's coarse mask misses), else YOLO's (BlazePose
  crops hold one person; with several overlapping it may trace the wrong one);
- 'pose': 'agree''s masks, and a pixel claimed by two people goes to the one whose
  BlazePose skeleton is nearer (Pose2Seg's cue for overlapping people, no network of its
  own), not to the more confident.
benchmarks/people_benchmark.py measures each on real masks; Options pick the default.

The network runs jitted with no torch: interop/convert_yolo.py reads the checkpoint.
Frames are letterboxed as the reference does (long side to `size`, padded to a multiple
of 32 with grey 114), so the jitted function compiles once per frame shape.

Two scales when `size` > 640: the checkpoints were trained at 640, and a person taller
than about 500 px of their input is boxed short (measured on full-body photos at 960: the
box stops at the knees, median mask IoU 0.82 against 0.95 at 640). So the frame also
runs at 640, where large people are whole. The passes split people by size: the larger
pass keeps those at most `LARGE_PX` tall in its input (the small ones it is there for),
the 640 pass those taller than 80% of that at its scale, and one NMS removes the few
found by both. (Letting both passes keep everyone and NMS choose lost crowd recall: a
640 box over two small neighbours suppressed both of the larger pass's.)
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional

import cv2
import numpy as np

from hvisnet_jax.data_pipelines import teacher as teacher_lib
from hvisnet_jax.interop.packaged_files import check_files

MASK_SOURCES = ('yolo', 'blazepose', 'max', 'agree', 'pose')
AGREE_IOU = 0.6
TRAINED_SIZE = 640                 # the checkpoints' training input
LARGE_PX = 400                     # taller in a larger pass's input: left to the 640 pass
PERSON = 0                                   # COCO class index in the YOLO checkpoints


@dataclasses.dataclass
class Detections(teacher_lib.Detections):
  """Boxes and scores, plus each box's YOLO mask probability window (frame coordinates)."""
  windows: Optional[List] = None


class YoloSegTeacher:
  """Person boxes and masks from YOLO-seg, optionally refined by BlazePose per box."""

  def __init__(self, model: str = 'yolov5s-seg', size: int = 960, conf: float = 0.1,
               nms_iou: float = 0.45, max_det: int = 300, mask_source: str = 'yolo',
               directory: Optional[str] = None, threads: Optional[int] = None):
    import jax  # pylint: disable=g-import-not-at-top
    from hvisnet_jax.interop import convert_yolo  # pylint: disable=g-import-not-at-top
    from hvisnet_jax.model import yolo_seg  # pylint: disable=g-import-not-at-top
    if mask_source not in MASK_SOURCES:
      raise ValueError(f'mask_source {mask_source!r}: expected one of {MASK_SOURCES}')
    if size % 32 or size < 64:
      raise ValueError(f'size {size}: expected a multiple of 32, at least 64')
    paths = check_files(directory, required_files(model, mask_source))
    layers, variables = convert_yolo.load(paths[model])
    self.model, self.size, self.conf, self.nms_iou = model, size, conf, nms_iou
    self.max_det, self.mask_source = max_det, mask_source
    self.num_classes = layers[-1].head.num_classes
    net = yolo_seg.YoloSeg(layers)
    self._variables = jax.device_put(variables)
    self._forward = jax.jit(net.apply)
    self.segmenter = (teacher_lib.BlazePoseSegmenter(paths['segmenter'], threads)
                      if mask_source != 'yolo' else None)
    self._last = None

  # ------------------------------------------------------------------ network

  def letterbox(self, rgb: np.ndarray, size: int):
    """(image (1, H', W', 3) float32 in [0, 1], x scale, y scale, left, top)."""
    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
    top, left = (ph - nh) // 2, (pw - nw) // 2
    canvas = np.full((ph, pw, 3), 114, np.uint8)
    canvas[top:top + nh, left:left + nw] = (
        rgb if (nh, nw) == (h, w) else cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR))
    return canvas[None].astype(np.float32) / 255.0, nw / w, nh / h, left, top

  def _pass(self, rgb: np.ndarray, size: int, min_height: float, max_height: float):
    """One letterboxed pass: (frame boxes, scores, mask windows) of people whose box is
    min_height to max_height pixels tall in this pass's input."""
    x, sx, sy, left, top = self.letterbox(rgb, size)
    preds, protos = self._forward(self._variables, x)
    preds, protos = np.asarray(preds[0]), np.asarray(protos[0])
    H, W = rgb.shape[:2]
    obj = preds[:, 4]
    cand = np.flatnonzero(obj > self.conf)
    cls = preds[cand, 5:5 + self.num_classes] * obj[cand, None]
    best = cls.argmax(1)
    score = cls[np.arange(len(cand)), best]
    h = preds[cand, 3]
    keep = (best == PERSON) & (score > self.conf) & (h >= min_height) & (h <= max_height)
    cand, score = cand[keep], score[keep]
    xywh = preds[cand, :4]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    frame_boxes = (boxes - np.array([left, top, left, top])) / np.array([sx, sy, sx, sy])
    frame_boxes = np.clip(frame_boxes, 0, [W, H, W, H]).astype(np.float32).reshape(-1, 4)
    coefs = preds[cand, 5 + self.num_classes:]
    windows = [self._mask_window(protos, c, b, sx, sy, left, top, H, W)
               for c, b in zip(coefs, frame_boxes)]
    return frame_boxes, score.astype(np.float32), windows

  def detect(self, rgb: np.ndarray) -> Detections:
    """Person boxes (frame pixels), scores (objectness x person) and mask windows."""
    if self.size > TRAINED_SIZE:
      split = 0.8 * LARGE_PX * TRAINED_SIZE / self.size
      passes = [self._pass(rgb, TRAINED_SIZE, split, np.inf),
                self._pass(rgb, self.size, 0.0, LARGE_PX)]
    else:
      passes = [self._pass(rgb, self.size, 0.0, np.inf)]
    boxes = np.concatenate([p[0] for p in passes])
    scores = np.concatenate([p[1] for p in passes])
    windows = [w for p in passes for w in p[2]]
    if len(boxes):
      nms_in = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
      order = np.asarray(cv2.dnn.NMSBoxes(nms_in.tolist(), scores.tolist(), 0.0, self.nms_iou,
                                          top_k=self.max_det), int).reshape(-1)
    else:
      order = np.zeros(0, int)
    det = Detections(boxes[order].reshape(-1, 4), scores[order], [windows[i] for i in order])
    self._last = det
    return det

  @staticmethod
  def _mask_window(protos, coef, box, sx, sy, left, top, H, W):
    """sigmoid(coef . protos) resampled into the box's window of the frame, zero outside the box.

    Frame pixel x sits at letterbox x * sx + left and at prototype (x*sx + left + 0.5) / 4
    - 0.5 (pixel centres, as a bilinear resize with half-pixel centres maps them).
    """
    x0, y0, x1, y1 = teacher_lib.box_window(box, H, W, margin=0.0)
    if x1 <= x0 or y1 <= y0:
      return np.zeros((0, 0), np.float32), (x0, y0, x0, y0)
    ax, ay = sx / 4, sy / 4
    bx = ax * x0 + (0.5 * sx + left) / 4 - 0.5             # window pixel 0 -> prototype
    by = ay * y0 + (0.5 * sy + top) / 4 - 0.5
    # Only the prototype cells the window samples (+1 each side for bilinear): per person,
    # not per frame, so a crowd does not multiply the whole prototype map by every person.
    ph, pw = protos.shape[:2]
    c0 = max(0, int(np.floor(bx)) - 1)
    c1 = min(pw, int(np.ceil(ax * (x1 - x0 - 1) + bx)) + 2)
    r0 = max(0, int(np.floor(by)) - 1)
    r1 = min(ph, int(np.ceil(ay * (y1 - y0 - 1) + by)) + 2)
    logits = protos[r0:r1, c0:c1] @ coef
    prob = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
    m = np.array([[ax, 0, bx - c0], [0, ay, by - r0]], np.float32)
    win = cv2.warpAffine(prob.astype(np.float32), m, (x1 - x0, y1 - y0),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return win, (x0, y0, x1, y1)

  # ------------------------------------------------------------------ masks

  def _windows(self, rgb, boxes) -> list:
    """Each box's probability window: YOLO's (looked up from the last detect), BlazePose's,
    or their per-pixel maximum."""
    if self.mask_source == 'blazepose':
      return [self.segmenter.segment(rgb, b) for b in boxes]
    last = self._last
    out, self._skeletons = [], []
    for b in boxes:
      hit = np.flatnonzero((last.boxes == np.asarray(b, np.float32)).all(1)) if last else []
      if not len(hit):
        raise ValueError('masks() takes boxes returned by the last detect() call')
      yolo = last.windows[hit[0]]
      if self.mask_source == 'yolo':
        out.append(yolo)
        continue
      prob, (x0, y0, x1, y1), pose = self.segmenter.segment_with_pose(rgb, b)
      if self.mask_source == 'pose':        # the skeleton over the window that wins
        self._skeletons.append((pose, b))
      if yolo[0].size:
        yx0, yy0, yx1, yy1 = yolo[1]
        region = prob[yy0 - y0:yy1 - y0, yx0 - x0:yx1 - x0]
        if self.mask_source == 'max':
          np.maximum(region, yolo[0], out=region)
        else:
          a, y = prob >= 0.5, yolo[0] >= 0.5
          inter = np.logical_and(a[yy0 - y0:yy1 - y0, yx0 - x0:yx1 - x0], y).sum()
          union = a.sum() + y.sum() - inter
          if union == 0 or inter / union < AGREE_IOU:
            out.append(yolo)
            continue
      out.append((prob, (x0, y0, x1, y1)))
    return out

  def masks(self, rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
            thresh: float = 0.5) -> np.ndarray:
    """Non-overlapping label map (H, W) int32: index into `boxes` per pixel, -1 for none."""
    windows = self._windows(rgb, boxes)
    if self.mask_source != 'pose':
      return teacher_lib.paint(rgb.shape[:2], windows, scores, thresh)
    distances = [teacher_lib.skeleton_distance(pose, box, window)
                 for (pose, box), (_, window) in zip(self._skeletons, windows)]
    return teacher_lib.paint_by_pose(rgb.shape[:2], windows, scores, distances, thresh)

  def __call__(self, rgb: np.ndarray, min_score: float = 0.0):
    det = self.detect(rgb)
    keep = det.scores >= min_score
    boxes, scores = det.boxes[keep], det.scores[keep]
    return teacher_lib.Detections(boxes, scores), self.masks(rgb, boxes, scores)

  def close(self):
    pass


def required_files(kind: str, masks: str = 'yolo') -> tuple:
  """The packaged files (packaged_files.FILES names) a teacher needs."""
  if kind == 'ssdlite':
    return ('detector', 'segmenter')
  return (kind,) + (('segmenter',) if masks != 'yolo' else ())


def make(kind: str, **kw):
  """'ssdlite' (SSDLite boxes + BlazePose masks) or a YOLO checkpoint name."""
  if kind == 'ssdlite':
    return teacher_lib.Teacher(**kw)
  return YoloSegTeacher(model=kind, **kw)

