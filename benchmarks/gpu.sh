#!/usr/bin/env bash
# Everything jaxmom measures on an NVIDIA GPU, in one run of under 8 minutes, every report into
# one folder. On a machine with JAX (CUDA), optax, Flax, matplotlib and PyTorch installed:
#
#   pip install --no-deps -e .
#   benchmarks/gpu.sh [OUT_FOLDER]        # default benchmarks/gpu_<date>
#
# 1. the tests that touch the device path (export, engine, sweep, train) on the GPU;
# 2. jaxmom bench (the chapter's MLP) at 1 to 262,144 models, PyTorch's peers on the GPU;
# 3. jaxmom bench --task digits and --task search.
# Each step's log and report go to OUT_FOLDER; a failing step is logged and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks/gpu_$(date +%Y%m%d)}"
mkdir -p "$out"
start=$SECONDS
step() {  # step NAME SECONDS COMMAND...: one step under a time limit, its output logged
  local name=$1 limit=$2
  shift 2
  echo "== $name (at most ${limit}s)"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "   exit $? after $((SECONDS - start))s in all"
}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python -c "import jax, jaxlib; print(jax.__version__, jaxlib.__version__, jax.devices())"
  python -c "import torch; print(torch.__version__, torch.cuda.is_available())"
} >"$out/device.txt" 2>&1
step tests 120 python -m pytest -q -x -p no:cacheprovider tests/test_export.py \
  tests/test_engine.py tests/test_transform.py tests/test_peak.py
step bench_chapter 200 python -m jaxmom bench \
  --models 1,64,4096,65536,262144 --repeats 3 --out "$out/chapter.json" --overwrite
step bench_digits 90 python -m jaxmom bench --task digits --models 256,1024,4096 \
  --out "$out/digits.json" --overwrite
step bench_search 60 python -m jaxmom bench --task search --out "$out/search.json" --overwrite
echo "done in $((SECONDS - start))s: $out"
