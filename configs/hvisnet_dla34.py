"""HVISNet with DLA-34 at 512 px, as in the paper (Yu et al., Sec. III; docs/design.md).

Train:  python -m hvisnet_jax.main --config=configs/hvisnet_dla34.py --workdir=WORKDIR
Local:  --config=configs/hvisnet_dla34.py:runlocal  (tiny network, a few CPU minutes)

The paper trains 12 epochs at lr 0.01 (x0.1 after epochs 8 and 11) from COCO-pretrained
DLA-34; here the schedule is in steps and the data defaults to the synthetic generator
(`data.source`), since no human video dataset can be downloaded on these machines.
"""
import ml_collections

from hvisnet_jax import config_defaults


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  runlocal = arg == 'runlocal'
  config = ml_collections.ConfigDict()
  config.model = (config_defaults.tiny_model_config() if runlocal
                  else config_defaults.model_config())
  config.inference = config_defaults.inference_config()
  config.train = config_defaults.train_config()
  config.data = config_defaults.data_config()
  config.data.update(height=512, width=512, preset='crowd', videos=64)
  config.targets = config_defaults.targets_config()
  config.loss = config_defaults.loss_config()
  config.evals = config_defaults.evals_config()
  config.evals.synthetic.update(every=5000, preset='crowd', height=512, width=512)
  if runlocal:
    config.inference.update(min_size=128, max_size=192)
    config.data.update(height=128, width=160, videos=4, frames=12)
    config.train.update(steps=20, batch_size=4, warmup_steps=5, log_every=5,
                        checkpoint_every=10)
    config.evals.synthetic.update(every=20, videos=1, frames=8, height=128, width=160,
                                  preset='easy')
  return config
