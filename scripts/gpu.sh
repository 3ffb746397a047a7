#!/usr/bin/env bash
# GPU tests (ctest label `gpu`) and, later, GPU benchmarks. On a machine with the build dependencies it
# configures build-gpu for the visible GPU and runs ctest -L gpu. With --prebuilt it runs the GPU test
# binaries of an existing build-gpu directly (for the lent GPU machine, which has CUDA but not the Debian
# -dev packages: build here with -DCMAKE_CUDA_ARCHITECTURES=90 and carry build-gpu there).
# Logs go to ${OUT:-build-gpu}/gpu-tests.log.
set -euo pipefail
cd "$(dirname "$0")/.."
log_dir=${OUT:-build-gpu}
mkdir -p "$log_dir"

if [ "${1:-}" = "--prebuilt" ]; then
  status=0
  for t in build-gpu/tests/adallm_gpu_tests; do
    [ -x "$t" ] || { echo "gpu.sh: $t missing: build build-gpu first" >&2; exit 1; }
    "$t" --gtest_color=no 2>&1 | tee -a "$log_dir/gpu-tests.log" || status=1
  done
  exit $status
fi

cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="${ADALLM_CUDA_ARCH:-native}"
cmake --build build-gpu -j"$(nproc)"
ctest --test-dir build-gpu -L gpu --output-on-failure 2>&1 | tee "$log_dir/gpu-tests.log"
