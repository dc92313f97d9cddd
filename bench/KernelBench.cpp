//===- KernelBench.cpp - Generated CPU kernels, weights cold --------------===//
//
// Times the kernels nibble-generate-kernels emits for this machine (the
// code the compiler ships, JIT-compiled here for `native`) on decode
// shapes, with weights rotated over more than 64 MiB of distinct buffers
// so every call streams them from DRAM, at 1 and 2 threads (output rows
// split over the runtime's thread pool). Paths: weight-only (path 0) and
// integer dot products with int8 activations quantized per token (path 1:
// W4A8 / W8A8; the time includes quantizing the activations). Throughput
// counts the bytes a kernel must read: packed codes plus f32 scales.
// BM_WeightOnlyFormats times the weight-only path on the other format
// families (NF4 through the table lookup, uint4 with zero points, fp8
// e4m3fn through f16 bits, e4m3fnuz through f32 bits) next to symmetric
// int4 / int8 on the same shapes.
// The read probe and the OpenBLAS baselines of GemvBench.cpp are linked
// into the same binary: scripts/bench.sh interleaves all their
// repetitions at random and prints each kernel as a fraction of the probe.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Pipelines/Pipelines.h"
#include "nibble/Runtime/MemRef.h"
#include "nibble/Runtime/ThreadPool.h"
#include "nibble/Target/TargetSpec.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
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

#include <atomic>
#include <chrono>

#include <cstdlib>
#include <iterator>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

namespace {

using nibble::runtime::MemRef;

template <typename T>
MemRef<T, 1> view1(T *p, int64_t n) {
  return {p, p, 0, {n}, {1}};
}
template <typename T>
MemRef<T, 2> view2(T *p, int64_t r, int64_t c) {
  return {p, p, 0, {r, c}, {c, 1}};
}

// Kernels write into their destination arguments and return nothing
// (nibble-drop-in-place-results).
using WeightOnlyFn = void (*)(MemRef<float, 2> *, MemRef<int8_t, 1> *,
                              MemRef<float, 2> *, MemRef<float, 2> *, int64_t,
                              int64_t);
using WeightOnlyZpFn = void (*)(MemRef<float, 2> *, MemRef<int8_t, 1> *,
                                MemRef<float, 2> *, MemRef<float, 2> *,
                                MemRef<float, 2> *, int64_t, int64_t);
using QuantizeFn = void (*)(MemRef<float, 2> *, float, MemRef<int8_t, 2> *,
                            MemRef<float, 2> *, MemRef<float, 1> *);
using IntDotFn = void (*)(MemRef<int8_t, 2> *, MemRef<float, 1> *,
                          MemRef<float, 2> *, MemRef<int8_t, 1> *,
                          MemRef<float, 2> *, MemRef<float, 2> *, int64_t,
                          int64_t);
// The row-tiled integer kernels (name "..._t<R>_...") take their scales
// tiled as the weights: [N/R * K/G, R], one row per tile and group (in the
// weights' order; the benchmark's scales are all alike).
using IntDotTiledFn = void (*)(MemRef<int8_t, 2> *, MemRef<float, 1> *,
                               MemRef<float, 2> *, MemRef<int8_t, 1> *,
                               MemRef<float, 2> *, MemRef<float, 2> *,
                               int64_t, int64_t);

// Row-tiled weight-only kernels take scales (and zero points) alike.
using WeightOnlyTiledFn = void (*)(MemRef<float, 2> *, MemRef<int8_t, 1> *,
                                   MemRef<float, 2> *, MemRef<float, 2> *,
                                   int64_t, int64_t);
using WeightOnlyZpTiledFn = void (*)(MemRef<float, 2> *, MemRef<int8_t, 1> *,
                                     MemRef<float, 2> *, MemRef<float, 2> *,
                                     MemRef<float, 2> *, int64_t, int64_t);

/// The weights of a benchmark: a format attribute, the bits a code takes
/// in the kernel's layout, whether it has zero points, and the format's
/// own code width when it differs from the stored one (a 5-bit float is
/// stored a byte a code).
struct WeightFormat {
  const char *attr;
  int bits;
  bool zeroPoints;
  int formatBits = 0;
  int codeBits() const { return formatBits ? formatBits : bits; }
};

WeightFormat signedInt(int bits) {
  return {bits == 4 ? "#nibble.int<4, signed>" : "#nibble.int<8, signed>",
          bits, false};
}

/// The generated kernels for [m, k] x [n, k]^T, group `group`.
struct Kernel {
  std::unique_ptr<mlir::MLIRContext> ctx;
  std::unique_ptr<mlir::ExecutionEngine> engine;
  WeightOnlyFn weightOnly = nullptr;
  WeightOnlyZpFn weightOnlyZp = nullptr;
  WeightOnlyTiledFn weightOnlyTiled = nullptr;
  WeightOnlyZpTiledFn weightOnlyZpTiled = nullptr;
  QuantizeFn quantize = nullptr;
  IntDotFn intDot = nullptr;
  IntDotTiledFn intDotTiled = nullptr;
  int64_t rowTile = 1; ///< the tiled kernel's R (1: one row at a time)
};

bool nativeHasDot() {
  std::string error;
  auto spec = nibble::target::TargetSpec::parse("native", error);
  return spec && (spec->has("avx512vnni") || spec->has("avxvnni"));
}

Kernel compileKernel(int64_t m, int64_t n, int64_t k, int64_t group,
                     const WeightFormat &fmt, bool intDot,
                     bool rowTile = true) {
  static bool init = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    mlir::registerAllPasses();
    mlir::nibble::registerNibblePasses();
    return true;
  }();
  (void)init;
  mlir::DialectRegistry registry;
  mlir::nibble::registerCompilerDialects(registry);
  Kernel kern;
  kern.ctx = std::make_unique<mlir::MLIRContext>(registry);
  std::string w = "!nibble.qtensor<" + std::to_string(n) + "x" +
                  std::to_string(k) + ", #nibble.scheme<" + fmt.attr +
                  ", group<1, " + std::to_string(group) + ">, scale = f32" +
                  (fmt.zeroPoints ? ", zero_point = f32" : "") + ">>";
  std::string s = "tensor<" + std::to_string(n) + "x" +
                  std::to_string(k / group) + "xf32>";
  std::string x =
      "tensor<" + std::to_string(m) + "x" + std::to_string(k) + "xf32>";
  std::string y =
      "tensor<" + std::to_string(m) + "x" + std::to_string(n) + "xf32>";
  int64_t bytes = n * k * fmt.codeBits() / 8;
  std::string zp = fmt.zeroPoints ? " zero_points(%s : " + s + ")" : "";
  std::string attrs = intDot ? " {act_format = #nibble.int<8, signed>}" : "";
  std::string text =
      "func.func @wrap(%x: " + x + ") -> " + y + " {\n"
      "  %w = nibble.constant dense<0> : tensor<" + std::to_string(bytes) +
      "xi8> -> " + w + "\n  %s = arith.constant dense<1.0> : " + s +
      "\n  %y = nibble.matmul %x, %w scales(%s : " + s + ")" + zp + attrs +
      " : " +
      x + ", " + w + " -> " + y + "\n  return %y : " + y + "\n}\n";
  auto module = mlir::parseSourceString<mlir::ModuleOp>(text, kern.ctx.get());
  mlir::PassManager pm(kern.ctx.get());
  // The kernels first (row-tile=false: the one-row layouts, to compare),
  // then the rest of the pipeline.
  mlir::nibble::ReferencePipelineOptions opts;
  if (!module ||
      mlir::failed(mlir::parsePassPipeline(
          std::string("nibble-generate-kernels{target=native row-tile=") +
              (rowTile ? "true" : "false") + "}",
          pm)) ||
      mlir::failed(mlir::nibble::buildReferenceToLLVMPipeline(pm, opts)) ||
      mlir::failed(pm.run(*module)))
    std::abort();
  // Optimized as nibble-emit-object optimizes shipped code (LLVM -O3
  // pipeline, aggressive codegen) for this machine: the JIT's default runs
  // no IR optimization at all.
  auto tmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!tmb)
    std::abort();
  auto tm = tmb->createTargetMachine();
  if (!tm)
    std::abort();
  mlir::ExecutionEngineOptions eo;
  eo.transformer = mlir::makeOptimizingTransformer(3, 0, tm->get());
  eo.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  auto engine = mlir::ExecutionEngine::create(*module, eo);
  if (!engine)
    std::abort();
  // The kernel's name carries its format (a table hash for lookup-table
  // formats): take it from the lowered module.
  std::string kernelName, quantizerName;
  module->walk([&](mlir::LLVM::LLVMFuncOp f) {
    llvm::StringRef name = f.getName();
    if (name.consume_front("_mlir_ciface_")) {
      if (name.starts_with("nibble_gemv_"))
        kernelName = name.str();
      else if (name.starts_with("nibble_quantize_rows_"))
        quantizerName = name.str();
    }
  });
  auto lookup = [&](const std::string &name) {
    auto sym = (*engine)->lookup("_mlir_ciface_" + name);
    if (name.empty() || !sym)
      std::abort();
    return *sym;
  };
  // "_t<R>_m": the row-tiled layout.
  size_t t = kernelName.find("_t");
  if (t != std::string::npos && kernelName.find("_m", t) != std::string::npos)
    kern.rowTile = std::atoll(kernelName.c_str() + t + 2);
  void *fn = lookup(kernelName);
  const bool tiled = kern.rowTile > 1;
  if (intDot) {
    kern.quantize = reinterpret_cast<QuantizeFn>(lookup(quantizerName));
    if (tiled)
      kern.intDotTiled = reinterpret_cast<IntDotTiledFn>(fn);
    else
      kern.intDot = reinterpret_cast<IntDotFn>(fn);
  } else if (fmt.zeroPoints) {
    if (tiled)
      kern.weightOnlyZpTiled = reinterpret_cast<WeightOnlyZpTiledFn>(fn);
    else
      kern.weightOnlyZp = reinterpret_cast<WeightOnlyZpFn>(fn);
  } else if (tiled) {
    kern.weightOnlyTiled = reinterpret_cast<WeightOnlyTiledFn>(fn);
  } else {
    kern.weightOnly = reinterpret_cast<WeightOnlyFn>(fn);
  }
  kern.engine = std::move(*engine);
  return kern;
}

using nibble::bench::hugeAlloc;

/// Times one kernel on [m, k] x [n, k]^T, group 128, weights cold.
void runKernel(benchmark::State &state, int64_t m, int64_t n, int64_t k,
               int threads, const WeightFormat &fmt, bool intDot,
               bool cold = true, bool rowTile = true) {
  const int64_t group = 128;
  if (intDot && !nativeHasDot()) {
    state.SkipWithError("no 8-bit dot product (VNNI) on this machine");
    return;
  }
  Kernel kern = compileKernel(m, n, k, group, fmt, intDot, rowTile);
  nibble::runtime::ThreadPool pool{static_cast<unsigned>(threads)};
  const size_t wBytes = size_t(n * k * fmt.bits / 8);
  const size_t sFloats = size_t(n * (k / group));
  // Scales and zero points, one buffer: [scales | zero points].
  const size_t sPerCopy = sFloats * (fmt.zeroPoints ? 2 : 1);
  // Cold: rotate over >= 160 MiB (DRAM every call). Hot: one copy, which
  // stays in cache for shapes that fit L3: the kernel's instruction
  // throughput without the memory bound.
  const size_t copies =
      cold ? std::max<size_t>(2, ((size_t(160) << 20) + wBytes - 1) / wBytes)
           : 1;
  std::vector<void *> ws, ss;
  std::mt19937 rng(1);
  for (size_t c = 0; c < copies; ++c) {
    auto *w = static_cast<int8_t *>(hugeAlloc(wBytes));
    for (size_t i = 0; i < wBytes; i += 61)
      w[i] = int8_t(rng() & 0x77); // never an fp8 NaN code
    ws.push_back(w);
    auto *s = static_cast<float *>(hugeAlloc(sPerCopy * 4));
    for (size_t i = 0; i < sPerCopy; ++i)
      s[i] = i < sFloats ? 0.01f : 8.0f;
    ss.push_back(s);
  }
  // How much of the weights the kernel placed in huge pages.
  state.counters["thp_MiB"] = nibble::bench::anonHugeMiB();
  std::vector<float> x(static_cast<size_t>(m * k)),
      y(static_cast<size_t>(m * n));
  for (float &v : x)
    v = float(int(rng() % 200) - 100) / 50.0f;
  std::vector<int8_t> xq(static_cast<size_t>(m * k));
  std::vector<float> xsum(static_cast<size_t>(m * (k / group))),
      xs(static_cast<size_t>(m));
  // Paired probe (cold decode, M = 1, only: prefill chunks are judged
  // against sgemm, not the probe): after each call, the read probe streams the
  // same number of bytes from the copy farthest from the kernel in the
  // rotation (untouched for copies / 2 calls, so cold), over the same
  // threads. Its time is not the benchmark's (manual time is the kernel's
  // alone); the ratio of the two rates, taken call by call, is immune to
  // the bandwidth drift that skews a probe timed seconds or minutes away.
  const bool paired = cold && m == 1;
  double kernelSec = 0, probeSec = 0;
  std::atomic<uint32_t> probeSink{0};
  auto probe = [&](size_t c) {
    const auto *wq = static_cast<const uint32_t *>(ws[c]);
    const auto *sq = static_cast<const uint32_t *>(ss[c]);
    // Whole 64-byte lines (the buffers are 2 MiB-rounded).
    const int64_t wLines = int64_t((wBytes + 63) / 64),
                  sLines = int64_t((sPerCopy + 15) / 16);
    pool.parallelFor(wLines + sLines, 1, [&](int64_t l0, int64_t l1) {
      uint32_t sum = 0;
      if (l0 < wLines)
        sum += nibble::bench::sumRange(wq + l0 * 16,
                                       size_t(std::min(l1, wLines) - l0) * 16);
      if (l1 > wLines) {
        int64_t s0 = std::max(l0, wLines) - wLines;
        sum += nibble::bench::sumRange(sq + s0 * 16,
                                       size_t(l1 - wLines - s0) * 16);
      }
      probeSink += sum;
    });
  };
  size_t cursor = 0;
  for (auto _ : state) {
    size_t c = cursor++ % copies;
    auto start = std::chrono::steady_clock::now();
    auto *w = static_cast<int8_t *>(ws[c]);
    auto *s = static_cast<float *>(ss[c]);
    MemRef<int8_t, 1> wm = view1(w, int64_t(wBytes));
    MemRef<float, 2> sm = view2(s, n, k / group);
    MemRef<float, 2> zm = view2(s + sFloats, n, k / group);
    MemRef<float, 2> xm = view2(x.data(), m, k);
    MemRef<float, 2> ym = view2(y.data(), m, n);
    // Row-tiled kernels read the same scales (and zero points) as
    // [N/R * K/G, R].
    const int64_t r = kern.rowTile;
    MemRef<float, 2> st = view2(s, n / r * (k / group), r);
    MemRef<float, 2> zt = view2(s + sFloats, n / r * (k / group), r);
    if (intDot) {
      // Activations once per call, then rows over the pool.
      MemRef<int8_t, 2> xqm = view2(xq.data(), m, k);
      MemRef<float, 2> xsumm = view2(xsum.data(), m, k / group);
      MemRef<float, 1> xsm = view1(xs.data(), m);
      kern.quantize(&xm, 0.0f, &xqm, &xsumm, &xsm);
      pool.parallelFor(n, 16, [&](int64_t n0, int64_t n1) {
        MemRef<int8_t, 2> a = xqm;
        MemRef<float, 1> b = xsm;
        MemRef<float, 2> c2 = xsumm, wsc = sm, yy = ym;
        MemRef<int8_t, 1> ww = wm;
        if (kern.intDotTiled) {
          MemRef<float, 2> sct = st;
          kern.intDotTiled(&a, &b, &c2, &ww, &sct, &yy, n0, n1);
        } else {
          kern.intDot(&a, &b, &c2, &ww, &wsc, &yy, n0, n1);
        }
      });
    } else {
      pool.parallelFor(n, 16, [&](int64_t n0, int64_t n1) {
        MemRef<float, 2> xx = xm, sc = sm, zz = zm, yy = ym;
        MemRef<float, 2> sct = st, zzt = zt;
        MemRef<int8_t, 1> ww = wm;
        if (kern.weightOnlyZpTiled)
          kern.weightOnlyZpTiled(&xx, &ww, &sct, &zzt, &yy, n0, n1);
        else if (kern.weightOnlyTiled)
          kern.weightOnlyTiled(&xx, &ww, &sct, &yy, n0, n1);
        else if (fmt.zeroPoints)
          kern.weightOnlyZp(&xx, &ww, &sc, &zz, &yy, n0, n1);
        else
          kern.weightOnly(&xx, &ww, &sc, &yy, n0, n1);
      });
    }
    benchmark::DoNotOptimize(y.data());
    auto mid = std::chrono::steady_clock::now();
    double sec = std::chrono::duration<double>(mid - start).count();
    state.SetIterationTime(sec);
    kernelSec += sec;
    if (paired) {
      probe((c + copies / 2) % copies);
      probeSec += std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - mid)
                      .count();
    }
  }
  benchmark::DoNotOptimize(probeSink.load());
  const int64_t bytesPerCall = int64_t(wBytes + sPerCopy * 4);
  state.SetBytesProcessed(int64_t(state.iterations()) * bytesPerCall);
  if (paired && probeSec > 0) {
    // The probe's rate and the kernel's as a fraction of it (same bytes
    // per call, so the ratio of times).
    state.counters["probe_GBps"] =
        double(state.iterations()) * double(bytesPerCall) / probeSec / 1e9;
    state.counters["x_probe"] = probeSec / kernelSec;
  }
  for (void *p : ws)
    std::free(p);
  for (void *p : ss)
    std::free(p);
}

/// Arguments: N, K, threads, bits, path (0 weight-only, 1 int8 dot, 2 int8
/// dot and 3 weight-only in the one-row layout instead of the row-tiled
/// one), M (activation rows: 1 for decode, 8 / 16 for prefill chunks);
/// signed int4 / int8, group 128.
void BM_GeneratedGEMV(benchmark::State &state) {
  const bool cold = state.range(6) != 0;
  const int64_t path = state.range(4);
  const bool oneRow = path >= 2;
  if (!cold || oneRow)
    state.SetLabel(std::string(oneRow ? "one-row" : "") +
                   (cold ? "" : oneRow ? " (hot)" : "(hot)"));
  runKernel(state, state.range(5), state.range(0), state.range(1),
            int(state.range(2)), signedInt(int(state.range(3))),
            path == 1 || path == 2, cold, /*rowTile=*/!oneRow);
}

/// The weight-only formats BM_WeightOnlyFormats times (argument `format`).
const WeightFormat kFormats[] = {
    {"#nibble.int<4, signed>", 4, false},
    {"#nibble.lut<nf4>", 4, false},
    {"#nibble.int<4, unsigned>", 4, true},
    {"#nibble.float<e4m3fn>", 8, false},
    {"#nibble.int<8, signed>", 8, false},
    {"#nibble.float<e2m3fn>", 6, false},
    {"#nibble.float<e4m3fnuz>", 8, false},
    // A 5-bit float: stored a byte a code by the kernel.
    {"#nibble.float<e2m2, nonfinite = finite_only>", 8, false, 5},
};

/// Arguments: N, K, threads, format (index into kFormats), cold (0: the
/// weights stay in cache); M = 1.
void BM_WeightOnlyFormats(benchmark::State &state) {
  const WeightFormat &fmt = kFormats[state.range(3)];
  const bool cold = state.range(4) != 0;
  state.SetLabel(fmt.attr + std::string(fmt.zeroPoints ? " zp" : "") +
                 (cold ? "" : " (hot)"));
  runKernel(state, 1, state.range(0), state.range(1), int(state.range(2)),
            fmt, false, cold);
}

void shapes(benchmark::internal::Benchmark *b) {
  b->ArgNames({"N", "K", "threads", "bits", "path", "M", "cold"});
  for (int64_t path : {1, 0})
    for (int64_t bits : {4, 8})
      for (auto [n, k] : {std::pair<int64_t, int64_t>{4096, 4096},
                          {11008, 4096},
                          {4096, 11008}})
        for (int64_t t : {1, 2})
          b->Args({n, k, t, bits, path, 1, 1});
  // Prefill chunks on the integer paths (against OpenBLAS sgemm, M 8/16).
  for (int64_t m : {8, 16})
    for (int64_t bits : {4, 8})
      for (int64_t t : {1, 2})
        b->Args({4096, 4096, t, bits, 1, m, 1});
  // Hot (one copy of the weights, in L3): what each path's instructions
  // sustain on one core without the DRAM stream.
  for (int64_t path : {1, 0})
    for (int64_t bits : {4, 8})
      b->Args({4096, 4096, 1, bits, path, 1, 0});
  // The one-row layouts (path 2 integer dot, 3 weight-only), decode at
  // 4096 x 4096, cold and hot: what the row-tiled layout changes, in the
  // same run.
  for (int64_t path : {2, 3})
    for (int64_t bits : {4, 8}) {
      for (int64_t t : {1, 2})
        b->Args({4096, 4096, t, bits, path, 1, 1});
      b->Args({4096, 4096, 1, bits, path, 1, 0});
    }
  // Prefill chunks on the weight-only path (M 8 / 16, int4).
  for (int64_t m : {8, 16})
    for (int64_t t : {1, 2})
      b->Args({4096, 4096, t, 4, 0, m, 1});
}

BENCHMARK(BM_GeneratedGEMV)->Apply(shapes)->UseManualTime();

void formatShapes(benchmark::internal::Benchmark *b) {
  b->ArgNames({"N", "K", "threads", "format", "cold"});
  for (int64_t f = 0; f < int64_t(std::size(kFormats)); ++f) {
    for (int64_t t : {1, 2})
      b->Args({4096, 4096, t, f, 1});
    b->Args({4096, 4096, 1, f, 0});
  }
}

BENCHMARK(BM_WeightOnlyFormats)->Apply(formatShapes)->UseManualTime();

} // namespace

BENCHMARK_MAIN();
