"""Dense network outputs -> a fixed-size, padded set of instances per frame (inside jit).

Steps (BlendMask test-time defaults, docs/design.md): threshold on cls*centerness,
per-level top-k, box decoding, NMS, the blender (RoIAlign of the bases with each box,
attention upsampling, softmax over K, weighted sum) and pasting into the frame, where a
label map gives every pixel to at most one instance.
"""
from __future__ import annotations

from typing import Dict, Tuple

import jax
import jax.numpy as jnp
import ml_collections

from hvisnet_jax.inference import ops
from hvisnet_jax.model import blender
from hvisnet_jax.model import hvisnet as model_lib


DECODED = ('cls_logits', 'ctrness', 'bbox_reg')   # the dense maps every location is scored by


def _topk_per_level(score, level_sizes, k: int):
  """Indices into the flattened locations of the top-k scores of every level."""
  idx, start = [], 0
  for size in level_sizes:
    kk = min(k, size)
    _, i = jax.lax.top_k(score[start:start + size], kk)
    idx.append(i + start)
    start += size
  return jnp.concatenate(idx)


def detect(outputs: Dict, mcfg: ml_collections.ConfigDict, icfg: ml_collections.ConfigDict,
           input_hw: Tuple[int, int], valid_hw: Tuple[int, int], head_variables: Dict,
           blend: bool = True):
  """Per-image detections from the batched network outputs of `model.HVISNet`.

  input_hw is the padded network input size, valid_hw the part holding the image (boxes
  are clipped to it). Returns a dict of batched arrays, instances in descending score
  order, padded to `max_detections` with `valid` False:
    boxes (B, N, 4) in input coordinates, scores (B, N), embeddings (B, N, D)
    (L2-normalised), mask_logits (B, N, R, R) inside mask_boxes (B, N, 4) (the boxes grown
    by model.blendmask.box_margin), valid (B, N).

  `outputs` come from a `dense_instance_outputs=False` model: attentions and embeddings
  are computed only at the kept locations, with `head_variables` (the head's variables).
  blend=False: no mask_logits; the attentions (B, N, K*M*M) instead, for host_paste.blend.
  """
  levels = outputs['levels']
  if 'box_tower' not in levels[0]:
    raise ValueError('detect() takes the outputs of HVISNet(..., dense_instance_outputs=False)')
  flat = model_lib.flatten_levels([{k: lv[k] for k in DECODED} for lv in levels])
  instance = {k: [lv[k] for lv in levels] for k in ('box_tower', 'features')}
  locs, _ = model_lib.locations(mcfg, *input_hw)
  level_sizes = [h * w for h, w in model_lib.level_shapes(mcfg, *input_hw)]
  n_out = icfg.max_detections

  def one(cls_logits, ctrness, reg, bases, instance):
    prob = jax.nn.sigmoid(cls_logits[:, 0]) * jax.nn.sigmoid(ctrness[:, 0])
    ok = prob > icfg.score_thresh
    cand = _topk_per_level(jnp.where(ok, prob, -1.0), level_sizes, icfg.pre_nms_topk)
    cand_ok = ok[cand]
    x, y = locs[cand, 0], locs[cand, 1]
    l, t, r, b = (reg[cand, i] for i in range(4))
    hh, ww = valid_hw
    boxes = jnp.stack([jnp.clip(x - l, 0, ww), jnp.clip(y - t, 0, hh),
                       jnp.clip(x + r, 0, ww), jnp.clip(y + b, 0, hh)], -1)
    keep, keep_ok = ops.nms(boxes, prob[cand], cand_ok, icfg.nms_iou, n_out)
    sel = cand[keep]
    boxes = boxes[keep]
    top_feats, e = model_lib.instance_outputs_at(
        mcfg, head_variables, instance['box_tower'], instance['features'], sel)
    e = e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
    window = blender.mask_window(boxes, mcfg.blendmask.get('box_margin', 0.0))
    masks = (dict(mask_logits=blender.blend(bases, top_feats, window, mcfg,
                                            icfg.get('mask_resolution', 0))) if blend
             else dict(attentions=top_feats))
    return dict(**masks, boxes=jnp.where(keep_ok[:, None], boxes, 0.0),
                mask_boxes=jnp.where(keep_ok[:, None], window, 0.0),
                scores=jnp.where(keep_ok, jnp.sqrt(prob[sel]), 0.0),
                embeddings=jnp.where(keep_ok[:, None], e, 0.0),
                valid=keep_ok)

  return jax.vmap(one)(flat['cls_logits'], flat['ctrness'], flat['bbox_reg'],
                       outputs['bases'], instance)


def paste_and_label_in_jit(mask_logits, boxes, valid, height: int, width: int,
                           mask_thresh: float,
                           min_visible_fraction: float = 0.0):
  """Batched: paste each instance's mask into a (height, width) frame, then the label map.

  Returns (label maps (B, H, W), valid (B, N)): instances with an empty mask, or a mostly
  hidden duplicate (see ops.label_map), are no longer valid.
  """
  def one(logits, bx, ok):
    probs = ops.paste_masks(jax.nn.sigmoid(logits), bx, height, width)
    return ops.label_map(probs, ok, mask_thresh, min_visible_fraction)
  return jax.vmap(one)(mask_logits, boxes, valid)
