#!/usr/bin/env bash
# Issue 9 on an NVIDIA GPU in one command: CUDA bundles of both ../shared
# models (f16, int8 per row, int4) against the CPU float bundle of the same
# model (quant-run eval: top-1 agreement and KL over 512 positions of
# tinystories_dev.txt from token 4096, after the calibration-free
# formats, so no calibration slice is involved), then decode speed
# (quant-run bench) of each CUDA bundle. Then decode at LLM shapes: the
# synthetic model with Llama-2-7B's widths (dim 4096, hidden 11008, 32
# heads, vocab 32000; random weights, so only speed means anything) at 2
# and 4 layers, f16 / int8 per row / int4 g128: time per token against the
# bound of the bytes a token reads over the same run's read-bandwidth
# probe (nibble-gpu-bench --probe-only), and per-layer time from the
# difference of 4 and 2 layers. Prints what it measured; exit 2 without a
# CUDA driver (nothing measured).
#
# Each shared-model bundle is also compared with the CPU bundle of the same
# quantization, which separates the kernels' error from the format's loss.
#
# `emulated` runs the shared part on the PTX emulator instead of a GPU
# (build/lib/cuda-emulator/libcuda.so.1: the same runtime, launches and
# PTX, interpreted on the CPU; 38-52 s per eval on the 2-core VM): numerics only, no
# speed.
#
#   scripts/gpu-decode.sh [cuda-sm90|cuda-sm80|cuda-sm89] [all|shared|llm|emulated]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-cuda-sm90}
WHAT=${2:-all}
case $WHAT in all|shared|llm|emulated) ;; *)
  echo "gpu-decode.sh: second argument \"$WHAT\": expected all, shared, llm or emulated" >&2
  exit 1 ;;
esac
SHARED=${NIBBLE_SHARED_DIR:-../shared}
if [ "$WHAT" = emulated ]; then
  bash scripts/setup.sh >/dev/null
  export LD_LIBRARY_PATH="$PWD/${BUILD_DIR:-build}/lib/cuda-emulator${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export NIBBLE_CUDA_EMU_CC=$(echo "$TARGET" | sed 's/^cuda-sm\([0-9]*\).*/\1/')
  echo "(on the PTX emulator, emulating sm_$NIBBLE_CUDA_EMU_CC: numerics only)"
fi
if ! python3 -c 'import ctypes; ctypes.CDLL("libcuda.so.1")' 2>/dev/null; then
  echo "gpu-decode.sh: no CUDA driver (libcuda.so.1) here; nothing measured" >&2
  exit 2
fi
[ "$WHAT" = emulated ] || bash scripts/setup.sh >/dev/null  # (built above)
B=${BUILD_DIR:-build}/bin
TEXT=$SHARED/data/tinystories_dev.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ "$WHAT" = llm ] || for model in stories260K/stories260K.bin tinystories-656k; do
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
    if [ "$fmt" != f32 ]; then
      "$B/quant-compile" "$SHARED/models/$model" --format "$fmt" --method rtn \
        --group "$group" -o "$work/$name-$fmt-cpu.nbl" --quiet >/dev/null
      echo "== $name $fmt (group $group) on $TARGET vs the CPU $fmt bundle"
      "$B/quant-run" "$bundle" eval --reference "$work/$name-$fmt-cpu.nbl" \
        --text "$TEXT" --first-token 4096 --max-tokens 512
    fi
    [ "$WHAT" = emulated ] ||
      "$B/quant-run" "$bundle" bench --prompt-tokens 64 --decode-tokens 256 --repeat 3
  done
done
[ "$WHAT" = shared ] || [ "$WHAT" = emulated ] && exit 0

echo "== decode at Llama-2-7B widths on $TARGET (synthetic, random weights)"
probe=$("${BUILD_DIR:-build}/bench/nibble-gpu-bench" --probe-only |
  sed -n 's/^read-bandwidth probe: \([0-9.]*\) GB\/s.*/\1/p')
echo "read-bandwidth probe: $probe GB/s"
for layers in 2 4; do
  "$B/quant-import" "$work/l$layers" --synthetic \
    --synthetic-shape "llama2-7b,layers=$layers,context=1024" >/dev/null
  for spec in f32:0 int8:0 int4:128; do
    fmt=${spec%%:*} group=${spec##*:}
    bundle=$work/l$layers-$fmt.nbl
    "$B/quant-compile" "$work/l$layers/model.bin" --format "$fmt" --method rtn \
      --group "$group" --target "$TARGET" -o "$bundle" --quiet >/dev/null
    "$B/quant-run" "$bundle" bench --prompt-tokens 16 --decode-tokens 128 \
      --repeat 3 --json > "$work/l$layers-$fmt.json"
    rm -f "$bundle"
  done
  rm -rf "$work/l$layers"
done
python3 - "$work" "$probe" <<'PY'
import json, sys
work, probe = sys.argv[1], float(sys.argv[2])
print("| weights | layers | ms/token | MB read/token | bound ms (MB / probe) | of bound |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
per = {}
for fmt, name in [("f32", "f16"), ("int8", "int8 per row"), ("int4", "int4 g128")]:
    for layers in (2, 4):
        r = json.load(open(f"{work}/l{layers}-{fmt}.json"))
        ms = 1e3 / r["decode_tokens_per_second"]["median"]
        mb = (r["weight_bytes_per_token"] + r["kv_cache_bytes_per_token"]) / 1e6
        bound = mb / probe  # MB / (GB/s) = ms
        per[(fmt, layers)] = (ms, mb)
        print(f"| {name} | {layers} | {ms:.3f} | {mb:.1f} | {bound:.3f} | {bound / ms:.2f} |")
print()
print("| weights | per layer ms (4 - 2 layers) / 2 | MB | bound ms | of bound |")
print("| --- | ---: | ---: | ---: | ---: |")
for fmt, name in [("f32", "f16"), ("int8", "int8 per row"), ("int4", "int4 g128")]:
    ms = (per[(fmt, 4)][0] - per[(fmt, 2)][0]) / 2
    mb = (per[(fmt, 4)][1] - per[(fmt, 2)][1]) / 2
    bound = mb / probe
    print(f"| {name} | {ms:.3f} | {mb:.1f} | {bound:.3f} | {bound / ms:.2f} |")
PY
