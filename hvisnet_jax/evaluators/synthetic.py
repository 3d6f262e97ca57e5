"""Held-out synthetic videos (a seed never used for training) through the predictor and
the tracker: MOTS/HOTA (trackeval) and mask AP (pycocotools)."""
from __future__ import annotations


def build(cfg):
  from hvisnet_jax.synthetic import heldout_eval  # pylint: disable=g-import-not-at-top

  def evaluate(pred):
    r = heldout_eval.evaluate_predictor(pred, cfg.preset, cfg.videos, cfg.frames, cfg.height,
                                        cfg.width, cfg.seed)
    out = {k: r['mots']['combined'][k] for k in ('HOTA', 'IDF1', 'sMOTSA', 'MOTSA', 'IDSW')}
    out.update({f'mask_{k}': v for k, v in r['mask_ap'].items() if k in ('AP', 'AP50')})
    return out
  return evaluate
