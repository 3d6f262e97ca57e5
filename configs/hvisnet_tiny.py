"""Tiny HVISNet trained on synthetic `easy` videos on a CPU: the project's default model.

  python -m hvisnet_jax.main --config=configs/hvisnet_tiny.py --workdir=WORKDIR

Same structure as the paper's network with narrow channels. AdamW instead of the paper's
SGD: on a 20-minute, 2-core budget it converges in far fewer steps (the paper's SGD
recipe stays the default of configs/hvisnet_dla34.py).
"""
import ml_collections

from hvisnet_jax import config_defaults


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = config_defaults.tiny_model_config()
  config.inference = config_defaults.inference_config()
  config.inference.update(min_size=240, max_size=320, max_detections=50)
  config.train = config_defaults.train_config()
  config.train.update(steps=1800, batch_size=8, optimizer='adamw', lr=2e-3,
                      weight_decay=1e-4, warmup_steps=200, warmup_factor=0.01,
                      grad_clip=10.0, log_every=50, checkpoint_every=500)
  config.data = config_defaults.data_config()
  config.targets = config_defaults.targets_config()
  config.loss = config_defaults.loss_config()
  config.evals = config_defaults.evals_config()
  config.evals.synthetic.every = 600          # held-out easy videos, seed 1000
  if arg == 'crowd':
    config.data.preset = 'crowd'
  elif arg:
    raise ValueError(f"unknown config argument {arg!r}; expected '' or 'crowd'")
  return config
