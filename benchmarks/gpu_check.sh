#!/usr/bin/env bash
# One-shot GPU check (issue 5): installs what is missing (keeping the machine's CUDA build of torch), then runs
# each task's recipe for a fixed number of steps in `auto` precision (bf16-mixed on GPUs with bf16) on CUDA and writes tokens/s and peak memory to
# benchmarks/results/gpu_check.json. About 3-5 minutes on one H100.
#   bash benchmarks/gpu_check.sh [--steps 200] [--precision auto|bf16-mixed|16-mixed]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    echo "gpu_check: $PY has no CUDA-enabled torch; install one first (https://pytorch.org/get-started)" >&2
    exit 1
fi
if ! "$PY" -c "import seq2text, pytorch_lightning, jsonargparse, sentencepiece, sacrebleu, torchmetrics, safetensors" \
        2>/dev/null; then
    # torch is already there (checked above): pip keeps it, and installs seq2text and the rest
    "$PY" -m pip install --quiet -e . || "$PY" -m pip install --quiet --no-deps -e .
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name(0))"
exec "$PY" benchmarks/gpu_check.py "$@"
