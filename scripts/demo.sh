#!/usr/bin/env bash
# The main job, on the embedded default: quantize an MLP layer's weights with
# several formats and schemes, compile through the reference lowering, run it
# and print float vs quantized outputs. (It grows into compile a model -> run
# -> print its card once quant-compile/quant-run land.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
BUILD_DIR=${BUILD_DIR:-build}
EX=${1:-examples/quantize-linear.mlir}
echo "== quant-opt $EX --nibble-reference-to-llvm | mlir-runner"
"$BUILD_DIR/bin/quant-opt" "$EX" --nibble-reference-to-llvm \
  | /usr/lib/llvm-22/bin/mlir-runner -e main -entry-point-result=void \
      -shared-libs=/usr/lib/llvm-22/lib/libmlir_runner_utils.so,/usr/lib/llvm-22/lib/libmlir_c_runner_utils.so \
  | grep -v '^Unranked Memref'
