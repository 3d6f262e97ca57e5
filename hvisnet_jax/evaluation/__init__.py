"""Evaluation: file formats (formats.py) and the field's metrics (metrics.py).

The names most callers need are re-exported here: `evaluation.read_mots`,
`evaluation.evaluate_mots`, `evaluation.Sequence`, ...
"""
# pylint: disable=unused-import
from hvisnet_jax.evaluation.formats import (IGNORE, PEDESTRIAN, EvalInputError, Sequence,
                                            encode_id_map, encode_mask, find_overlaps,
                                            mots_object_id, load_json, read_mots,
                                            read_mots_pair, read_mots_txt,
                                            read_ytvis, resolve_overlaps, rle_counts,
                                            segmentation_rle, sequence_from_label_maps,
                                            write_mots_txt)
from hvisnet_jax.evaluation.metrics import (COUNT_KEYS, METRIC_KEYS, evaluate_box_tracks,
                                            evaluate_coco,
                                            evaluate_mots, format_table)
