#!/usr/bin/env bash
# The CPU test suite (what CI runs): every ctest test except the `gpu` label (the request-parser fuzz
# target for 30 s among them), the `soak` label on its own, then the safetensors header fuzz target for a
# bounded number of runs. Assumes scripts/setup.sh has built build/. The text conformance
# tests read the npm/Jinja2 oracle outputs, so scripts/oracles.sh generates them into build/oracles first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/oracles.sh build/oracles
ctest --test-dir build -LE 'gpu|soak' --output-on-failure -j"$(nproc)"
# The server soak alone (about 3 minutes): its throughput and memory are not shared with other tests.
ctest --test-dir build -L soak --output-on-failure
bash scripts/fuzz.sh "${ADALLM_FUZZ_RUNS:-300000}"
