#!/usr/bin/env bash
# The CPU test suite (what CI runs): every ctest test except the `gpu` label, then the safetensors header
# fuzz target for a bounded number of runs. Assumes scripts/setup.sh has built build/. The text conformance
# tests read the npm/Jinja2 oracle outputs, so scripts/oracles.sh generates them into build/oracles first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/oracles.sh build/oracles
ctest --test-dir build -LE gpu --output-on-failure -j"$(nproc)"
bash scripts/fuzz.sh "${ADALLM_FUZZ_RUNS:-300000}"
