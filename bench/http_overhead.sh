#!/usr/bin/env bash
# What the HTTP server costs: the same batch through the engine alone (`adallm bench`) and through
# `adallm serve` driven by bench/http_load_bench (streaming clients, random token-id prompts, ignore_eos),
# both on a synthetic model of a published shape; prints both throughputs and their ratio.
#   bench/http_overhead.sh [BUILD_DIR]      (default build/; on a GPU machine: a CUDA build)
# Environment: MODEL (a --synthetic preset, default qwen3-8b), DEVICE (cuda), CLIENTS (64: the batch),
# INPUT_LEN (128), OUTPUT_LEN (128), ROUNDS (requests per client, default 2), PORT (8000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
model=${MODEL:-qwen3-8b} device=${DEVICE:-cuda} clients=${CLIENTS:-64}
input_len=${INPUT_LEN:-128} output_len=${OUTPUT_LEN:-128} rounds=${ROUNDS:-2} port=${PORT:-8000}
budget=2048  # tokens per engine step, the same for both
work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== engine alone: adallm bench --synthetic $model, batch $clients"
"$build/adallm" bench --synthetic "$model" --device "$device" --batch "$clients" --input-len "$input_len" \
  --output-len "$output_len" --max-num-batched-tokens "$budget" --json "$work/engine.json"
engine=$(sed -n 's/^      "tokens_per_s": \([0-9.e+-]*\),\{0,1\}$/\1/p' "$work/engine.json")

echo "== through HTTP: adallm serve --synthetic $model, $clients streaming clients, $rounds requests each"
"$build/adallm" serve --synthetic "$model" --device "$device" --port "$port" --max-num-seqs "$clients" \
  --max-model-len $((input_len + output_len)) --max-num-batched-tokens "$budget" --http-threads $((clients + 8)) \
  2> "$work/server.log" &
server=$!
until grep -q "on http://127.0.0.1:$port/v1" "$work/server.log"; do
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "the server exited" >&2; exit 1; }
  sleep 1
done
vocab=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "${TMPDIR:-/tmp}/adallm-serve-$model-$server/config.json" | head -1)
"$build/bench/http_load_bench" --url "http://127.0.0.1:$port" --clients "$clients" --requests $((clients * rounds)) \
  --prompt-len "$input_len" --max-tokens "$output_len" ${vocab:+--vocab-size "$vocab"} --json "$work/http.json"
http=$(sed -n 's/^  "generated_tokens_per_s": \([0-9.e+-]*\),\{0,1\}$/\1/p' "$work/http.json")

echo "== $model on $device, batch $clients, input $input_len, output $output_len"
awk -v e="$engine" -v h="$http" 'BEGIN {
  printf "engine alone:  %10.1f generated tokens/s\n", e
  printf "through HTTP:  %10.1f generated tokens/s\n", h
  printf "HTTP / engine: %10.3f\n", h / e }'
