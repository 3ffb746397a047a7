#!/usr/bin/env bash
# Builds one libFuzzer target (clang, ASan+UBSan) in build-fuzz/ and runs it for a bounded budget:
# ADALLM_FUZZ_TARGET=safetensors (the safetensors header parser, the default) or openai_request (the
# server's request parsers). Exits non-zero on a finding; the crashing input is left in
# build-fuzz/artifacts/. The committed seeds in fuzz/corpus/TARGET/ are read, never written: new inputs
# go to build-fuzz/corpus/TARGET/.
#
#   scripts/fuzz.sh                      # -runs=200000 -max_total_time=120
#   scripts/fuzz.sh 1000000 600          # RUNS [SECONDS]
#   scripts/fuzz.sh -runs=1000000 -jobs=2 # libFuzzer flags, passed through as given
#   ADALLM_FUZZ_TARGET=openai_request scripts/fuzz.sh -max_total_time=30
#
# Needs clang with libFuzzer (Debian 12: apt-get install clang-14 libclang-rt-14-dev); CC/CXX override.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ADALLM_FUZZ_BUILD:-$root/build-fuzz}
corpus=${ADALLM_FUZZ_TARGET:-safetensors}
case "$corpus" in
  safetensors) target=safetensors_header_fuzz ;;
  openai_request) target=openai_request_fuzz ;;
  *) echo "fuzz.sh: unknown ADALLM_FUZZ_TARGET '$corpus'; expected safetensors or openai_request" >&2; exit 2 ;;
esac

pick() {  # first compiler found on PATH
  for c in "$@"; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi
  done
  return 1
}
CC=${CC:-$(pick clang clang-14 || true)}
CXX=${CXX:-$(pick clang++ clang++-14 || true)}
if [[ -z "$CC" || -z "$CXX" ]]; then
  echo "fuzz.sh: clang not found; on Debian 12: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 2
fi

flags=()
if [[ $# -eq 0 ]]; then
  flags=(-runs=200000 -max_total_time=120)
elif [[ "$1" =~ ^[0-9]+$ ]]; then
  flags=(-runs="$1" -max_total_time="${2:-120}")
  shift $(( $# >= 2 ? 2 : 1 ))
  flags+=("$@")
else
  flags=("$@")
fi

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  CC="$CC" CXX="$CXX" cmake -S "$root" -B "$build" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DADALLM_FUZZ=ON -DADALLM_CUDA=OFF -DADALLM_TESTS=OFF
fi
cmake --build "$build" --target "$target" -j "${FUZZ_BUILD_JOBS:-2}"

seeds="$root/fuzz/corpus/$corpus"
work="$build/corpus/$corpus"
artifacts="$build/artifacts/"
mkdir -p "$work" "$artifacts"

echo "fuzz.sh: $build/fuzz/$target ${flags[*]}" >&2
# libFuzzer exits non-zero on a crash, leak, timeout or sanitizer report; set -e passes that on.
"$build/fuzz/$target" -artifact_prefix="$artifacts" -print_final_stats=1 "${flags[@]}" "$work" "$seeds"
