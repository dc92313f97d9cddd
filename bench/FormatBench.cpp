//===- FormatBench.cpp - Throughput of the scalar format library ----------===//
//
// The library is the reference, not a kernel: these numbers show its cost
// for calibration-time work (quantizing weights), not decode speed.
//
//   BM_Encode/<fmt>, BM_Decode/<fmt>: 4096 elements per iteration.
//   BM_Pack/<bits>, BM_Unpack/<bits>: 64Ki codes per iteration.
// items_per_second is elements (codes) per second.
//
//===----------------------------------------------------------------------===//

#include "nibble/Formats/Format.h"
#include "nibble/Formats/Packing.h"

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

using namespace nibble::formats;

namespace {

constexpr size_t kElems = 4096;
constexpr size_t kCodes = 64 * 1024;

/// Inputs spread over the format's range (normal, sigma = max / 3), so that
/// every binade and some saturating values are hit.
std::vector<float> inputs(const Format &f) {
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, f.maxValue() / 3);
  std::vector<float> v(kElems);
  for (float &x : v)
    x = d(rng);
  return v;
}

void BM_Encode(benchmark::State &state, const char *name) {
  Format f = *Format::byName(name);
  std::vector<float> x = inputs(f);
  std::vector<uint8_t> codes(x.size());
  for (auto _ : state) {
    for (size_t i = 0; i < x.size(); ++i)
      codes[i] = uint8_t(f.encode(x[i]));
    benchmark::DoNotOptimize(codes.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(x.size()));
}

void BM_Decode(benchmark::State &state, const char *name) {
  Format f = *Format::byName(name);
  std::vector<uint8_t> codes(kElems);
  std::mt19937 rng(11);
  for (uint8_t &c : codes)
    c = uint8_t(rng() % f.numCodes());
  std::vector<float> out(codes.size());
  for (auto _ : state) {
    for (size_t i = 0; i < codes.size(); ++i)
      out[i] = f.decode(codes[i]);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(codes.size()));
}

std::vector<uint8_t> randomCodes(unsigned bits) {
  std::mt19937 rng(13);
  std::vector<uint8_t> codes(kCodes);
  for (uint8_t &c : codes)
    c = uint8_t(rng() & ((1u << bits) - 1));
  return codes;
}

void BM_Pack(benchmark::State &state) {
  unsigned bits = unsigned(state.range(0));
  std::vector<uint8_t> codes = randomCodes(bits);
  std::vector<uint8_t> packed(packedByteCount(codes.size(), bits));
  for (auto _ : state) {
    packCodes(codes.data(), codes.size(), bits, packed.data());
    benchmark::DoNotOptimize(packed.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(codes.size()));
  state.SetBytesProcessed(int64_t(state.iterations()) *
                          int64_t(packed.size()));
}

void BM_Unpack(benchmark::State &state) {
  unsigned bits = unsigned(state.range(0));
  std::vector<uint8_t> codes = randomCodes(bits);
  std::vector<uint8_t> packed(packedByteCount(codes.size(), bits));
  packCodes(codes.data(), codes.size(), bits, packed.data());
  std::vector<uint8_t> back(codes.size());
  for (auto _ : state) {
    unpackCodes(packed.data(), codes.size(), bits, back.data());
    benchmark::DoNotOptimize(back.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(codes.size()));
  state.SetBytesProcessed(int64_t(state.iterations()) *
                          int64_t(packed.size()));
}

} // namespace

BENCHMARK_CAPTURE(BM_Encode, int4, "int4");
BENCHMARK_CAPTURE(BM_Encode, e4m3fn, "e4m3fn");
BENCHMARK_CAPTURE(BM_Encode, e2m1fn, "e2m1fn");
BENCHMARK_CAPTURE(BM_Encode, nf4, "nf4");
BENCHMARK_CAPTURE(BM_Decode, int4, "int4");
BENCHMARK_CAPTURE(BM_Decode, e4m3fn, "e4m3fn");
BENCHMARK_CAPTURE(BM_Decode, e2m1fn, "e2m1fn");
BENCHMARK_CAPTURE(BM_Decode, nf4, "nf4");
BENCHMARK(BM_Pack)->DenseRange(2, 8);
BENCHMARK(BM_Unpack)->DenseRange(2, 8);

BENCHMARK_MAIN();
