#!/usr/bin/env bash
# Issue 9 on an NVIDIA GPU in one command: CUDA bundles of both ../shared
# models (f16, int8 per row, int4) against the CPU float bundle of the same
# model (quant-run eval: top-1 agreement and KL over 512 positions of
# tinystories_dev.txt from token 4096, after the calibration-free
# formats, so no calibration slice is involved), then decode speed
# (quant-run bench) of each CUDA bundle. Prints what it measured; exit 2
# without a CUDA driver (nothing measured).
#
#   scripts/gpu-decode.sh [cuda-sm90|cuda-sm80|cuda-sm89]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-cuda-sm90}
SHARED=${NIBBLE_SHARED_DIR:-../shared}
if ! python3 -c 'import ctypes; ctypes.CDLL("libcuda.so.1")' 2>/dev/null; then
  echo "gpu-decode.sh: no CUDA driver (libcuda.so.1) here; nothing measured" >&2
  exit 2
fi
bash scripts/setup.sh >/dev/null
B=${BUILD_DIR:-build}/bin
TEXT=$SHARED/data/tinystories_dev.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for model in stories260K/stories260K.bin tinystories-656k; do
  name=${model%%/*}
  "$B/quant-compile" "$SHARED/models/$model" --format f32 -o "$work/$name-cpu.nbl" --quiet >/dev/null
  # stories260K's widths (64, 172) take per-row scales; 656k's take g128.
  g4=$([ "$name" = stories260K ] && echo 0 || echo 128)
  for spec in f32:0 int8:0 int4:$g4; do
    fmt=${spec%%:*} group=${spec##*:}
    bundle=$work/$name-$fmt.nbl
    "$B/quant-compile" "$SHARED/models/$model" --format "$fmt" --method rtn \
      --group "$group" --target "$TARGET" -o "$bundle" --quiet >/dev/null
    echo "== $name $fmt (group $group) on $TARGET vs the CPU float bundle"
    "$B/quant-run" "$bundle" eval --reference "$work/$name-cpu.nbl" \
      --text "$TEXT" --first-token 4096 --max-tokens 512
    "$B/quant-run" "$bundle" bench --prompt-tokens 64 --decode-tokens 256 --repeat 3
  done
done
