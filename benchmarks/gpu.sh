#!/usr/bin/env bash
# The seed model's training speed on a GPU, under Keras's JAX backend, in float32 and mixed precision.
#
# The lent GPU machine has JAX (with CUDA) but neither TensorFlow nor a network, so Keras
# and the few packages it needs travel with the working tree as wheels in .whl/:
#   here:   bash benchmarks/gpu.sh --fetch          (downloads the wheels; the only network use)
#   there:  bash benchmarks/gpu.sh                  (installs from .whl/ only; writes $OUT/gpu.json)
# With the device tool: run(command="bash benchmarks/gpu.sh", carry=[".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
# The device image already has numpy, ml-dtypes, h5py, rich, absl-py, packaging (device KINDS.md).
WHEELS=(keras==3.15.1 namex optree)

if [ "${1:-}" = "--fetch" ]; then
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl "${WHEELS[@]}"
    ls -la .whl
    exit 0
fi

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 benchmarks/gpu_train.py --images 2048 --batch 32 --epochs 3 --out "${OUT:-/tmp}"
