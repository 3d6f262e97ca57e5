"""benchmarks/large_people.py: where a prediction loses a large person (box or shape)."""
import os
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
import large_people  # pylint: disable=g-import-not-at-top,wrong-import-position


def _rect(h, w, y1, x1, y2, x2):
  m = np.zeros((h, w), bool)
  m[y1:y2, x1:x2] = True
  return m


def test_a_mask_that_spills_past_the_person_keeps_its_shape_inside_the_box():
  person = _rect(100, 100, 10, 10, 90, 50)                  # 80 x 40
  spill = person | _rect(100, 100, 10, 50, 90, 90)          # the same, and as much beside
  far = _rect(100, 100, 0, 95, 5, 100)
  row, none = large_people.person_rows([person, _rect(100, 100, 95, 0, 100, 5)],
                                       [(0.9, spill), (0.8, far)])
  assert row['pred'] == 0 and row['iou'] == pytest.approx(0.5)
  assert row['box_iou'] == pytest.approx(0.5) and row['iou_in_box'] == pytest.approx(1.0)
  assert none == dict(iou=0.0, box_iou=0.0, iou_in_box=0.0, pred=-1)


def test_a_missing_set_is_named_before_any_model_loads(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    large_people.main(['large_people.py', '--models', 'no/such/export', '--shared',
                       str(tmp_path)])
  assert e.value.code == 2 and 'instances_val2017.json: not found' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    large_people.main(['large_people.py', '--sheet', 'x.jpg', '--shared', str(tmp_path)])
