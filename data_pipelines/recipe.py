"""Training data named in a config (`config.data.recipe`), prepared inside the workdir.

A recipe makes `hvisnet train --config configs/hvisnet_real.py --workdir W` the one command
that rebuilds a model from raw folders: each named part is pseudo-labelled by the teacher
(kind 'pseudo') or read with its real masks (kind 'coco'), built as a TFDS dataset under
W/data/NAME/, and the parts are mixed by their weights. Every stage resumes: labelled
sources are skipped, built datasets are found, so a stopped run continues where it was.

A part:
  kind        'pseudo' | 'coco'
  sources     pseudo: globs relative to data.root (videos or image folders); exclude: globs
              left out (held-out footage). coco: one folder relative to data.root.
  annotations coco: the JSON relative to the folder; images: its image folder.
  every, max_frames, heads, photos, min_track_len: pseudo_label.Options fields (pseudo).
  weight      its share of the training pairs.
"""
from __future__ import annotations

import fnmatch
import hashlib
import glob
import os
from typing import List, Tuple

from hvisnet_jax.data_pipelines import builders, pseudo_label

KINDS = ('pseudo', 'coco')
_PSEUDO_OPTIONS = ('every', 'max_frames', 'heads', 'photos', 'min_track_len')


def _part_sources(root: str, name: str, part) -> List[str]:
  found = []
  for pattern in part.sources:
    hits = sorted(glob.glob(os.path.join(root, pattern)))
    if not hits:
      raise FileNotFoundError(f'data.recipe.{name}.sources: {pattern!r} matches nothing under '
                              f'data.root={root!r}; set --config.data.root to the folder '
                              'holding the data')
    found += hits
  excluded = tuple(part.get('exclude', ()))
  return [s for s in found
          if not any(fnmatch.fnmatch(os.path.relpath(s, root), e) for e in excluded)]


def check(data_cfg) -> None:
  """Every part's kind, fields and folders, before any slow work."""
  root = data_cfg.root
  if not os.path.isdir(root):
    raise FileNotFoundError(f'data.root={root!r}: no such folder (the recipe\'s sources are '
                            'relative to it; --config.data.root=DIR)')
  for name, part in data_cfg.recipe.items():
    if part.kind not in KINDS:
      raise ValueError(f'data.recipe.{name}.kind must be one of {KINDS}, got {part.kind!r}')
    if not part.weight > 0:
      raise ValueError(f'data.recipe.{name}.weight must be > 0, got {part.weight}')
    if part.kind == 'coco':
      ann = os.path.join(root, part.sources[0], part.annotations)
      if not os.path.isfile(ann):
        raise FileNotFoundError(f'data.recipe.{name}: {ann} not found')
    else:
      _part_sources(root, name, part)


def prepare(data_cfg, workdir: str, log=print) -> Tuple[str, Tuple[float, ...]]:
  """Labels and builds every part under WORKDIR/data; returns (tfds_dir, tfds_weights)."""
  check(data_cfg)
  root = data_cfg.root
  dirs, weights = [], []
  for name, part in data_cfg.recipe.items():
    base = os.path.join(workdir, 'data', name)
    if part.kind == 'pseudo':
      sources = _part_sources(root, name, part)
      opts = pseudo_label.Options(**{k: part[k] for k in _PSEUDO_OPTIONS if k in part})
      labels = os.path.join(base, 'labels')
      stats = pseudo_label.run(sources, labels, opts, progress=_progress(), log=log)
      log(f'data.recipe.{name}: {stats["frames"]} labelled frames, {stats["tracks"]} tracks '
          f'({stats["labelled"]} sources labelled now, {stats["done_before"]} before)')
      # Built once per version of the labels: new sources or options make a new dataset.
      with open(os.path.join(labels, 'annotations.json'), 'rb') as f:
        version = hashlib.sha256(f.read()).hexdigest()[:12]
      b = builders.build('ytvis', labels, os.path.join(base, f'tfds-{version}'),
                         config_name='person')
    else:
      b = builders.build('coco', os.path.join(root, part.sources[0]), os.path.join(base, 'tfds'),
                         splits={'train': part.annotations}, images=part.get('images', ''),
                         config_name='person')
    dirs.append(b.data_dir)
    weights.append(float(part.weight))
  return ','.join(dirs), tuple(weights)


def stage_weights(data_cfg, tcfg) -> Tuple[Tuple[int, Tuple[float, ...]], ...]:
  """((first step, the parts' weights in recipe order), ...) of each train.stages entry: a
  stage's `weights` change the parts it names; the rest keep data.recipe's. Checked by name
  before any labelling."""
  from hvisnet_jax.training import optimizer  # pylint: disable=g-import-not-at-top
  names = list(data_cfg.recipe.keys())
  out = []
  for i, (st, start) in enumerate(zip(optimizer.stages(tcfg), optimizer.stage_starts(tcfg)[1:])):
    unknown = sorted(set(st['weights']) - set(names))
    if unknown:
      raise ValueError(f'train.stages[{i}].weights: {unknown} not among data.recipe\'s parts '
                       f'{names}')
    out.append((start, tuple(float(st['weights'].get(n, data_cfg.recipe[n].weight))
                             for n in names)))
  return tuple(out)


def _progress():
  import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm.tqdm
