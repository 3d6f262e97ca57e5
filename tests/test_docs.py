"""The front page and docs/: links resolve, every `hvisnet` command shown parses, the README
stays a front page, result files carry their provenance, and no development history."""
import glob
import json
import os
import re
import shlex
import subprocess

import pytest

from conftest import REPO
from hvisnet_jax import cli

DOCS = [os.path.join(REPO, 'README.md')] + sorted(glob.glob(os.path.join(REPO, 'docs', '*.md')))
LINK = re.compile(r'\]\(([^)\s]+)\)')
HISTORY = r'session [0-9]|issue #?[0-9]+|previous[ ]commit|(this|last|earlier) session'
PROVENANCE = ('command', 'commit', 'machine', 'date', 'versions')


def _anchors(path):
  """GitHub's heading anchors of a Markdown file."""
  out = set()
  for line in open(path, encoding='utf-8'):
    if line.startswith('#'):
      title = line.lstrip('#').strip().lower()
      out.add(re.sub(r'[^\w\- ]', '', title).replace(' ', '-'))
  return out


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_every_relative_link_resolves(doc):
  bad = []
  for target in LINK.findall(open(doc, encoding='utf-8').read()):
    if re.match(r'[a-z]+://', target) or target.startswith('mailto:'):
      continue
    path, _, anchor = target.partition('#')
    full = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
    if not os.path.exists(full):
      bad.append(target)
    elif anchor and full.endswith('.md') and anchor not in _anchors(full):
      bad.append(target)
  assert not bad, f'{os.path.relpath(doc, REPO)}: links that do not resolve: {bad}'


def _commands(doc):
  text = open(doc, encoding='utf-8').read()
  for block in re.findall(r'```(?:bash|sh)?\n(.*?)```', text, re.S):
    joined = block.replace('\\\n', ' ')
    for line in joined.splitlines():
      line = line.split('#', 1)[0].strip()
      for part in re.split(r'&&|\|\|', line):
        part = part.strip()
        if part.startswith('hvisnet '):
          yield part


def test_every_hvisnet_command_shown_is_one_the_cli_accepts():
  parser = cli.build_parser()
  shown = [(os.path.relpath(d, REPO), c) for d in DOCS for c in _commands(d)]
  assert len(shown) >= 10
  for doc, command in shown:
    argv = shlex.split(re.sub(r'\$\([^)]*\)', 'NAME', command))[1:]   # $(...): one word
    if argv[0] == 'train' or ' [' in command:     # absl flags (checked by the trainer); a
      continue                                    # synopsis with [optional] parts
    try:
      parser.parse_args(argv)
    except SystemExit:
      pytest.fail(f'{doc}: `{command}` is not accepted by the hvisnet CLI')


def test_readme_is_a_front_page():
  lines = open(os.path.join(REPO, 'README.md'), encoding='utf-8').read().splitlines()
  assert len(lines) <= 250
  text = '\n'.join(lines)
  for needed in ('pip install -r requirements.txt', 'python -m pytest', '](docs/model-card.md)',
                 'jax[cuda12]', 'jax[tpu]', '.png)'):
    assert needed in text


def test_every_result_file_records_how_it_was_made():
  missing = {}
  for path in sorted(glob.glob(os.path.join(REPO, 'benchmarks', 'results', '*.json'))):
    data = json.load(open(path))
    lack = [k for k in PROVENANCE if k not in data]
    if lack:
      missing[os.path.basename(path)] = lack
  assert not missing, f'result files without provenance: {missing}'


def test_no_development_history_in_the_tree():
  files = subprocess.run(['git', 'ls-files'], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
  hits = []
  for f in files:
    path = os.path.join(REPO, f)
    if not os.path.isfile(path) or f.endswith(('.png', '.mp4', '.ipynb')) or '/models/' in f:
      continue
    try:
      text = open(path, encoding='utf-8').read()
    except UnicodeDecodeError:
      continue
    hits += [f'{f}:{i}' for i, line in enumerate(text.splitlines(), 1)
             if re.search(HISTORY, line, re.I)]
  assert not hits, f'development history in: {hits[:10]}'


@pytest.mark.parametrize('doc', DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_no_paragraph_runs_into_a_heading(doc):
  """A heading follows a blank line (or a code fence): text right above one is a paragraph
  cut off mid-sentence."""
  lines = open(doc, encoding='utf-8').read().splitlines()
  fenced, cut = False, []
  for i, line in enumerate(lines):
    if line.startswith('```'):
      fenced = not fenced
    elif not fenced and line.startswith('#') and i and lines[i - 1].strip():
      cut.append(f'{os.path.basename(doc)}:{i}: {lines[i - 1][:60]!r}')
  assert not cut, cut


def test_compilation_cache_is_where_the_docs_say(tmp_path, monkeypatch):
  import jax  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('HVISNET_CACHE', str(tmp_path))
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  before = jax.config.jax_compilation_cache_dir
  try:
    cli._use_compilation_cache()
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'jax')
  finally:
    jax.config.update('jax_compilation_cache_dir', before)
  assert '`~/.cache/hvisnet/jax`' in open(os.path.join(REPO, 'docs', 'usage.md')).read()


def test_shared_data_tests_skip_without_it_and_ci_refuses_skips(tmp_path):
  env = dict(os.environ, HVISNET_SHARED_DATA=str(tmp_path / 'absent'))
  env.pop('HVISNET_NO_SKIPS', None)
  cmd = ['python', '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider',
         'tests/test_video.py::test_frame_reader_stops_early_without_deadlock']
  r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0 and '1 skipped' in r.stdout, r.stdout[-2000:]
  assert 'needs the shared data at' in r.stdout
  r = subprocess.run(cmd, cwd=REPO, env=dict(env, HVISNET_NO_SKIPS='1'), capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 1 and 'skipped under HVISNET_NO_SKIPS' in r.stdout, r.stdout[-2000:]


def test_the_demos_output_folder_is_ignored_by_git():
  r = subprocess.run(['git', 'check-ignore', '-q', 'demo_out/real/render.mp4'], cwd=REPO)
  assert r.returncode == 0, 'README command 1 writes demo_out/: it belongs in .gitignore'


def test_results_made_now_record_the_cpus_generation_and_instruction_sets():
  from hvisnet_jax import provenance  # pylint: disable=g-import-not-at-top
  machine = provenance.record(['x'])['machine']
  details = machine['cpu_details']
  assert machine['cpu'] and details['vendor'] and details['family_model_stepping']
  flags = set(open('/proc/cpuinfo').read().split()) if os.path.exists('/proc/cpuinfo') else set()
  assert set(details['isa']) == {f for f in provenance.ISA_FLAGS if f in flags}


def test_every_numeric_option_has_a_range_and_usage_md_lists_them_all():
  import argparse  # pylint: disable=g-import-not-at-top
  sub = next(a for a in cli.build_parser()._actions
             if isinstance(a, argparse._SubParsersAction))
  rows = {}
  for name, parser in sub.choices.items():
    for a in parser._actions:
      if a.type is not None and a.type is not str:
        assert hasattr(a.type, 'range'), f'hvisnet {name} {a.option_strings}: no stated range'
        rows.setdefault((a.option_strings[0], a.type.range), []).append(name)
  text = open(os.path.join(REPO, 'docs', 'usage.md'), encoding='utf-8').read()
  listed = set(re.findall(r'^  \| `(--[\w-]+)` \| ([^|]+) \| ([^|]+) \|$', text, re.M))
  wanted = {(opt, rng, ', '.join(cmds)) for (opt, rng), cmds in rows.items()}
  assert {(o, r.strip(), c.strip()) for o, r, c in listed} == wanted


def _out_of_range(parse):
  """A value `parse` must refuse, from its stated range."""
  m = re.match(r'a whole number >= (-?\d+)', parse.range)
  if m:
    return str(int(m.group(1)) - 1)
  m = re.match(r'a number > (\S+)', parse.range)
  if m:
    return m.group(1)
  return {'a multiple of 32, >= 64': '48', 'a whole number': 'x1'}.get(parse.range, '16')


def test_out_of_range_numbers_are_refused_when_parsed_naming_the_option(capsys):
  import argparse  # pylint: disable=g-import-not-at-top
  parser = cli.build_parser()
  sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
  checked = 0
  for name, p in sub.choices.items():
    required = []
    for a in p._actions:
      if not a.option_strings and a.dest != 'help':
        required += ['x'] if a.nargs in (None, 1) else ['x']
      elif a.required:
        required += [a.option_strings[0], 'x' if a.choices is None else list(a.choices)[0]]
    for a in p._actions:
      if a.type is None or a.type is str or not a.option_strings:
        continue
      bad = _out_of_range(a.type)
      with pytest.raises(SystemExit):
        parser.parse_args([name, *required, a.option_strings[0], bad])
      err = capsys.readouterr().err
      assert a.option_strings[0] in err and 'expected' in err, (name, a.option_strings, err)
      checked += 1
  assert checked >= 35
