#!/usr/bin/env bash
# Whole-model decode speed of bundles: for each scheme, quant-compile
# tinystories-656k (or MODEL) and run `quant-run bench` at 1 and 2 threads,
# printing bundle size, prefill and decode tokens/s (medians of 3) and peak
# RSS as a markdown table (docs/performance.md). Timings of one run are
# compared with each other only: the machine is shared.
#
#   scripts/bench-bundles.sh [MODEL]
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${NIBBLE_SHARED:-../shared}
MODEL=${1:-$SHARED/models/tinystories-656k}
if [[ ! -e $MODEL ]]; then
  echo "bench-bundles.sh: $MODEL not found" >&2; exit 1
fi
bash scripts/setup.sh >/dev/null
BIN=${BUILD_DIR:-build}/bin
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
SCHEMES=(
  "f32|--format f32"
  "int8 per channel|--format int8 --group 0"
  "int4 g32 sym|--format int4 --group 32"
  "int4 g32 asym|--format int4 --group 32 --asymmetric"
  "nf4 g32|--format nf4 --group 32"
  "W8A8 (dynamic int8 activations)|--format int8 --group 0 --act int8"
  "int8 + int8 KV cache|--format int8 --group 0 --kv-cache int8"
)
echo "| bundle | size (bytes) | threads | prefill tok/s | decode tok/s | peak RSS |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for entry in "${SCHEMES[@]}"; do
  name=${entry%%|*} args=${entry#*|}
  # shellcheck disable=SC2086
  "$BIN/quant-compile" "$MODEL" $args --quiet -o "$OUT/b.nbl" > /dev/null
  size=$(stat -c %s "$OUT/b.nbl")
  for t in 1 2; do
    j=$("$BIN/quant-run" "$OUT/b.nbl" bench --repeat 3 --threads "$t" --json)
    python3 - "$j" "$name" "$size" "$t" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
print("| %s | %s | %s | %.0f | %.0f | %.1f MiB |" % (
    sys.argv[2], f"{int(sys.argv[3]):,}", sys.argv[4],
    j["prefill_tokens_per_second"]["median"],
    j["decode_tokens_per_second"]["median"], j["peak_rss_bytes"] / 2**20))
PY
  done
done
