#!/usr/bin/env bash
# Install what Nibble needs on Debian 12 (idempotent: skips what is present),
# then configure and build in build/ (Release, Ninja, ccache when present).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(cmake ninja-build g++ ccache llvm-22-dev libmlir-22-dev mlir-22-tools
      libgtest-dev libbenchmark-dev python3 python3-psutil libssl-dev
      libeigen3-dev libopenblas-dev liblapacke-dev
      nlohmann-json3-dev libsentencepiece-dev libpcre2-dev pkg-config
      clang-22 libfuzzer-22-dev lld-22 qemu-user python3-numpy python3-pytest)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -G Ninja -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir
fi
ninja -C "$BUILD_DIR" -j"${JOBS:-2}"
