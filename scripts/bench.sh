#!/usr/bin/env bash
# Benchmarks (never run by CI except as a smoke test). Prints the format
# library's throughput; kernel benchmarks and their bandwidth ratios arrive
# with the CPU backend and will be written to docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
"${BUILD_DIR:-build}/bench/nibble-bench-formats" --benchmark_min_time=0.2 "$@"
