"""A few of benchmarks/cli_probe.py's cases on every CI run (the whole table, 100+ cases,
is the benchmark): a new command gets probed by adding rows to that table."""
import os
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
import cli_probe  # pylint: disable=g-import-not-at-top,wrong-import-position

QUICK = [c for c in cli_probe.cases() if c['quick']]


@pytest.fixture(scope='module')
def work(tmp_path_factory):
  w = tmp_path_factory.mktemp('probe')
  cli_probe.prepare(str(w / 'inputs'), workdir=False)      # no quick case exports
  return str(w)


def test_the_table_has_a_hundred_cases_with_unique_names():
  names = [c['name'] for c in cli_probe.cases()]
  assert len(names) >= 100 and len(set(names)) == len(names)


@pytest.mark.parametrize('case', QUICK, ids=[c['name'] for c in QUICK])
def test_quick_probe_case(work, case):
  row = cli_probe.run_case(case, work)
  assert not row['problems'], row


def test_no_quick_case_needs_the_trained_workdir():
  assert all(c['setup'] is not cli_probe._workdir for c in QUICK)  # pylint: disable=protected-access
