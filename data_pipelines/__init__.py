"""Data pipelines: TFDS builders, tf.data input, teachers and pseudo-labels (TensorFlow)."""
from hvisnet_jax import logs as _logs

_logs.import_tensorflow_quietly()
