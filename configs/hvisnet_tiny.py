"""Tiny HVISNet (same structure, narrow channels) for CPU tests and the default demo."""
import ml_collections

from hvisnet_jax import config_defaults


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  del arg
  config = ml_collections.ConfigDict()
  config.model = config_defaults.tiny_model_config()
  config.inference = config_defaults.inference_config()
  config.inference.update(min_size=256, max_size=384, max_detections=50)
  return config
