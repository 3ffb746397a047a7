#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (with the CUDA toolkit at /usr/local/cuda) to a built tree:
# installs the Debian packages AdaLLM builds and tests with, then configures and builds build/.
# Extra CMake arguments: ADALLM_CMAKE_ARGS, e.g. ADALLM_CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=89-real".
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev  # the server: Debian's compiled cpp-httplib and what its .pc requires
  libcurl4-openssl-dev  # Hugging Face hub downloads
  python3-jinja2  # chat-template oracle (with the npm packages of tests/oracles)
  clang libclang-rt-dev  # libFuzzer for the safetensors header fuzz target
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run the test oracles; machines often carry a Node.js of their own (nodesource's bundles
# npm), so Debian's packages are installed only when there is none.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# shellcheck disable=SC2086
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${ADALLM_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)"
echo "setup: built build/adallm"
