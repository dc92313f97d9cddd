#!/usr/bin/env bash
# The whole test suite: set up (installs, configures, builds), then the lit
# tests, then every CTest test (GoogleTest units, docs check, benchmark smoke
# run), then a short libFuzzer run of every loader. Each phase is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
phase() { echo "== $1"; PHASE_START=$(date +%s); }
done_phase() { echo "== $1 took $(( $(date +%s) - PHASE_START )) s"; }

phase "setup + build"; bash scripts/setup.sh; done_phase "setup + build"
phase "lit"
/usr/lib/llvm-22/bin/lit -sv --timeout=60 "$BUILD_DIR/test"
done_phase "lit"
phase "ctest"
ctest --test-dir "$BUILD_DIR" -j2 --timeout 60 --output-on-failure
done_phase "ctest"
phase "fuzz"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash scripts/fuzz.sh
done_phase "fuzz"
