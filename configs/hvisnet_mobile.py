"""Real-time student for real footage on a CPU: COCO-trained MobileNetV2 + FPN + HVISNet heads.

  hvisnet teacher fetch                    # the teacher and the pretrained backbone
  hvisnet train --config configs/hvisnet_real.py --workdir runs/real --cpu-devices 2   # its recipe

The backbone starts from the MobileNetV2 of the SSDLite COCO person detector (ported by
hvisnet_jax/convert_tf.py); the first `frozen_blocks` blocks stay fixed, which halves the
backward pass on a CPU. Narrow heads (64 channels), BlendMask with 7x7 attentions and
28x28 masks, 64-d identity embeddings: sized for 10+ frames/s at 640x480 on 2 cores.
Distilled from the YOLOv5s-seg teacher's pseudo-labels of real clips plus real person
masks of COCO and full-body photos (docs/model-card.md lists the data and their licences;
docs/training.md the exact command).

`get_config('runlocal')`: tiny sizes and a few steps, for tests.
"""
import ml_collections

from hvisnet_jax import config_defaults


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  m = config_defaults.model_config()
  m.backbone = dict(name='mobilenet_v2', pretrained='ssdlite_coco', frozen_blocks=6)
  m.fpn_channels = 64
  m.head.update(channels=64, num_convs=2, num_groups=16)
  # Masks in the box grown by 12% a side, trained with boxes whose sides miss by up to 10%:
  # the student's boxes stop 7-8% of a standing person's height short of the head and the
  # feet (benchmarks/extent_diagnosis.py), and a mask pasted in its box cannot reach past it.
  m.blendmask.update(attn_size=7, pooler_resolution=28, channels=64, num_convs=1,
                     box_margin=0.12)
  m.identity.update(channels=64, embedding_dim=64)
  config.model = m
  config.inference = config_defaults.inference_config()
  # 352: 320 keeps mask AP on coco_mini val but loses small people (AP small 0.044 ->
  # 0.014) for ~15% of the network's time.
  # 100 detections: a crowd of 30+ is not capped (the host pastes only the kept ones).
  # A person keeps a detection while a quarter of its mask is its own (0.5 dropped people
  # in crowds once masks reach past their boxes: crowd_mall head recall 0.36 -> 0.41,
  # ShanghaiTech B 0.18 -> 0.24; coco mask AP 0.108 -> 0.106; people_benchmark.py).
  # Masks blended at 56 cells a side, trained at 28: the stride-4 bases hold more detail
  # than 28 cells sample in a tall person (ccp_fullbody median IoU 0.921 -> 0.932, share
  # >= 0.9 80% -> 88%; coco unchanged). On the host, for valid people only, it costs no speed.
  config.inference.update(min_size=352, max_size=608, max_detections=100, score_thresh=0.05,
                          paste='host', min_visible_fraction=0.25, mask_resolution=56)
  # A crowd pass at 800 on frames where the 352 pass finds 8+ people under 40 px tall (a
  # distant crowd): ShanghaiTech B head recall 0.21 -> 0.34, coco mask AP 0.126 -> 0.142,
  # while vtest.avi, the 640x480 clip and the arcade crowd (almost) never qualify and keep
  # one pass's speed (docs/results.md, "A crowd pass"). Also where people fill 80% of the
  # 352 pass's slots (a dense crowd, whatever the size of its people): ShanghaiTech B 0.33
  # -> 0.38, nothing else changed ("A full first pass"). The inference defaults' rules.
  config.inference.update(crowd_size=800)
  # The tracker's settings for this model (TrackerConfig fields over the defaults).
  # A new track needs score >= 0.6, not 0.5: tuned on the training clips' pseudo ground
  # truth, then on the held-out clips identity switches 47 -> 29, sMOTSA 0.027 -> 0.085,
  # IDF1 0.345 -> 0.350, HOTA 0.295 -> 0.294 (fewer false tracks, fewer people found).
  config.tracker = ml_collections.ConfigDict(dict(new_track_thresh=0.6))
  config.train = config_defaults.train_config()
  # From scratch (the pretrained backbone alone) 1,200 steps; fine-tuning an earlier export
  # (train.init_from) needs fewer at a lower rate.
  config.train.update(steps=1200, batch_size=4, optimizer='adamw', lr=1e-3, weight_decay=1e-4,
                      warmup_steps=50, warmup_factor=0.01, decay_at=(0.8,), grad_clip=10.0,
                      log_every=25, checkpoint_every=100, keep_checkpoints=2)
  config.data = config_defaults.data_config()
  # Short sides up to 480 inside a 480x800 canvas: a portrait full-body photo fills the
  # canvas's height, so the student sees people as tall as the frame (trained only on
  # landscape frames at <= 352, its boxes stopped at ~300 px: benchmarks/extent_diagnosis.py).
  # 64 instances: crowd frames keep every labelled person.
  # Zoom-in crops on 40% of frames (up to 2x): people close up and cut by the frame's
  # edges, as in photos. From the same start, 1,200 steps with against without: coco_mini
  # val mask AP 0.106 -> 0.125, large people's median IoU 0.61 -> 0.74, ccp_fullbody and
  # crowd_mall unchanged, ShanghaiTech B head recall 0.24 -> 0.21 (people_benchmark.py).
  config.data.update(source='tfds', scales=(320, 352, 384, 416, 448, 480), max_size=800,
                     pad_size=(480, 800), max_instances=64, pair_gap=4, shuffle_buffer=128,
                     zoom_in=2.0, zoom_prob=0.4)
  config.targets = config_defaults.targets_config()
  config.loss = config_defaults.loss_config()
  config.loss.mask_box_jitter = 0.1
  # The held-out real clips are scored by benchmarks/real_benchmark.py after training (the
  # teacher's pseudo ground truth); synthetic cartoons say little about this model.
  config.evals = config_defaults.evals_config()
  if arg == 'runlocal':
    m.backbone.pretrained = ''
    config.train.update(steps=2, batch_size=2, log_every=1, checkpoint_every=2)
    config.data.update(scales=(64,), max_size=96, pad_size=(64, 96), max_instances=4,
                       shuffle_buffer=4)
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; expected '' or 'runlocal'")
  return config
