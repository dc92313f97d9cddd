#!/usr/bin/env bash
# The main job, on the embedded default: quantize an MLP layer's weights with
# several formats and schemes, compile through the reference lowering, run it
# and print float vs quantized outputs; then, when the shared models are
# present, import a real checkpoint, generate with the C++ float reference
# and check its float IR. (It grows into compile a model -> run -> print its
# card once quant-compile/quant-run land.)
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

SHARED=${NIBBLE_SHARED_DIR:-../shared}
M="$SHARED/models/stories260K/stories260K.bin"
if [ -f "$M" ]; then
  echo "== quant-import $M --generate 40   (greedy, C++ float reference)"
  "$BUILD_DIR/bin/quant-import" "$M" --generate 40
  echo "== quant-import $M --emit-ir --seq-len 16 | quant-opt   (float IR, weights by name)"
  "$BUILD_DIR/bin/quant-import" "$M" --emit-ir --seq-len 16 \
    | "$BUILD_DIR/bin/quant-opt" | grep -c 'linalg.matmul' \
    | sed 's/^/linalg.matmul ops in the float IR: /'
  B="$BUILD_DIR/demo-stories260K-int8.nbl"
  echo "== quant-compile $M --format int8 --group 0 -o $B"
  "$BUILD_DIR/bin/quant-compile" "$M" --format int8 --group 0 --context 256 \
    --prefill-chunk 8 -o "$B"
  echo "== quant-run $B generate --prompt 'Once upon a time' --max-tokens 48"
  "$BUILD_DIR/bin/quant-run" "$B" generate --prompt "Once upon a time" --max-tokens 48
  echo "== quant-run $B card"
  "$BUILD_DIR/bin/quant-run" "$B" card
else
  echo "(shared models not found at $SHARED: skipping the checkpoint import and bundle part)"
fi
