#!/usr/bin/env bash
# Benchmarks (CI runs them only as a smoke test, through CTest). Prints the
# format library's throughput, then the decode-shaped GEMV baselines with
# their ratios to the read-bandwidth probe measured in the same run, then
# the generated kernels (nibble-bench-kernels) with the same ratios. The
# issue-5 thresholds are not checked yet: only the weight-only path exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
B=${BUILD_DIR:-build}/bench
"$B/nibble-bench-formats" --benchmark_min_time=0.2
# Repeated and reduced to medians: the machine is shared and its bandwidth
# drifts, so one-shot ratios of separately timed runs are not trusted.
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$B/nibble-bench-gemv" --benchmark_min_time=0.3 --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true --benchmark_format=json \
  --benchmark_out="$json" --benchmark_out_format=json "$@" >/dev/null
# The generated kernels, in the same script run (a separate process: the
# probe above is re-read for the ratios).
kjson=$(mktemp)
trap 'rm -f "$json" "$kjson"' EXIT
"$B/nibble-bench-kernels" --benchmark_min_time=0.3 --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true --benchmark_format=json \
  --benchmark_out="$kjson" --benchmark_out_format=json "$@" >/dev/null
python3 - "$json" "$kjson" <<'PY'
import json, re, sys
runs = [b for f in sys.argv[1:] for b in json.load(open(f))["benchmarks"]
        if b.get("aggregate_name") == "median"]
def key(name):
    # BM_X/N:4096/K:4096/threads:1[/M:8]/real_time
    f = dict(re.findall(r"(\w+):(\d+)", name))
    return (int(f["N"]), int(f["K"]), int(f["threads"]))
probe = {key(b["name"]): b["bytes_per_second"] for b in runs
         if b["name"].startswith("BM_ReadProbe")}
print(f"{'benchmark (median of 5)':58} {'GB/s':>8} {'/ probe':>8}")
for b in runs:
    k = key(b["name"])
    gbs = b["bytes_per_second"] / 1e9
    ratio = b["bytes_per_second"] / probe[k] if k in probe else float("nan")
    name = b["name"].replace("/real_time", "").replace("_median", "")
    print(f"{name:58} {gbs:8.2f} {ratio:8.2f}")
PY
