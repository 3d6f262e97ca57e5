"""Default model and inference settings (docs/design.md, "The network").

Experiment files under `configs/` start from these and override what they change, so
every experiment states only its differences.
"""
from __future__ import annotations

import ml_collections


def model_config() -> ml_collections.ConfigDict:
  """The paper's HVISNet: DLA-34, FPN P3-P5 (256), FCOS head, BlendMask K=4 M=14."""
  c = ml_collections.ConfigDict()
  c.num_classes = 1                       # person
  c.dtype = 'float32'                     # compute dtype; parameters stay float32
  c.bn_axis_name = ml_collections.FieldReference(None, field_type=str)  # 'data' to sync BN
  c.backbone = dict(name='dla34', levels=(1, 1, 1, 2, 2, 1),
                    channels=(16, 32, 64, 128, 256, 512))
  c.fpn_channels = 256
  c.strides = (8, 16, 32)
  c.sizes_of_interest = ((0.0, 64.0), (64.0, 128.0), (128.0, 1e8))
  c.head = dict(channels=256, num_convs=4, norm='gn', num_groups=32, prior_prob=0.01)
  c.blendmask = dict(num_bases=4, attn_size=14, pooler_resolution=56, channels=128,
                     num_convs=3, norm='bn', semantic_head=True,
                     # Masks are blended and pasted in the box grown by this fraction of
                     # its size on each side (blender.mask_window); 0: in the box (BlendMask).
                     box_margin=0.0)
  c.identity = dict(channels=256, embedding_dim=256)
  return c


def tiny_model_config() -> ml_collections.ConfigDict:
  """A few-hundred-thousand-parameter variant with the same structure, for CPU tests."""
  c = model_config()
  c.backbone.levels = (1, 1, 1, 1, 1, 1)
  c.backbone.channels = (8, 8, 16, 24, 32, 48)
  c.fpn_channels = 32
  c.head.update(channels=32, num_convs=2, num_groups=8)
  c.blendmask.update(attn_size=7, pooler_resolution=28, channels=16, num_convs=1)
  c.identity.update(channels=32, embedding_dim=32)
  return c


def inference_config() -> ml_collections.ConfigDict:
  """BlendMask test-time defaults: threshold, per-level top-k, NMS, resize."""
  c = ml_collections.ConfigDict()
  c.score_thresh = 0.05        # on cls_prob * centerness
  c.pre_nms_topk = 1000        # per level
  c.nms_iou = 0.6
  c.max_detections = 100
  c.mask_thresh = 0.5
  # Ours: the cells a side of each blended mask at test time; 0 = model.blendmask's
  # pooler_resolution (what it was trained at). The blend (bases sampled in the box, the
  # attention upsampled over them) works at any size, and finer cells trace a large
  # person's outline closer than the training size (docs/results.md).
  c.mask_resolution = 0
  # Ours: an instance keeping under this share of its own mask in the non-overlapping label
  # map is a duplicate of a higher-scoring one and is dropped (mask-level NMS); 0 disables.
  c.min_visible_fraction = 0.5
  # Where masks are pasted into the frame and the label map is made: 'host' (NumPy, only
  # valid instances, each over its own box: inference/host_paste.py) or 'device' (inside
  # jit, every one of max_detections over the whole frame; no host work, for accelerators
  # where the host is the bottleneck).
  c.paste = 'host'
  # Ours, for paste='host': where the masks are blended. 'host': for the valid people only,
  # beside the paste (host_paste.blend; on a CPU, where jit would blend every slot, the
  # faster); 'device': every one of max_detections slots in jit (on an accelerator, where
  # that costs little and the host is the bottleneck: about 0.1 ms a person less host work).
  c.blend = 'host'
  # Ours, for paste='device': paste at the network's input resolution and scale the label
  # map to the frame (nearest); cheaper on a CPU than pasting at full frame size.
  c.paste_at_input_resolution = False
  # Ours, for several input sizes (Predictor.configure, `--input-size 352,800`): each pass
  # larger than the first keeps people at most this many of its input pixels tall, the
  # smaller passes the taller people (inference/multiscale.py). The built-in real model
  # boxes people taller than about 400 px of its input short; 150-250 measured alike and
  # 400 lost coco mask AP (docs/results.md).
  c.multiscale_split_px = 200
  # Ours: a crowd pass. A frame whose first pass finds at least crowd_min_people people
  # scored >= crowd_min_score and under crowd_max_height_px of its input tall runs again at
  # short side crowd_size (up to crowd_max_detections people), merged as several input
  # sizes are; other frames cost one pass. 0 = no crowd pass. A frame whose first pass
  # keeps people scored >= crowd_min_score in at least crowd_full_share of its
  # max_detections slots runs it too, whatever their size: the first pass is full, so it
  # dropped people (a dense crowd), and the crowd pass has crowd_max_detections slots.
  # Unlike the size rule this needs no model's own box heights (docs/results.md).
  c.crowd_size = 0
  c.crowd_min_people = 8
  c.crowd_max_height_px = 40
  c.crowd_min_score = 0.25
  c.crowd_full_share = 0.8     # 0 = only the size rule
  c.crowd_max_detections = 300
  c.min_size = 512             # short side after resizing
  c.max_size = 736             # cap on the long side
  c.size_divisibility = 32
  return c


def train_config() -> ml_collections.ConfigDict:
  """The paper's recipe (12 epochs, x0.1 after epochs 8 and 11) with BlendMask-RT's SGD."""
  return ml_collections.ConfigDict(dict(
      steps=90_000, batch_size=16, optimizer='sgd', lr=0.01, momentum=0.9,
      weight_decay=1e-4, warmup_steps=1000, warmup_factor=1e-3,
      decay_at=(8 / 12, 11 / 12), decay_factor=0.1, grad_clip=0.0, seed=0,
      log_every=50, checkpoint_every=1000, keep_checkpoints=3,
      mesh_data=-1,          # devices on the data axis; -1 = all
      init_from='',          # an export (folder or built-in name) to start from; '' = none
      # Runs that follow the main one in the same workdir, each its own schedule and data
      # mix: ({'steps': N, 'lr': LR, 'weights': {recipe part: weight}}, ...)
      # (optimizer.stages); the export is written after the last.
      stages=()))


def data_config() -> ml_collections.ConfigDict:
  """source 'synthetic' renders videos in NumPy; 'tfds' reads `hvisnet build-dataset` output."""
  return ml_collections.ConfigDict(dict(
      source='synthetic', seed=0, max_instances=16,
      # synthetic source
      preset='easy', videos=24, frames=40, height=240, width=320,
      # tfds source (data_pipelines/pipeline.py)
      tfds_dir='', tfds_weights=(), tfds_stages=(), split='train', scales=tuple(range(256, 609, 32)), max_size=1024,
      pad_size=(608, 1024), flip=True, pair_gap=8, shuffle_buffer=256,
      # Zoom-in crops: with probability zoom_prob a frame is cut to 1/z of its size, z up
      # to zoom_in (1 = off), before the resize; people showing less than zoom_min_visible
      # of their mask become ignore regions (pipeline.zoom_crop).
      zoom_in=1.0, zoom_prob=0.5, zoom_min_visible=0.25))


def targets_config() -> ml_collections.ConfigDict:
  """Inner Center Sampling with ambiguous-positive elimination (the paper's method)."""
  return ml_collections.ConfigDict(dict(strategy='inner_center', radius=1.5,
                                        eliminate_ambiguous=True))


def loss_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      mask_samples=32, id_negatives=32, margin=0.3, mask_weight=1.0, semantic_weight=0.3,
      id_weight=1.0, balance='fixed',
      # With model.blendmask.box_margin > 0: a training box's sides move at random by up to
      # this fraction of its size before its mask window grows (losses.hvisnet_loss).
      mask_box_jitter=0.0,
      # Weight of PP-HumanSeg's connectivity-aware SC loss on the instance masks (seed 003;
      # losses.connectivity_loss); 0 leaves it out.
      scl_weight=0.0))


def evals_config() -> ml_collections.ConfigDict:
  """Evaluators run by the trainer every `every` steps and at the end (0 = never); each key
  names a module of hvisnet_jax/evaluators/ (or its `evaluator` field does): synthetic
  (held-out synthetic videos: MOTS/HOTA and mask AP), coco_masks (person mask AP on a
  COCO-format set with real masks)."""
  return ml_collections.ConfigDict(dict(
      synthetic=dict(every=0, preset='easy', videos=2, frames=16, height=240, width=320,
                     seed=1000)))


def builtin_config_path(name: str) -> str:
  """A config shipped with the package (configs/ of the repository, installed as
  hvisnet_jax.configs), by file name: 'hvisnet_mobile.py', 'hvisnet_mobile' or
  'configs/hvisnet_mobile.py'."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  base = os.path.basename(name)
  base = base if base.endswith('.py') else base + '.py'
  spec = importlib.util.find_spec('hvisnet_jax.configs')
  roots = list((spec.submodule_search_locations if spec else []) or [])
  # A source checkout on PYTHONPATH, not installed: the repository's configs/.
  roots.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            'configs'))
  for root in roots:
    if os.path.isfile(os.path.join(root, base)):
      return os.path.join(root, base)
  raise FileNotFoundError(f'{name}: no such config file, and no built-in config {base}')


def load_config(spec: str) -> ml_collections.ConfigDict:
  """Loads `path/to/config.py[:arg]` by calling its get_config(arg), as absl's config flag does."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    path = builtin_config_path(path)
  mod_spec = importlib.util.spec_from_file_location('hvisnet_config', path)
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise ValueError(f'{path}: a config file must define get_config()')
  return module.get_config(arg) if arg else module.get_config()
