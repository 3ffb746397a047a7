#!/usr/bin/env bash
# bench/http_load_bench against `adallm serve` on the CPU backend with the demo model: 4 streaming clients,
# 8 requests of 6 tokens; every request succeeds and the counts add up, in its JSON and in /metrics.
#   tests/e2e/http_load_bench.sh ADALLM HTTP_LOAD_BENCH REPO_ROOT
set -euo pipefail
adallm=$1 bench=$2 root=$3
work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
"$adallm" serve "$root/models/demo/nvfp4" --port 0 --threads 2 --max-num-seqs 4 --max-model-len 256 \
  2> "$work/server.log" &
server=$!
port=
for _ in $(seq 600); do
  port=$(sed -n 's|.* on http://127\.0\.0\.1:\([0-9]*\)/v1.*|\1|p' "$work/server.log")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "FAIL: the server exited"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/server.log"; echo "FAIL: the server did not start"; exit 1; }

"$bench" --url "http://127.0.0.1:$port" --clients 4 --requests 8 --max-tokens 6 --prompt-len 20 \
  --json "$work/result.json" | tee "$work/out.txt"
fail() { echo "FAIL: $*"; cat "$work/result.json"; exit 1; }
value() { sed -n "s/^  \"$1\": \([0-9.e+-]*\),\{0,1\}$/\1/p" "$work/result.json"; }
[ "$(value requests)" = 8 ] || fail "requests: $(value requests), expected 8"
[ "$(value failures)" = 0 ] || fail "failures: $(value failures)"
[ "$(value generated_tokens)" = 48 ] || fail "generated_tokens: $(value generated_tokens), expected 48"
grep -q '^generated tokens/s: [0-9]' "$work/out.txt" || fail "no throughput line"
# The server saw the same: 8 prompts of 20 ids, 6 tokens each.
metric() { curl -s "http://127.0.0.1:$port/metrics" | sed -n "s/^$1{[^}]*} //p"; }
[ "$(metric adallm_generation_tokens_total)" = 48 ] || fail "the server counted $(metric adallm_generation_tokens_total) tokens"
[ "$(metric adallm_prompt_tokens_total)" = 160 ] || fail "the server counted $(metric adallm_prompt_tokens_total) prompt tokens"
echo "ok: 8 requests, 48 tokens, no failure"
