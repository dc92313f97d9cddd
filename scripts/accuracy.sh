#!/usr/bin/env bash
# Whole-model accuracy of quantized bundles: for each shared model and each
# scheme, quant-compile a bundle (calibrated on a leading slice of the dev
# text), then score perplexity with quant-run on a later, disjoint slice.
# Each quantized bundle is also compared with the f32 bundle on the same
# slice (quant-run eval: KL divergence of the next-token distributions,
# top-1 agreement) and scored on the model's next-word workload
# (examples/workloads, made by scripts/make-workload.py from text far past
# both slices). Prints one markdown table per model (docs/accuracy.md).
#
#   scripts/accuracy.sh [--eval-tokens N] [--only REGEX]
#
# Calibration: tokens [0, 2048) of ../shared/data/tinystories_dev.txt
# (16 windows of 128, BOS first) — used only by methods that need
# statistics (GPTQ, AWQ, activation transforms) and by recipes.
# Evaluation: tokens [8192, 8192 + N) (N = 8192 by default, at most 16384),
# windows of 256 with BOS prepended, every token scored.
set -euo pipefail
cd "$(dirname "$0")/.."
EVAL_TOKENS=8192
ONLY=.
while [[ $# -gt 0 ]]; do
  case "$1" in
    --eval-tokens) EVAL_TOKENS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "accuracy.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if (( EVAL_TOKENS > 16384 )); then
  echo "accuracy.sh: --eval-tokens is at most 16384" >&2; exit 2
fi
SHARED=${NIBBLE_SHARED:-../shared}
TEXT=$SHARED/data/tinystories_dev.txt
if [[ ! -f $TEXT ]]; then
  echo "accuracy.sh: $TEXT not found (the shared models and data are needed)" >&2
  exit 1
fi
bash scripts/setup.sh >/dev/null
BIN=${BUILD_DIR:-build}/bin
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
CALIB=(--calib "$TEXT" --calib-first-token 0 --calib-sequences 16 --calib-seq-len 128)

# --budget: per-layer choice among these (RTN), sensitivity measured on the
# calibration slice, checked on the next 2048 tokens [2048, 4096) (still
# disjoint from the evaluation slice).
BUDGET_CANDIDATES="--candidates int8/g0,int4/g0,int4/g128,int4/g32,nf4/g32"

# name | quant-compile arguments
SCHEMES=(
  "f32|--format f32"
  "int8 per channel, RTN|--format int8 --group 0"
  "int4 g32 sym, RTN|--format int4 --group 32"
  "int4 g128 sym, RTN|--format int4 --group 128"
  "int4 g32 asym, RTN|--format int4 --group 32 --asymmetric"
  "int4 g32 sym, GPTQ|--format int4 --group 32 --method gptq"
  "int4 g32 sym, AWQ|--format int4 --group 32 --method awq"
  "int4 g32 sym, imatrix|--format int4 --group 32 --method imatrix"
  "int3 g32 sym, RTN|--format int3 --group 32"
  "int3 g32 sym, GPTQ|--format int3 --group 32 --method gptq"
  "int3 g32 sym, AWQ|--format int3 --group 32 --method awq"
  "fp8 e4m3 per channel|--format e4m3fn --group 0"
  "fp8 e5m2 per channel|--format e5m2 --group 0"
  "fp4 e2m1 g32, f32 scales|--format e2m1fn --group 32"
  "MXFP4 (e2m1 g32, E8M0 scales)|--format e2m1fn --group 32 --scale e8m0"
  "NVFP4-style (e2m1 g16, e4m3 scales + f32 per tensor)|--format e2m1fn --group 16 --scale e4m3"
  "nf4 g32|--format nf4 --group 32"
  "W8A8 (int8 weights, dynamic int8 activations)|--format int8 --group 0 --act int8"
  "W8A8 + SmoothQuant 0.5|--format int8 --group 0 --act int8 --smoothquant 0.5"
  "W8A8 + outlier split (max abs x > 6 kept f16)|--format int8 --group 0 --act int8 --outlier-threshold 6"
  "f32 weights, int8 KV cache|--format f32 --kv-cache int8"
  "f32 weights, fp8 e4m3 KV cache|--format f32 --kv-cache e4m3fn"
  "int4 g32 GPTQ + int8 KV cache|--format int4 --group 32 --method gptq --kv-cache int8"
  "budget bpw=5 (RTN mix)|--budget bpw=5 $BUDGET_CANDIDATES"
  "budget bpw=4.25 (RTN mix)|--budget bpw=4.25 $BUDGET_CANDIDATES"
  "budget kl=0.02 (RTN mix)|--budget kl=0.02 $BUDGET_CANDIDATES"
)

run_model() {
  local label=$1 model=$2 workload=$3; shift 3
  local extra=("$@")
  echo
  echo "### $label"
  echo
  echo "Workload: \`${workload#./}\` (60 next-word prompts, \`contains\`, greedy)."
  echo
  echo "| scheme | perplexity | vs f32 | KL (nats/token) | top-1 agreement | workload pass | bits/weight (linears) | bundle bytes | weights bytes |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  local base=""
  for entry in "${SCHEMES[@]}"; do
    local name=${entry%%|*} args=${entry#*|}
    if [[ $name != f32 ]] && ! [[ $name =~ $ONLY ]]; then continue; fi
    local bundle=$OUT/b.nbl
    [[ $name == f32 ]] && bundle=$OUT/f32.nbl
    # A budget writes its own per-layer recipe: no model-specific one.
    local rowextra=("${extra[@]}")
    [[ $args == *--budget* ]] && rowextra=()
    # shellcheck disable=SC2086
    if ! "$BIN/quant-compile" "$model" $args "${CALIB[@]}" "${rowextra[@]}" \
        --quiet -o "$bundle" > "$OUT/compile.log" 2>&1; then
      # The first error names the cause (later lines summarise).
      echo "| $name | compile failed: $(grep -m1 'error:' "$OUT/compile.log" | sed 's/^[^ ]*: error: //') | | | | | | | |"
      continue
    fi
    local json
    json=$("$BIN/quant-run" "$bundle" perplexity "$TEXT" --first-token 8192 \
      --max-tokens "$EVAL_TOKENS" --json)
    local ppl
    ppl=$(python3 -c 'import json,sys; print("%.4f" % json.loads(sys.argv[1])["perplexity"])' "$json")
    local weights bpw
    weights=$("$BIN/quant-run" "$bundle" card --json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["weights"]["bytes"])')
    # Bits per weight over the linears as the bundle stores them (codes in
    # the kernels' containers, scales, zero points;
    # not the f16 outlier channels), from the card's tensor list.
    bpw=$("$BIN/quant-run" "$bundle" card --json | python3 -c '
import json, re, sys
c = json.load(sys.stdin)["card"]["weights"]["tensors"]
bits = n = 0
for t in c:
    m = re.search(r"<(\d+)x(\d+)", t["type"])
    if not m:
        print("32"); sys.exit()
    k = int(m.group(1)) * int(m.group(2))
    bits += t["stored_bits_per_weight"] * k; n += k
print("%.3f" % (bits / n))')
    local size
    size=$(stat -c %s "$bundle")
    local rel="—"
    if [[ -z $base ]]; then base=$ppl; else
      rel=$(python3 -c "print('%+.2f%%' % (100 * ($ppl / $base - 1)))")
    fi
    # Against the f32 bundle on the same slice, and the workload.
    local ev
    ev=$("$BIN/quant-run" "$bundle" eval --reference "$OUT/f32.nbl" \
      --text "$TEXT" --first-token 8192 --max-tokens "$EVAL_TOKENS" \
      --workload "$workload" --json)
    local cols
    cols=$(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); t=e["text"]; w=e["workload"]
print("%.5f | %.2f%% | %.1f%%" % (t["kl_mean"], 100*t["top1_agreement"], 100*w["pass_rate"]))' "$ev")
    echo "| $name | $ppl | $rel | $cols | $bpw | $size | $weights |"
  done
}

echo "Perplexity on tokens [8192, $((8192 + EVAL_TOKENS))) of tinystories_dev.txt;"
echo "calibration on tokens [0, 2048) (16 x 128)."
run_model "tinystories-656k" "$SHARED/models/tinystories-656k" \
  examples/workloads/tinystories-656k-next-word.jsonl
# stories260K's down_proj has 172 input columns: per channel there (recipe).
printf '{"rules": [{"match": "mlp\\\\.down_proj", "group": 0}]}\n' > "$OUT/recipe.json"
run_model "stories260K (down_proj per channel)" \
  "$SHARED/models/stories260K/stories260K.bin" \
  examples/workloads/stories260k-next-word.jsonl --recipe "$OUT/recipe.json"
