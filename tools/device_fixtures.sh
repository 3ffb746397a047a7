#!/usr/bin/env bash
# One lease on the GPU machine: regenerate the model fixtures with transformers and run the prebuilt GPU
# tests. Results land in $OUT (fixtures.tgz, logs). Build build-gpu beforehand on the dev machine:
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build-gpu --target adallm_gpu_tests
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?OUT must name the output folder}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
export PYTHONUNBUFFERED=1
rm -rf /tmp/fixtures
python3 tools/make_fixtures.py /tmp/fixtures 2>&1 | tee "$OUT/fixtures.log"
fixtures_rc=${PIPESTATUS[0]}
python3 tools/make_quant_reference.py /tmp/fixtures/quant_reference.safetensors 2>&1 | tee -a "$OUT/fixtures.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || fixtures_rc=1
[ "$fixtures_rc" -eq 0 ] && tar -C /tmp -czf "$OUT/fixtures.tgz" fixtures
OUT="$OUT" bash scripts/gpu.sh --prebuilt
gpu_rc=$?
echo "fixtures rc=$fixtures_rc gpu tests rc=$gpu_rc"
exit $((fixtures_rc || gpu_rc))
