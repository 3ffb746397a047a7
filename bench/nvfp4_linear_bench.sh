#!/usr/bin/env bash
# One lease on the GPU machine: the GPU tests and the NVFP4 linear benchmark (GEMV and GEMM) from binaries
# built here. Build beforehand on the dev machine and carry the folder:
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a && \
#     cmake --build build-gpu --target adallm_gpu_tests nvfp4_linear_bench && \
#     mkdir -p build-gpu-carry && cp build-gpu/tests/adallm_gpu_tests build-gpu/bench/nvfp4_linear_bench build-gpu-carry/
# Then run `bash bench/nvfp4_linear_bench.sh` there with carry [build-gpu-carry]; ONLY=qwen3-8b limits the
# shapes, TOKENS=1,8 the batch sizes. Logs and JSON land in $OUT.
set -uo pipefail
: "${OUT:?OUT must name the output folder}"
B=${B:-build-gpu-carry}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
"$B/adallm_gpu_tests" --gtest_color=no 2>&1 | tail -25 | tee "$OUT/gpu-tests.log"
CO=$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null)
[ -n "$CO" ] && "$CO" --dump-resource-usage "$B/nvfp4_linear_bench" 2>&1 | grep -A1 "gemv_kernel\|gemm_kernel" | grep -o "REG:[0-9]*\|SHARED:[0-9]*\|Function [^ ]*" | paste - - - | head -8
"$B/nvfp4_linear_bench" --json "$OUT/linear.json" --only "${ONLY:-all}" --tokens "${TOKENS:-1,2,4,8,16,32,64,512,2048,8192}" 2>&1 | tee "$OUT/bench.log"
