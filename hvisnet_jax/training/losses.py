"""HVISNet training losses (docs/design.md, "The network"; paper Sec. III-A).

Detection: sigmoid focal loss over all locations / #positives, GIoU on ltrb weighted by
the centerness target / its sum, centerness BCE / #positives. Masks: BlendMask's blender
on each sampled positive location, pooling the bases with that location's ground-truth
box, BCE against the ground-truth mask crop-resized to R x R, per-instance mean weighted
by the centerness target, plus optionally PP-HumanSeg's connectivity-aware SC loss on the
same masks (`loss.scl_weight`). Auxiliary semantic loss on the bases branch (union of person
masks). Identity: batch-hard triplet with margin over positive-location embeddings, plus
identity classification (label 0 for negative locations). Balance: fixed weights or
FairMOT's learned uncertainty.

Positives for the mask and identity losses are sampled to a fixed count per image so
shapes stay static inside jit.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from scipy import ndimage

from hvisnet_jax.model import blender
from hvisnet_jax.model import hvisnet as model_lib


def focal_loss(logits, labels, alpha=0.25, gamma=2.0):
  p = jax.nn.sigmoid(logits)
  ce = optax.sigmoid_binary_cross_entropy(logits, labels)
  p_t = p * labels + (1 - p) * (1 - labels)
  a_t = alpha * labels + (1 - alpha) * (1 - labels)
  return a_t * ce * (1 - p_t) ** gamma


def giou_loss_ltrb(pred, target):
  """1 - GIoU of two boxes given as ltrb distances from the same location."""
  pl, pt, pr, pb = (pred[..., i] for i in range(4))
  tl, tt, tr, tb = (target[..., i] for i in range(4))
  p_area = (pl + pr) * (pt + pb)
  t_area = (tl + tr) * (tt + tb)
  inter = (jnp.minimum(pl, tl) + jnp.minimum(pr, tr)) * (jnp.minimum(pt, tt) + jnp.minimum(pb, tb))
  enclose = (jnp.maximum(pl, tl) + jnp.maximum(pr, tr)) * (jnp.maximum(pt, tt) + jnp.maximum(pb, tb))
  union = p_area + t_area - inter
  iou = inter / jnp.maximum(union, 1e-6)
  giou = iou - (enclose - union) / jnp.maximum(enclose, 1e-6)
  return 1 - giou


def sample_indices(mask, key, k: int):
  """k indices, preferring locations where mask is True (uniformly at random among them)."""
  noise = jax.random.uniform(key, mask.shape)
  _, idx = jax.lax.top_k(jnp.where(mask, 1.0 + noise, noise - 1.0), k)
  return idx, mask[idx]


def mask_targets(gt_masks, gt_boxes, resolution: int):
  """(M, H, W) masks cropped and resized with their own boxes -> (M, R, R) in {0, 1}."""
  def one(m, b):
    return blender.roi_align(m[..., None].astype(jnp.float32), b[None], resolution, 1.0, 2)[0, ..., 0]
  return (jax.vmap(one)(gt_masks, gt_boxes) >= 0.5).astype(jnp.float32)


def label_components(masks: np.ndarray, max_components: int) -> np.ndarray:
  """8-connected components of each (..., H, W) boolean mask, numbered 1.. by size.

  Only the max_components largest keep a number (the rest become 0), so the loss works on a
  fixed number of components, as PP-HumanSeg caps the predicted ones early in training.
  """
  masks = np.asarray(masks, bool)
  flat = masks.reshape(-1, *masks.shape[-2:])
  out = np.zeros(flat.shape, np.int32)
  for i, m in enumerate(flat):
    lab, n = ndimage.label(m, structure=np.ones((3, 3), bool))
    if n == 0:
      continue
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    rank = np.zeros(n + 1, np.int32)                  # component id -> new number (0: dropped)
    order = np.argsort(-sizes, kind='stable')[:max_components]
    rank[order + 1] = np.arange(1, len(order) + 1)
    out[i] = rank[lab]
  return out.reshape(masks.shape)


def connectivity_loss(logits, target, max_components: int = 8):
  """PP-HumanSeg's SC loss (seed 003) per mask: 1 - connectivity, in [0, 1].

  Components of the thresholded prediction and of the target are found on the host
  (scipy.ndimage, via pure_callback); each target component is matched with every
  predicted component it touches, scoring the mean soft IoU of those pairs; connectivity
  = the sum of those scores / (target components + predicted components touching none).
  The IoUs use the predicted probabilities, so the loss pulls each touching component onto
  its target component; a lone fragment only lowers the score. 0 when both are empty, 1
  when only one is. Under a data-parallel mesh the callback gathers the masks to one device
  (the same loss as on one device, checked on 4 CPU devices; XLA warns of a full
  rematerialisation): cheap at R x R per sampled mask, but a cost on a multi-host pod.
  """
  p = jax.nn.sigmoid(logits)
  both = jnp.stack([jax.lax.stop_gradient(p) > 0.5, target > 0.5])   # one host round trip
  labels = jax.pure_callback(lambda x: label_components(x, max_components),
                             jax.ShapeDtypeStruct(both.shape, jnp.int32), both,
                             vmap_method='sequential')
  pred_c, gt_c = jax.nn.one_hot(labels, max_components + 1)[..., 1:]
  inter = jnp.einsum('...hwg,...hwc,...hw->...gc', gt_c, pred_c, p)
  pred_area = jnp.einsum('...hwc,...hw->...c', pred_c, p)
  gt_area = gt_c.sum((-3, -2))
  iou = inter / jnp.maximum(gt_area[..., :, None] + pred_area[..., None, :] - inter, 1e-6)
  touch = jax.lax.stop_gradient(inter) > 0
  n_touch = touch.sum(-1)
  pair = jnp.where(n_touch > 0, (iou * touch).sum(-1) / jnp.maximum(n_touch, 1), 0.0).sum(-1)
  n_gt = (gt_area > 0).sum(-1)
  pred_exists = pred_c.sum((-3, -2)) > 0
  n_pred = pred_exists.sum(-1)
  lone = (pred_exists & ~touch.any(-2)).sum(-1)
  conn = pair / jnp.maximum(n_gt + lone, 1)
  return jnp.where((n_gt > 0) & (n_pred > 0), 1.0 - conn,
                   jnp.where((n_gt == 0) & (n_pred == 0), 0.0, 1.0))


def semantic_target(gt_masks, valid, stride: int = 4):
  union = jnp.any(gt_masks & valid[:, None, None], axis=0).astype(jnp.float32)
  h, w = union.shape
  return union.reshape(h // stride, stride, w // stride, stride).mean((1, 3)) > 0.5


def batch_hard_triplet(emb, ids, valid, margin: float):
  """Mean over anchors with a positive and a negative of relu(d(a,p_max) - d(a,n_min) + m)."""
  d = jnp.sqrt(jnp.maximum(
      jnp.sum((emb[:, None] - emb[None]) ** 2, -1), 1e-12))
  pair = valid[:, None] & valid[None, :] & ~jnp.eye(len(ids), dtype=bool)
  same = pair & (ids[:, None] == ids[None, :])
  diff = pair & (ids[:, None] != ids[None, :])
  hardest_pos = jnp.max(jnp.where(same, d, -jnp.inf), axis=1)
  hardest_neg = jnp.min(jnp.where(diff, d, jnp.inf), axis=1)
  ok = same.any(1) & diff.any(1)
  loss = jnp.where(ok, jax.nn.relu(hardest_pos - hardest_neg + margin), 0.0)
  return loss.sum() / jnp.maximum(ok.sum(), 1), ok.sum()


def compute_losses(outputs: Dict, tg: Dict, batch: Dict, extra_params: Dict, key,
                   mcfg: ml_collections.ConfigDict,
                   lcfg: ml_collections.ConfigDict) -> Tuple[jnp.ndarray, Dict]:
  """Total loss and its parts for a batch.

  outputs: HVISNet outputs; tg: batched fcos_targets; batch: images, boxes, masks, ids,
  valid; extra_params: {'id_classifier': {kernel, bias}, 'uncertainty': {s_det, s_id}}.
  """
  flat = model_lib.flatten_levels(outputs['levels'])
  b = flat['cls_logits'].shape[0]
  labels = tg['labels'].astype(jnp.float32)                       # (B, L)
  pos = tg['labels'] > 0
  num_pos = jnp.maximum(pos.sum(), 1.0)

  focal = focal_loss(flat['cls_logits'][..., 0], labels)
  if 'ignore' in tg:                 # ignore regions: no negatives there (positives stay)
    focal = focal * (pos | ~tg['ignore'])
  cls = focal.sum() / num_pos
  ctr_sum = jnp.maximum(tg['ctr'].sum(), 1e-6)
  giou = (giou_loss_ltrb(flat['bbox_reg'], tg['reg']) * tg['ctr']).sum() / ctr_sum
  ctr = (optax.sigmoid_binary_cross_entropy(flat['ctrness'][..., 0], tg['ctr']) *
         pos).sum() / num_pos

  # Sampled positive locations (and negatives for identity classification), per image.
  k_pos, k_neg = lcfg.mask_samples, lcfg.id_negatives
  keys = jax.random.split(key, 2 * b).reshape(b, 2, -1)
  pidx, pok = jax.vmap(lambda m, kk: sample_indices(m, kk, k_pos))(pos, keys[:, 0])
  nidx, nok = jax.vmap(lambda m, kk: sample_indices(m, kk, k_neg))(~pos, keys[:, 1])
  take = lambda x, i: jnp.take_along_axis(x, i[..., None] if x.ndim == 3 else i, axis=1)
  gi = jnp.maximum(take(tg['gt_index'], pidx), 0)                  # (B, P)
  w = take(tg['ctr'], pidx) * pok

  # BlendMask mask loss in windows around the ground-truth boxes. With box_margin > 0 each
  # box's sides are moved at random by up to mask_box_jitter of its size (as a predicted box
  # misses) before the window grows, so the mask learns to reach a person's true extent
  # past the box it is given.
  res = mcfg.blendmask.pooler_resolution
  margin, jitter = mcfg.blendmask.get('box_margin', 0.0), lcfg.get('mask_box_jitter', 0.0)
  gt_boxes = batch['boxes']
  def per_image_mask_loss(bases, attn, gidx, gtb, gtm, k):
    boxes = gtb[gidx]
    if margin:
      if jitter:
        wh = jnp.tile(boxes[:, 2:] - boxes[:, :2], 2)
        boxes = boxes + jax.random.uniform(k, boxes.shape, minval=-jitter, maxval=jitter) * wh
      window = blender.mask_window(boxes, margin)
      target = mask_targets(gtm[gidx], window, res)
    else:
      window, target = boxes, mask_targets(gtm, gtb, res)[gidx]
    logits = blender.blend(bases, attn, window, mcfg)          # (P, R, R)
    return logits, target
  mask_logits, mask_target = jax.vmap(per_image_mask_loss)(
      outputs['bases'], take(flat['top_feats'], pidx), gi, gt_boxes, batch['masks'],
      jax.random.split(jax.random.fold_in(key, 1), b))
  mask_bce = optax.sigmoid_binary_cross_entropy(mask_logits, mask_target).mean((-2, -1))
  mask = (mask_bce * w).sum() / jnp.maximum(w.sum(), 1e-6)
  scl = jnp.zeros(())
  if lcfg.get('scl_weight', 0.0) > 0:
    scl = (connectivity_loss(mask_logits, mask_target) * w).sum() / jnp.maximum(w.sum(), 1e-6)

  sem = jnp.zeros(())
  if 'semantic_logits' in outputs and lcfg.semantic_weight > 0:
    tgt = jax.vmap(semantic_target)(batch['masks'], batch['valid']).astype(jnp.float32)
    sem = optax.sigmoid_binary_cross_entropy(outputs['semantic_logits'][..., 0], tgt).mean()

  # Identity: triplet over positives across the batch + classification incl. negatives.
  emb_pos = take(flat['embedding'], pidx)                          # (B, P, D)
  ids_pos = jnp.take_along_axis(batch['ids'], gi, axis=1)          # global identity, >= 1
  e = emb_pos.reshape(-1, emb_pos.shape[-1])
  e = e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
  triplet, n_anchor = batch_hard_triplet(e, ids_pos.reshape(-1), pok.reshape(-1), lcfg.margin)
  emb_neg = take(flat['embedding'], nidx).reshape(-1, e.shape[-1])
  emb_all = jnp.concatenate([emb_pos.reshape(-1, e.shape[-1]), emb_neg])
  emb_all = emb_all / jnp.maximum(jnp.linalg.norm(emb_all, axis=-1, keepdims=True), 1e-12)
  n_ids = extra_params['id_classifier']['kernel'].shape[1] - 1
  scale = math.sqrt(2) * math.log(max(n_ids - 1, 2))              # FairMOT's embedding scale
  id_logits = scale * emb_all @ extra_params['id_classifier']['kernel'] + \
      extra_params['id_classifier']['bias']
  id_labels = jnp.concatenate([jnp.where(pok, ids_pos, 0).reshape(-1),
                               jnp.zeros(emb_neg.shape[0], jnp.int32)])
  id_ok = jnp.concatenate([pok.reshape(-1), nok.reshape(-1)])
  id_ce = (optax.softmax_cross_entropy_with_integer_labels(id_logits, id_labels) *
           id_ok).sum() / jnp.maximum(id_ok.sum(), 1)

  det = (cls + giou + ctr + lcfg.mask_weight * mask + lcfg.get('scl_weight', 0.0) * scl +
         lcfg.semantic_weight * sem)
  ident = triplet + id_ce
  if lcfg.balance == 'uncertainty':
    s = extra_params['uncertainty']
    total = 0.5 * (jnp.exp(-s['s_det']) * det + jnp.exp(-s['s_id']) * ident +
                   s['s_det'] + s['s_id'])
  else:
    total = det + lcfg.id_weight * ident
  parts = dict(loss=total, focal=cls, giou=giou, centerness=ctr, mask=mask, scl=scl,
               semantic=sem, triplet=triplet, id_ce=id_ce, num_pos=pos.sum() / b,
               num_ambiguous=tg['ambiguous'].sum() / b, triplet_anchors=n_anchor)
  return total, parts


def init_extra_params(num_ids: int, embedding_dim: int, key) -> Dict:
  """Identity classifier over num_ids identities (+ class 0: background) and uncertainty."""
  kernel = jax.random.normal(key, (embedding_dim, num_ids + 1)) * 0.01
  return {'id_classifier': {'kernel': kernel, 'bias': jnp.zeros(num_ids + 1)},
          # Strongly typed: a weak-typed scalar turns strong after the first update, and the
          # changed input type would make jit compile the train step a second time.
          'uncertainty': {'s_det': jnp.asarray(-1.85, jnp.float32),
                          's_id': jnp.asarray(-1.05, jnp.float32)}}
