//===- QuantBench.cpp - Cost of the weight quantization algorithms --------===//
//
//   BM_GPTQ_4096, BM_RTN_4096: one 4096 x 4096 layer (int4, groups of 128,
//     symmetric), the GPTQ Hessian precomputed outside the timed loop from
//     8192 correlated activation rows. The "elements" rate counts weights,
//     so the two are directly comparable; the "GFLOP" rate counts GPTQ's
//     nominal flops (lazy update GEMM rows * k^2, plus 2k^3/3 for the
//     factorization of H^-1).
//   BM_HessianAccumulate: HessianAccumulator::add of 512 rows of k = 4096;
//   BM_OpenBLAS_ssyrk_reference: plain cblas_ssyrk on the same rows. Both
//     report the SYRK's GFLOP rate (n * k * (k + 1) flops), so the overhead
//     of the double accumulation is their ratio.
//
//===----------------------------------------------------------------------===//

#include "nibble/Quant/Weights.h"

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace nibble::formats;
using namespace nibble::quant;

namespace {

constexpr int64_t kLayer = 4096; // rows = cols
constexpr int64_t kCalibrationRows = 8192;
constexpr int64_t kBatch = 512;

/// Activation rows with channels correlated along the channel axis (AR(1),
/// coefficient 0.9), varying channel scales and a few x20 outlier channels.
std::vector<float> activations(int64_t n, int64_t k, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  const float a = 0.9f, b = std::sqrt(1 - a * a);
  std::vector<float> x(size_t(n * k));
  for (int64_t t = 0; t < n; ++t) {
    float prev = d(rng);
    for (int64_t j = 0; j < k; ++j) {
      prev = a * prev + b * d(rng);
      float scale = 0.5f + float(j % 7) / 3 + (j % 509 == 7 ? 20.0f : 0.0f);
      x[t * k + j] = scale * prev;
    }
  }
  return x;
}

struct Layer {
  std::vector<float> w;
  std::vector<double> hessian;
};

const Layer &layer() {
  static const Layer l = [] {
    Layer l;
    std::mt19937 rng(1);
    std::normal_distribution<float> d(0.0f, 0.02f);
    l.w.resize(size_t(kLayer * kLayer));
    for (float &v : l.w)
      v = d(rng);
    HessianAccumulator acc(kLayer);
    std::vector<float> x = activations(kCalibrationRows, kLayer, 2);
    acc.add(x.data(), kCalibrationRows);
    l.hessian = acc.hessian();
    return l;
  }();
  return l;
}

const WeightScheme kScheme{Format::intN(4, true), 128, true};

void BM_GPTQ_4096(benchmark::State &state) {
  const Layer &l = layer();
  std::string error;
  for (auto _ : state) {
    auto r = quantizeGPTQ({l.w.data(), kLayer, kLayer}, l.hessian, kScheme,
                          GPTQOptions{}, error);
    if (!r) {
      state.SkipWithError(error.c_str());
      break;
    }
    benchmark::DoNotOptimize(r->weight.codes.data());
  }
  double k = double(kLayer);
  state.counters["GFLOP"] = benchmark::Counter(
      double(state.iterations()) * (k * k * k + 2 * k * k * k / 3) * 1e-9,
      benchmark::Counter::kIsRate);
  state.counters["elements"] = benchmark::Counter(
      double(state.iterations()) * k * k, benchmark::Counter::kIsRate);
}

void BM_RTN_4096(benchmark::State &state) {
  const Layer &l = layer();
  std::string error;
  for (auto _ : state) {
    auto q = quantizeRTN({l.w.data(), kLayer, kLayer}, kScheme, {}, error);
    if (!q) {
      state.SkipWithError(error.c_str());
      break;
    }
    benchmark::DoNotOptimize(q->codes.data());
  }
  double k = double(kLayer);
  state.counters["elements"] = benchmark::Counter(
      double(state.iterations()) * k * k, benchmark::Counter::kIsRate);
}

double syrkGflop() {
  return double(kBatch) * double(kLayer) * double(kLayer + 1) * 1e-9;
}

void BM_HessianAccumulate(benchmark::State &state) {
  std::vector<float> x = activations(kBatch, kLayer, 3);
  HessianAccumulator acc(kLayer);
  for (auto _ : state) {
    acc.add(x.data(), kBatch);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(
      double(state.iterations()) * syrkGflop(), benchmark::Counter::kIsRate);
}

void BM_OpenBLAS_ssyrk_reference(benchmark::State &state) {
  std::vector<float> x = activations(kBatch, kLayer, 3);
  std::vector<float> c(size_t(kLayer * kLayer));
  for (auto _ : state) {
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(kLayer),
                int(kBatch), 1.0f, x.data(), int(kLayer), 1.0f, c.data(),
                int(kLayer));
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP"] = benchmark::Counter(
      double(state.iterations()) * syrkGflop(), benchmark::Counter::kIsRate);
}

} // namespace

BENCHMARK(BM_GPTQ_4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_RTN_4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_HessianAccumulate)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_OpenBLAS_ssyrk_reference)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
