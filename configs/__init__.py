"""Experiment configs (one file per experiment, each with get_config()); installed as
hvisnet_jax.configs so that `--config hvisnet_mobile.py` works outside a source checkout."""
