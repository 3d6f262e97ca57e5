"""Frame reading."""
import os

from hvisnet_jax import video


def test_frame_reader_stops_early_without_deadlock(shared_data):
  reader = video.FrameReader(os.path.join(shared_data, 'videos', 'vtest.avi'), prefetch=2)
  for i, _ in reader:
    if i == 3:
      break
  reader.close()                               # must not hang on a full queue
  assert not reader._thread.is_alive()
