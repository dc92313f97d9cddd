#!/usr/bin/env bash
# Fuzz the checkpoint loaders, tokenizers and the bundle reader: builds
# test/fuzz with clang-22, libFuzzer, ASan and UBSan into build-fuzz/, then
# runs every target for FUZZ_SECONDS (default 10, at most 60) from its seed
# corpus in test/fuzz/corpus/<target>/. A crash, leak, sanitizer report or an
# invariant abort fails the run and leaves the input in build-fuzz/.
# Skips (exit 0, with the reason) when clang-22 or libFuzzer is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${FUZZ_CXX:-clang++-22}
CC=${FUZZ_CC:-clang-22}
SECONDS_EACH=${FUZZ_SECONDS:-10}
[ "$SECONDS_EACH" -gt 60 ] && SECONDS_EACH=60
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz: SKIPPED: $CXX not found (Debian: apt-get install clang-22 libfuzzer-22-dev)"
  exit 0
fi
if ! ls /usr/lib/llvm-22/lib/clang/*/lib/*/libclang_rt.fuzzer*.a >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: libFuzzer runtime not found (Debian: apt-get install libfuzzer-22-dev)"
  exit 0
fi
LAUNCHER=()
command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
if [ ! -f build-fuzz/build.ninja ]; then
  cmake -G Ninja -S test/fuzz -B build-fuzz -DCMAKE_CXX_COMPILER="$CXX" \
    -DCMAKE_C_COMPILER="$CC" "${LAUNCHER[@]}" >/dev/null
fi
ninja -C build-fuzz -j"${JOBS:-2}"

status=0
for t in safetensors hf_config llama2c llama2c_tokenizer tokenizer_json bundle; do
  work=$(mktemp -d)
  cp test/fuzz/corpus/$t/* "$work"/ 2>/dev/null || true
  dict=()
  [ -f test/fuzz/$t.dict ] && dict=(-dict=test/fuzz/$t.dict)
  echo "== fuzz $t for ${SECONDS_EACH}s (seeds: $(ls test/fuzz/corpus/$t | wc -l))"
  if ! build-fuzz/${t}_fuzzer -max_total_time="$SECONDS_EACH" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/$t-" "${dict[@]}" "$work" \
      > "build-fuzz/$t.log" 2>&1; then
    echo "fuzz: $t FAILED; log: build-fuzz/$t.log"
    tail -40 "build-fuzz/$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "build-fuzz/$t.log" | tail -2
  fi
  rm -rf "$work"
done
exit $status
