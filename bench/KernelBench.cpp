//===- KernelBench.cpp - Generated CPU kernels, weights cold --------------===//
//
// Times the kernels nibble-generate-kernels emits for this machine (the
// code the compiler ships, JIT-compiled here for `native`) on decode
// shapes, with weights rotated over more than 64 MiB of distinct buffers
// so every call streams them from DRAM, at 1 and 2 threads (output rows
// split in halves). Throughput counts the bytes a kernel must read: packed
// codes plus f32 scales. scripts/bench.sh prints each as a fraction of the
// read probe (nibble-bench-gemv) measured in the same script run.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Pipelines/Pipelines.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/TargetSelect.h"

#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace {

template <typename T, int N> struct MemRef {
  T *allocated, *aligned;
  int64_t offset;
  int64_t sizes[N], strides[N];
};

using KernelFn = void (*)(MemRef<float, 2> *, MemRef<float, 2> *,
                          MemRef<int8_t, 1> *, MemRef<float, 2> *,
                          MemRef<float, 2> *, int64_t, int64_t);

/// The generated kernel for [1, k] x [n, k]^T, int `bits`, group `group`.
struct Kernel {
  std::unique_ptr<mlir::MLIRContext> ctx;
  std::unique_ptr<mlir::ExecutionEngine> engine;
  KernelFn fn = nullptr;
};

Kernel compileKernel(int64_t n, int64_t k, int64_t group, int bits) {
  static bool init = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    mlir::registerAllPasses();
    mlir::nibble::registerNibblePasses();
    return true;
  }();
  (void)init;
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllToLLVMIRTranslations(registry);
  registry.insert<mlir::nibble::NibbleDialect>();
  Kernel kern;
  kern.ctx = std::make_unique<mlir::MLIRContext>(registry);
  std::string w = "!nibble.qtensor<" + std::to_string(n) + "x" +
                  std::to_string(k) + ", #nibble.scheme<#nibble.int<" +
                  std::to_string(bits) + ", signed>, group<1, " +
                  std::to_string(group) + ">, scale = f32>>";
  std::string s = "tensor<" + std::to_string(n) + "x" +
                  std::to_string(k / group) + "xf32>";
  std::string x = "tensor<1x" + std::to_string(k) + "xf32>";
  std::string y = "tensor<1x" + std::to_string(n) + "xf32>";
  int64_t bytes = n * k * bits / 8;
  std::string text =
      "func.func @wrap(%x: " + x + ") -> " + y + " {\n"
      "  %w = nibble.constant dense<0> : tensor<" + std::to_string(bytes) +
      "xi8> -> " + w + "\n  %s = arith.constant dense<1.0> : " + s +
      "\n  %y = nibble.matmul %x, %w scales(%s : " + s + ") : " + x + ", " +
      w + " -> " + y + "\n  return %y : " + y + "\n}\n";
  auto module = mlir::parseSourceString<mlir::ModuleOp>(text, kern.ctx.get());
  mlir::PassManager pm(kern.ctx.get());
  mlir::nibble::ReferencePipelineOptions opts;
  opts.kernelTarget = "native";
  if (!module || mlir::failed(mlir::nibble::buildReferenceToLLVMPipeline(pm, opts)) ||
      mlir::failed(pm.run(*module)))
    std::abort();
  auto engine = mlir::ExecutionEngine::create(*module);
  if (!engine)
    std::abort();
  std::string name = "_mlir_ciface_nibble_gemv_w" + std::to_string(bits) +
                     "g" + std::to_string(group) + "_m1_n" +
                     std::to_string(n) + "_k" + std::to_string(k);
  auto sym = (*engine)->lookup(name);
  if (!sym)
    std::abort();
  kern.fn = reinterpret_cast<KernelFn>(*sym);
  kern.engine = std::move(*engine);
  return kern;
}

using nibble::bench::hugeAlloc;

/// Arguments: N, K, threads, bits; group 128.
void BM_GeneratedGEMV(benchmark::State &state) {
  const int64_t n = state.range(0), k = state.range(1), group = 128;
  const int threads = int(state.range(2)), bits = int(state.range(3));
  Kernel kern = compileKernel(n, k, group, bits);
  const size_t wBytes = size_t(n * k * bits / 8);
  const size_t sFloats = size_t(n * (k / group));
  const size_t copies =
      std::max<size_t>(2, ((size_t(160) << 20) + wBytes - 1) / wBytes);
  std::vector<void *> ws, ss;
  std::mt19937 rng(1);
  for (size_t c = 0; c < copies; ++c) {
    auto *w = static_cast<int8_t *>(hugeAlloc(wBytes));
    for (size_t i = 0; i < wBytes; i += 61)
      w[i] = int8_t(rng());
    ws.push_back(w);
    auto *s = static_cast<float *>(hugeAlloc(sFloats * 4));
    for (size_t i = 0; i < sFloats; ++i)
      s[i] = 0.01f;
    ss.push_back(s);
  }
  std::vector<float> x(static_cast<size_t>(k), 0.5f),
      y(static_cast<size_t>(n));
  size_t cursor = 0;
  auto call = [&](size_t c, int64_t n0, int64_t n1) {
    MemRef<float, 2> xm{x.data(), x.data(), 0, {1, k}, {k, 1}};
    auto *w = static_cast<int8_t *>(ws[c]);
    MemRef<int8_t, 1> wm{w, w, 0, {int64_t(wBytes)}, {1}};
    auto *s = static_cast<float *>(ss[c]);
    MemRef<float, 2> sm{s, s, 0, {n, k / group}, {k / group, 1}};
    MemRef<float, 2> ym{y.data(), y.data(), 0, {1, n}, {n, 1}};
    MemRef<float, 2> ret{};
    kern.fn(&ret, &xm, &wm, &sm, &ym, n0, n1);
  };
  for (auto _ : state) {
    size_t c = cursor++ % copies;
    if (threads == 1) {
      call(c, 0, n);
    } else {
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          call(c, n * t / threads, n * (t + 1) / threads);
        });
      for (auto &th : pool)
        th.join();
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) *
                          int64_t(wBytes + sFloats * 4));
  for (void *p : ws)
    std::free(p);
  for (void *p : ss)
    std::free(p);
}

void shapes(benchmark::internal::Benchmark *b) {
  b->ArgNames({"N", "K", "threads", "bits"});
  for (int64_t bits : {4, 8})
    for (auto [n, k] : {std::pair<int64_t, int64_t>{4096, 4096},
                        {11008, 4096},
                        {4096, 11008}})
      for (int64_t t : {1, 2})
        b->Args({n, k, t, bits});
}

BENCHMARK(BM_GeneratedGEMV)->Apply(shapes)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
