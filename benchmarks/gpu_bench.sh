#!/usr/bin/env bash
# GPU figures in one go: the paper network (DLA-34, 512x512) in JAX against the same
# network in PyTorch (eager and torch.compile) at batch 1 and 16, float32 and bfloat16;
# training steps per second; the built-in real model end to end on a video.
#
#   bash benchmarks/gpu_bench.sh [OUT_DIR [VIDEO]]
#
# OUT_DIR defaults to benchmarks/results, VIDEO to ../shared/data/videos/vtest.avi.
# RUNS / WARMUP (environment) set the timed and untimed calls of each figure; ONLY (names,
# space-separated) runs a subset. A step that fails is reported and the others still run;
# the exit status counts the failures.
set -u
OUT=${1:-benchmarks/results}
VIDEO=${2:-../shared/data/videos/vtest.avi}
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-5}
LOGS=${LOGS:-$OUT}     # each step's log, NAME.log
ONLY=${ONLY:-}
mkdir -p "$OUT" "$LOGS"
failed=0

bench() {  # NAME ARGS...: one `hvisnet bench` run, its JSON at OUT/NAME.json
  local name=$1; shift
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  echo "== $name: hvisnet bench $*"
  if ! python3 -m hvisnet_jax.cli bench --runs "$RUNS" --warmup "$WARMUP" \
      --json "$OUT/$name.json" "$@" > "$LOGS/$name.log" 2>&1; then
    echo "FAILED: $name (log: $LOGS/$name.log)"; tail -5 "$LOGS/$name.log"
    failed=$((failed + 1))
  fi
}

# hvisnet track's stages (ms per frame each) and its end-to-end rate beside the predictor's:
# the built-in real model at its own size; the host's ceiling alone (stored network
# outputs replayed on one core); DLA-34 at 512 (untrained: speed only).
bench pipeline_gpu_vtest --what pipeline --source "$VIDEO" --frames 400 --repeats 3
bench pipeline_gpu_vtest_null --what pipeline --source "$VIDEO" --frames 400 --null-network
bench pipeline_gpu_vtest_dla34 --what pipeline --source "$VIDEO" --frames 400 \
  --model configs/hvisnet_dla34.py --size 512 --repeats 3
bench inference_gpu_512_b1_f32_mobile --what inference --config configs/hvisnet_mobile.py \
  --batch 1 --dtype float32
DLA=(--what inference --config configs/hvisnet_dla34.py --framework both)
bench inference_gpu_512_b16_f32 "${DLA[@]}" --batch 16 --dtype float32
bench inference_gpu_512_b1_f32 "${DLA[@]}" --batch 1 --dtype float32
bench inference_gpu_512_b1_bf16 "${DLA[@]}" --batch 1 --dtype bfloat16
bench inference_gpu_512_b16_bf16 "${DLA[@]}" --batch 16 --dtype bfloat16
bench train_gpu_b16_bf16 --what train --config configs/hvisnet_dla34.py --batch 16 \
  --dtype bfloat16

python3 - "$OUT" <<'EOF'
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*_gpu_*.json'))):
  r = json.load(open(path))
  for row in r['results']:
    keys = ('framework', 'median_ms', 'images_per_s', 'fps', 'compile_s', 'end_to_end_fps',
            'predictor_fps', 'host_only_fps_one_core', 'ms_per_frame')
    print(os.path.basename(path), r['device'], {k: row[k] for k in keys if k in row})
EOF
exit $failed
