"""Person mask AP on a COCO-format set with real masks (e.g. coco_mini val2017): each
image through the predictor, its kept people as RLE masks, scored by pycocotools.

cfg: root (folder), annotations (JSON relative to it), images (image folder relative to
it), min_score (predictions below it are not scored), max_images (0 = all).
"""
from __future__ import annotations

import os

import numpy as np


def build(cfg):
  from hvisnet_jax import evaluation  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import video  # pylint: disable=g-import-not-at-top
  ann_path = os.path.join(cfg.root, cfg.annotations)

  def evaluate(pred):
    gt = evaluation.load_json(ann_path)
    person = next(c['id'] for c in gt['categories'] if c['name'] == 'person')
    images = gt['images'][:cfg.get('max_images', 0) or None]
    gt = dict(gt, images=images)
    results = []
    for im in images:
      rgb = video.read_image(os.path.join(cfg.root, cfg.images, im['file_name']))
      if rgb is None:
        raise FileNotFoundError(f'{ann_path}: image {im["file_name"]} cannot be read')
      out = pred.predict(rgb)
      for i in np.flatnonzero(out['valid'] & (out['scores'] >= cfg.get('min_score', 0.25))):
        mask = out['label_map'] == i
        if mask.any():
          rle = evaluation.encode_mask(mask)
          rle['counts'] = rle['counts'].decode()
          results.append(dict(image_id=im['id'], category_id=person, segmentation=rle,
                              score=float(out['scores'][i])))
    scores = evaluation.evaluate_coco(gt, results)
    return {k: scores[k] for k in ('AP', 'AP50', 'AP75') if k in scores}
  return evaluate
