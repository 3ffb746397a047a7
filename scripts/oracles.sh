#!/usr/bin/env bash
# Generates the reference outputs of the text conformance tests (tests/text/*_conformance.cpp) into OUT_DIR
# (scripts/test.sh passes build/oracles, the ADALLM_ORACLE_DIR of the tests): installs the pinned npm
# oracles of tests/oracles/ with `npm ci` when node_modules is missing or older than the lockfile, runs
# generate.mjs (Rust `tokenizers`, @huggingface/tokenizers, @huggingface/jinja), patterns.mjs (JavaScript's
# RegExp on JSON Schema patterns, for tests/structured), then render_jinja2.py (Debian's python3-jinja2, set
# up like transformers). Skips the work when OUT_DIR was generated from the same lockfile and scripts;
# ADALLM_ORACLES_FORCE=1 regenerates. Formats: tests/oracles/README.md.
#
#   scripts/oracles.sh build/oracles
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
oracles=$root/tests/oracles
out=${1:?usage: scripts/oracles.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The default python3 may be a pyenv without jinja2; Debian's python3-jinja2 lives under /usr/bin/python3.
python=${ADALLM_ORACLE_PYTHON:-/usr/bin/python3}

command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "oracles.sh: node and npm are needed (scripts/setup.sh installs them)" >&2; exit 1; }
"$python" -c 'import jinja2' 2>/dev/null ||
  { echo "oracles.sh: $python cannot import jinja2 (apt-get install python3-jinja2)" >&2; exit 1; }

lock_sum=$(sha256sum "$oracles/package-lock.json" | cut -d' ' -f1)
installed=$oracles/node_modules/.adallm-lock-sha256
if [ "$(cat "$installed" 2>/dev/null)" != "$lock_sum" ]; then
  echo "oracles.sh: npm ci in tests/oracles"
  (cd "$oracles" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$installed"
fi

stamp=$( (cat "$oracles/package-lock.json" "$oracles"/*.mjs "$oracles"/*.py; node --version;
  "$python" -c 'import jinja2; print(jinja2.__version__)') | sha256sum | cut -d' ' -f1)
if [ "${ADALLM_ORACLES_FORCE:-0}" != 1 ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "oracles.sh: $out is up to date"
  exit 0
fi
rm -f "$out/stamp"
node "$oracles/generate.mjs" "$out"
node "$oracles/patterns.mjs" "$out"
"$python" "$oracles/render_jinja2.py" "$out"
echo "$stamp" >"$out/stamp"
