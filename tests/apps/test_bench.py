"""`hvisnet bench` writes the JSON its users compare across devices and frameworks."""
import importlib.util
import json
import os

from hvisnet_jax import cli
from conftest import REPO

TINY = os.path.join(REPO, 'configs', 'hvisnet_tiny.py')


def test_inference_json(tmp_path):
  out = tmp_path / 'b.json'
  fw = 'both' if importlib.util.find_spec('torch') else 'jax'
  assert cli.main(['bench', '--what', 'inference', '--framework', fw, '--config', TINY,
                   '--size', '64', '--batch', '2', '--warmup', '1', '--runs', '3',
                   '--no-torch-compile', '--json', str(out)]) == 0
  r = json.loads(out.read_text())
  assert r['device'] and r['platform'] == 'cpu' and r['versions']['jax']
  assert r['batch'] == 2 and r['size'] == 64 and r['dtype'] == 'float32'
  jax_row = r['results'][0]
  assert jax_row['framework'] == 'jax' and jax_row['flops_per_call'] > 0
  assert jax_row['median_ms'] > 0 and jax_row['images_per_s'] > 0
  assert 0 < jax_row['fraction_of_matmul_rate'] < 10
  if fw == 'both':
    assert r['results'][1]['framework'] == 'torch-eager' and r['results'][1]['median_ms'] > 0


def test_tracker_json(tmp_path):
  out = tmp_path / 't.json'
  assert cli.main(['bench', '--what', 'tracker', '--warmup', '2', '--runs', '5', '--json',
                   str(out)]) == 0
  rows = json.loads(out.read_text())['results']
  assert [r['people'] for r in rows] == [10, 50, 200]
  assert all(r['median_ms'] > 0 for r in rows)


def test_unknown_what_is_refused(capsys):
  assert cli.main(['bench', '--what', 'pipeline', '--config', TINY]) == 2
  assert '--source' in capsys.readouterr().err


def test_program_flops_counts_convolutions_on_any_device():
  # On a GPU the compiled program's cost analysis misses cuDNN convolutions; the count is
  # taken from the CPU's, which must see every multiply-add of a convolution (x2).
  import jax
  import jax.numpy as jnp
  from hvisnet_jax.apps import bench
  conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'VALID',
                                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  flops = bench._program_flops(conv, jnp.ones((1, 8, 8, 3)), jnp.ones((3, 3, 3, 4)))
  assert flops == 2 * (6 * 6 * 4) * (3 * 3 * 3)


def test_predictor_share_of_a_video(tmp_path):
  import cv2
  import numpy as np
  import pytest
  from hvisnet_jax.apps import bench
  from hvisnet_jax.inference import predictor
  path = str(tmp_path / 'clip.avi')
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10, (128, 96))
  for i in range(3):
    writer.write(np.full((96, 128, 3), 40 * i, np.uint8))
  writer.release()
  pred = predictor.Predictor.from_export('synthetic')
  row = bench.predictor_share(pred, path, fps=5.0, warmup=1, runs=2)
  assert row['predict_ms'] > 0 and row['devices'] == pred.batch_size
  assert row['predict_share'] == pytest.approx(min(1.0, row['predict_ms'] * 5.0 / 1e3))
  with pytest.raises(ValueError, match='missing.avi'):
    bench.predictor_share(pred, str(tmp_path / 'missing.avi'), 5.0, 1, 1)


def test_pipeline_stages_and_the_null_network_replay(tmp_path):
  """Every stage of `hvisnet track` gets a time per frame; the replay of stored network
  outputs reports the host's rate on one core; the real pipeline's rate comes beside the
  predictor's."""
  import numpy as np
  from hvisnet_jax.apps import bench
  from hvisnet_jax.inference import predictor
  from hvisnet_jax.synthetic import synth
  video = synth.render_video(7, 0, 6, 96, 128, 'easy')
  path = str(tmp_path / 'clip.mp4')
  video.write_mp4(path)
  pred = predictor.Predictor.from_export('synthetic')
  row = bench.bench_pipeline(pred, path, frames=6, null_network=False, warmup=1)
  assert set(row['ms_per_frame']) == set(bench.PIPELINE_STAGES)
  assert all(v >= 0 for v in row['ms_per_frame'].values())
  assert row['ms_per_frame']['network'] > 0 and row['people_per_frame'] > 0
  assert row['frames'] == 6 and row['end_to_end_fps'] > 0 and row['predictor_fps'] > 0
  assert row['host_only_fps_one_core'] > 0
  null = bench.bench_pipeline(pred, path, frames=6, null_network=True, warmup=1)
  assert 'end_to_end_fps' not in null and null['host_only_fps_one_core'] > 0
  assert np.isfinite(null['host_only_fps_one_core'])


def test_pipeline_times_several_sources_in_rounds(tmp_path):
  """Both videos in one run, each in back-to-back rounds of predictor then pipeline; the
  reported ratio is the median of the rounds' own ratios."""
  import numpy as np
  from hvisnet_jax.apps import bench
  from hvisnet_jax.synthetic import synth
  paths = []
  for k, (h, w) in enumerate(((96, 128), (64, 96))):
    paths.append(str(tmp_path / f'clip{k}.mp4'))
    synth.render_video(7 + k, 0, 4, h, w, 'easy').write_mp4(paths[-1])
  res = bench.run('pipeline', 'jax', 1, 'float32', None, 'ignored.py', 1, 1, source=paths,
                  model='synthetic', frames=4, repeats=2)
  assert res['config'] is None                 # the export's model, not --config
  assert [r['source'] for r in res['results']] == paths
  assert [r['frame_hw'] for r in res['results']] == [[96, 128], [64, 96]]
  for row in res['results']:
    assert len(row['rounds']) == 2
    assert row['end_to_end_over_predictor'] == np.median([r['ratio'] for r in row['rounds']])
    assert row['predictor_fps'] == np.median([r['predictor_fps'] for r in row['rounds']])
