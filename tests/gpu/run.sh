#!/usr/bin/env bash
# The whole GPU check, in one command that fits a short GPU booking (under 8 minutes on an
# H100/H200 with 16 cores): the six benchmark models and their GPU arrays on the GPU, the
# per-op and model suites run on the GPU, then the benchmark tables against PyTorch (float32,
# then TF32 on both sides).
# Run from anywhere, on a machine with an NVIDIA GPU, its driver, nvcc and the test extras.
set -euo pipefail
cd "$(dirname "$0")/../.."
python - <<'PY'
from onnxc.targets import local_gpu
gpu = local_gpu()
if gpu is None:
    raise SystemExit("tests/gpu/run.sh: no NVIDIA GPU with a CUDA driver found")
print(f"GPU target: {gpu.tag} ({gpu.gpu.arch})")
PY
python benchmarks/models.py >/dev/null
python -m pytest -q -n auto tests/gpu
ONNXC_TEST_BACKENDS=cuda python -m pytest -q -n auto tests/ops tests/models
python benchmarks/gpu.py --batch 1 64
python benchmarks/gpu.py --batch 1 64 --tf32
