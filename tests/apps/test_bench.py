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
