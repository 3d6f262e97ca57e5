"""HVISNet with DLA-34 at 512 px, as in the paper (Yu et al., Sec. III; DESIGN.md sec. 1).

Model and inference only for now; training settings arrive with the trainer.
Use `--config=configs/hvisnet_dla34.py:runlocal` for a tiny CPU-sized variant.
"""
import ml_collections

from hvisnet_jax import config_defaults


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  runlocal = arg == 'runlocal'
  config.model = (config_defaults.tiny_model_config() if runlocal
                  else config_defaults.model_config())
  config.inference = config_defaults.inference_config()
  if runlocal:
    config.inference.update(min_size=128, max_size=192)
  return config
