#!/usr/bin/env bash
# The issue-8 GPU benchmark in one command. First the numerics of every
# kernel variant (int4 / int8 / fp8 e4m3 / e5m2 weights, f16 / bf16
# activations, M = 1, 5, 32; fp8 also through the sm_80 software decode)
# against the CPU reference (`nibble-gpu-bench --check`); then generated
# W4A16 / W8A16 GEMV
# (nibble-generate-gpu-kernels -> PTX, loaded through the CUDA Driver API)
# against cuBLAS fp16 GEMV and a read-bandwidth probe, all in the same run,
# weights rotated over > 256 MiB so they stream from HBM. Prints the table
# (docs/performance.md) and which targets this run met:
#   W4A16 >= 3x cuBLAS fp16 and >= 75% of the probe; W8A16 >= 1.8x cuBLAS,
# at batch 1 from 8192 x 8192 up. It reports; it does not fail on a missed
# target. Needs an NVIDIA GPU and driver (exit 2 with the reason otherwise).
#
#   scripts/bench-gpu.sh [--shapes 8192x8192,16384x16384] [--iters 50]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
B=${BUILD_DIR:-build}/bench
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
"$B/nibble-gpu-bench" --check
rc=$?
if (( rc == 2 )); then
  echo "bench-gpu.sh: no GPU here; nothing measured" >&2
  exit 2
fi
check_rc=$rc
echo
"$B/nibble-gpu-bench" "$@" | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if (( rc == 2 )); then
  echo "bench-gpu.sh: no GPU here; nothing measured" >&2
  exit 2
fi
python3 - "$out" <<'PY'
import re, sys
rows = [l.split("|")[1:-1] for l in open(sys.argv[1])
        if re.match(r"\| \d+x\d+ \|", l)]
print("\nTargets (batch 1, this run):")
for r in rows:
    shape, path = r[0].strip(), r[1].strip()
    if path.startswith("cuBLAS"):
        continue
    n, k = map(int, shape.split("x"))
    if n < 8192 or k < 8192:
        continue
    of_probe = float(r[4]); vs = r[5].strip()
    if path.startswith("W4A16"):
        print(f"  {shape} W4A16: {vs}x cuBLAS (>= 3: {'met' if vs and float(vs) >= 3 else 'missed'}), "
              f"{of_probe:.2f} of probe (>= 0.75: {'met' if of_probe >= 0.75 else 'missed'})")
    else:
        print(f"  {shape} {path}: {vs}x cuBLAS (>= 1.8: {'met' if vs and float(vs) >= 1.8 else 'missed'})")
PY
if (( check_rc != 0 )); then
  echo "bench-gpu.sh: a kernel variant differs from the CPU reference (see the check above)" >&2
  exit "$check_rc"
fi
exit "$rc"
