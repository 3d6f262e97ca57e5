"""hvisnet-jax: human-centric video instance segmentation (HVISNet) in JAX/Flax."""
__version__ = '0.1.0'
