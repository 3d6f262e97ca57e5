"""No command writes over what another command made, or onto its own input: each writes
into a new or empty place or its own earlier output (replaced with --overwrite)."""
import os
import sys

import numpy as np

from hvisnet_jax import cli


def _files(root):
  return {p: p.read_bytes() for p in root.rglob('*') if p.is_file()}


def test_demo_never_lands_on_a_track_run(tmp_path, capsys):
  run = tmp_path / 'run'
  run.mkdir()
  for name in ('tracks.txt', 'results.json', 'stats.json'):
    (run / name).write_text('a track run')
  before = _files(run)
  assert cli.main(['demo', '--out', str(run), '--frames', '2', '--quiet']) == 2
  err = capsys.readouterr().err
  assert 'holds the output of hvisnet track' in err and 'hvisnet demo writes only' in err
  assert _files(run) == before


def test_convert_torch_never_lands_inside_an_export_and_says_how_to_get_torch(
    tmp_path, capsys, monkeypatch):
  export = tmp_path / 'model'
  (export / 'variables').mkdir(parents=True)
  (export / 'config.json').write_text('{}')
  (export / 'variables' / 'weights').write_text('trained')
  np.savez(tmp_path / 'sd.npz', x=np.zeros(1, np.float32))
  before = _files(export)
  for out in (export / 'variables', export / 'backbone'):
    assert cli.main(['convert-torch', str(tmp_path / 'sd.npz'), '--out', str(out)]) == 2
    assert 'an hvisnet export or training workdir' in capsys.readouterr().err
  assert _files(export) == before
  monkeypatch.setitem(sys.modules, 'torch', None)          # torch not installed
  (tmp_path / 'w.pth').write_bytes(b'not read')
  assert cli.main(['convert-torch', str(tmp_path / 'w.pth'), '--out', str(tmp_path / 'o')]) == 2
  err = capsys.readouterr().err
  assert 'needs torch' in err and 'pip install torch==2.13.0' in err and 'Traceback' not in err
  assert not (tmp_path / 'o').exists()


def test_eval_and_bench_json_destinations_are_checked_before_the_work(tmp_path, capsys):
  (tmp_path / 'notes.txt').write_text('keep')
  assert cli.main(['bench', '--what', 'tracker', '--json',
                   str(tmp_path / 'notes.txt' / 'b.json')]) == 2
  assert 'notes.txt is a file, not a folder' in capsys.readouterr().err
  assert cli.main(['bench', '--what', 'tracker', '--json', str(tmp_path)]) == 2
  assert 'is a folder' in capsys.readouterr().err
  assert (tmp_path / 'notes.txt').read_text() == 'keep'
