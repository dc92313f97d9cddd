//===- FormatBench.cpp - Throughput of the scalar format library ----------===//
//
// The library is the reference, not a kernel: these numbers show its cost
// for calibration-time work (quantizing weights), not decode speed.
//
//===----------------------------------------------------------------------===//

#include "nibble/Formats/Format.h"
#include "nibble/Formats/Packing.h"

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

using namespace nibble::formats;

static std::vector<float> data(size_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0, 2);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

static void BM_Encode(benchmark::State &state, const char *name) {
  Format f = *Format::byName(name);
  std::vector<float> x = data(4096);
  std::vector<uint8_t> codes(x.size());
  for (auto _ : state) {
    for (size_t i = 0; i < x.size(); ++i)
      codes[i] = uint8_t(f.encode(x[i]));
    benchmark::DoNotOptimize(codes.data());
  }
  state.SetItemsProcessed(state.iterations() * x.size());
}

static void BM_Decode(benchmark::State &state, const char *name) {
  Format f = *Format::byName(name);
  std::vector<uint8_t> codes(4096);
  for (size_t i = 0; i < codes.size(); ++i)
    codes[i] = uint8_t(i % f.numCodes());
  std::vector<float> out(codes.size());
  for (auto _ : state) {
    for (size_t i = 0; i < codes.size(); ++i)
      out[i] = f.decode(codes[i]);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * codes.size());
}

static void BM_PackUnpack(benchmark::State &state) {
  unsigned bits = unsigned(state.range(0));
  std::vector<uint8_t> codes(65536), back(codes.size());
  for (size_t i = 0; i < codes.size(); ++i)
    codes[i] = uint8_t(i * 7) & ((1u << bits) - 1);
  std::vector<uint8_t> packed(packedByteCount(codes.size(), bits));
  for (auto _ : state) {
    packCodes(codes.data(), codes.size(), bits, packed.data());
    unpackCodes(packed.data(), codes.size(), bits, back.data());
    benchmark::DoNotOptimize(back.data());
  }
  state.SetItemsProcessed(state.iterations() * codes.size());
}

BENCHMARK_CAPTURE(BM_Encode, int4, "int4");
BENCHMARK_CAPTURE(BM_Encode, e4m3fn, "e4m3fn");
BENCHMARK_CAPTURE(BM_Encode, e2m1fn, "e2m1fn");
BENCHMARK_CAPTURE(BM_Encode, nf4, "nf4");
BENCHMARK_CAPTURE(BM_Decode, int4, "int4");
BENCHMARK_CAPTURE(BM_Decode, e4m3fn, "e4m3fn");
BENCHMARK_CAPTURE(BM_Decode, e2m1fn, "e2m1fn");
BENCHMARK_CAPTURE(BM_Decode, nf4, "nf4");
BENCHMARK(BM_PackUnpack)->DenseRange(2, 8);

BENCHMARK_MAIN();
