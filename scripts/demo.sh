#!/usr/bin/env bash
# The main job, on the embedded default: quantize an MLP layer's weights with
# several formats and compile and run it through the reference lowering
# (float vs quantized outputs); then compile a whole model into an int8
# bundle, generate from it and print its quantization card. The model is
# stories260K from the shared models when present, otherwise the project's
# deterministic synthetic model (quant-import --synthetic).
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
else
  # No shared checkpoints (a user's machine): the project's own model,
  # generated deterministically. It is untrained: expect word salad.
  echo "(shared models not found at $SHARED: using the synthetic default model)"
  M="$BUILD_DIR/demo-synthetic/model.bin"
  echo "== quant-import $BUILD_DIR/demo-synthetic --synthetic"
  "$BUILD_DIR/bin/quant-import" "$BUILD_DIR/demo-synthetic" --synthetic
fi
B="$BUILD_DIR/demo-int8.nbl"
echo "== quant-compile $M --format int8 --group 0 -o $B"
"$BUILD_DIR/bin/quant-compile" "$M" --format int8 --group 0 --context 256 \
  --prefill-chunk 8 -o "$B"
echo "== quant-run $B generate --prompt 'Once upon a time' --max-tokens 48"
"$BUILD_DIR/bin/quant-run" "$B" generate --prompt "Once upon a time" --max-tokens 48
echo "== quant-run $B card"
"$BUILD_DIR/bin/quant-run" "$B" card
