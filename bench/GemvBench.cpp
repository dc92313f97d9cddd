//===- GemvBench.cpp - Decode-shaped GEMV baselines, weights cold ---------===//
//
// The yardsticks the CPU backend's kernels are measured against (issue 5),
// all in one process so their ratios are taken under the same conditions:
//
//   BM_ReadProbe   streams the same number of bytes a kernel would read
//                  (a plain summing loop with several accumulators; the
//                  compiler vectorizes it) - the read bandwidth the machine
//                  gives one or two threads right now;
//   BM_SGEMV       OpenBLAS fp32 sgemv, y = W x, W [N, K] row-major;
//   BM_SGEMM       OpenBLAS fp32 sgemm with M = 8 / 16 activations rows.
//
// Weights are cold, as in real decode: each iteration reads the next of
// several distinct matrices whose total exceeds 64 MiB (more than any L3
// here), so nothing is served from cache. Buffers are 2 MiB aligned and
// madvise(MADV_HUGEPAGE)d. Arguments: N, K, threads. Throughput is
// reported as bytes of weights read per second.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"

#include <benchmark/benchmark.h>
#include <cblas.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace {

constexpr size_t kMinRotation = size_t(160) << 20; // bytes cycled through

struct Free {
  void operator()(void *p) const { std::free(p); }
};

/// Zero-initialised 2 MiB-aligned memory, advised for huge pages unless
/// NIBBLE_BENCH_HUGE_PAGES=0 (BenchSupport.h).
std::unique_ptr<float, Free> hugeAlloc(size_t bytes) {
  return std::unique_ptr<float, Free>(
      static_cast<float *>(nibble::bench::hugeAlloc(bytes)));
}

/// `copies` distinct [n, k] fp32 matrices, together over kMinRotation bytes.
struct ColdWeights {
  ColdWeights(int64_t n, int64_t k) : n(n), k(k) {
    const size_t bytes = size_t(n * k) * 4;
    copies = std::max<size_t>(2, (kMinRotation + bytes - 1) / bytes);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    for (size_t c = 0; c < copies; ++c) {
      mats.push_back(hugeAlloc(bytes));
      float *m = mats.back().get();
      for (int64_t i = 0; i < n * k; i += 97)
        m[i] = u(rng);
    }
  }
  const float *next() { return mats[cursor++ % copies].get(); }
  int64_t n, k;
  size_t copies, cursor = 0;
  std::vector<std::unique_ptr<float, Free>> mats;
};

void BM_ReadProbe(benchmark::State &state) {
  ColdWeights w(state.range(0), state.range(1));
  state.counters["thp_MiB"] = nibble::bench::anonHugeMiB();
  const int threads = int(state.range(2));
  const size_t n = size_t(w.n * w.k);
  float sink = 0;
  for (auto _ : state) {
    const float *m = w.next();
    if (threads == 1) {
      sink += nibble::bench::sumRange(m, n);
    } else {
      std::vector<float> part(static_cast<size_t>(threads));
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          size_t lo = n * size_t(t) / size_t(threads);
          size_t hi = n * size_t(t + 1) / size_t(threads);
          part[size_t(t)] = nibble::bench::sumRange(m + lo, hi - lo);
        });
      for (auto &th : pool)
        th.join();
      for (float v : part)
        sink += v;
    }
    benchmark::DoNotOptimize(sink);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n) * 4);
}

void BM_SGEMV(benchmark::State &state) {
  ColdWeights w(state.range(0), state.range(1));
  openblas_set_num_threads(int(state.range(2)));
  std::vector<float> x(size_t(w.k), 0.5f), y(size_t(w.n));
  for (auto _ : state) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, int(w.n), int(w.k), 1.0f,
                w.next(), int(w.k), x.data(), 1, 0.0f, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * w.n * w.k * 4);
}

/// Y [M, N] = X [M, K] W^T, arguments N, K, threads, M.
void BM_SGEMM(benchmark::State &state) {
  ColdWeights w(state.range(0), state.range(1));
  openblas_set_num_threads(int(state.range(2)));
  const int64_t m = state.range(3);
  std::vector<float> x(size_t(m * w.k), 0.5f), y(size_t(m * w.n));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(w.n),
                int(w.k), 1.0f, x.data(), int(w.k), w.next(), int(w.k), 0.0f,
                y.data(), int(w.n));
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * w.n * w.k * 4);
}

void decodeShapes(benchmark::internal::Benchmark *b) {
  b->ArgNames({"N", "K", "threads"});
  for (auto [n, k] : {std::pair<int64_t, int64_t>{4096, 4096},
                      {11008, 4096},
                      {4096, 11008}})
    for (int64_t t : {1, 2})
      b->Args({n, k, t});
}

void batchShapes(benchmark::internal::Benchmark *b) {
  b->ArgNames({"N", "K", "threads", "M"});
  for (int64_t m : {8, 16})
    for (int64_t t : {1, 2})
      b->Args({4096, 4096, t, m});
}

BENCHMARK(BM_ReadProbe)->Apply(decodeShapes)->UseRealTime();
BENCHMARK(BM_SGEMV)->Apply(decodeShapes)->UseRealTime();
BENCHMARK(BM_SGEMM)->Apply(batchShapes)->UseRealTime();

} // namespace

// nibble-bench-kernels links these baselines in beside the generated
// kernels (so scripts/bench.sh can interleave them in one process) and
// brings its own main.
#ifndef NIBBLE_BENCH_NO_MAIN
BENCHMARK_MAIN();
#endif
