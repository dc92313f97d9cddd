//===- JitSupport.h - Lower, JIT and run float/quantized IR in tests ------===//

#ifndef NIBBLE_TEST_UNIT_IMPORT_JITSUPPORT_H
#define NIBBLE_TEST_UNIT_IMPORT_JITSUPPORT_H

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Pipelines/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Support/TargetSelect.h"

#include "nibble/Runtime/MemRef.h"

#include "gtest/gtest.h"

#include <array>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nibble::jit {

using runtime::MemRef;

/// An MLIRContext with every dialect, extension and pass registered.
struct Context {
  Context() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    static bool passesRegistered = [] {
      mlir::registerAllPasses();
      mlir::nibble::registerNibblePasses();
      return true;
    }();
    (void)passesRegistered;
    mlir::DialectRegistry registry;
    mlir::nibble::registerCompilerDialects(registry);
    ctx = std::make_unique<mlir::MLIRContext>(registry);
    ctx->loadAllAvailableDialects();
  }
  std::unique_ptr<mlir::MLIRContext> ctx;
};

/// Marks `names` for C interfaces, lowers `module` with the reference
/// pipeline under `opts` and JIT-compiles it; null (and a test failure) on
/// any error.
inline std::unique_ptr<mlir::ExecutionEngine>
lowerAndJit(mlir::ModuleOp module, const std::vector<std::string> &names,
            const mlir::nibble::ReferencePipelineOptions &opts) {
  for (const std::string &n : names) {
    auto func = module.lookupSymbol<mlir::func::FuncOp>(n);
    EXPECT_TRUE(func) << n;
    if (!func)
      return nullptr;
    func->setAttr("llvm.emit_c_interface",
                  mlir::UnitAttr::get(module.getContext()));
  }
  mlir::PassManager pm(module.getContext());
  EXPECT_TRUE(
      mlir::succeeded(mlir::nibble::buildReferenceToLLVMPipeline(pm, opts)));
  if (mlir::failed(pm.run(module))) {
    ADD_FAILURE() << "reference lowering failed";
    return nullptr;
  }
  auto engine = mlir::ExecutionEngine::create(module);
  if (!engine) {
    ADD_FAILURE() << llvm::toString(engine.takeError());
    return nullptr;
  }
  return std::move(*engine);
}

/// @forward of a module lowered with the reference pipeline and JIT-compiled;
/// run() may be called many times.
class Compiled {
public:
  /// Null on failure (reported as a test failure). `symbols` are resolved
  /// for external calls (e.g. the calibration probes' nibble_observe_f32).
  static std::unique_ptr<Compiled>
  create(mlir::ModuleOp module, int64_t vocab, bool probeCalls = false,
         const std::vector<std::pair<std::string, void *>> &symbols = {}) {
    mlir::nibble::ReferencePipelineOptions opts;
    opts.probes = probeCalls ? "call" : "drop";
    auto engine = lowerAndJit(module, {"forward"}, opts);
    if (!engine)
      return nullptr;
    if (!symbols.empty())
      engine->registerSymbols([&](llvm::orc::MangleAndInterner interner) {
        llvm::orc::SymbolMap map;
        for (const auto &[name, ptr] : symbols)
          map[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(ptr),
                                 llvm::JITSymbolFlags::Exported};
        return map;
      });
    auto sym = engine->lookup("_mlir_ciface_forward");
    if (!sym) {
      ADD_FAILURE() << llvm::toString(sym.takeError());
      return nullptr;
    }
    auto c = std::unique_ptr<Compiled>(new Compiled());
    c->engine_ = std::move(engine);
    c->fn_ = reinterpret_cast<Fn>(*sym);
    c->vocab_ = vocab;
    return c;
  }

  /// [T x vocab] logits of `tokens`.
  std::vector<float> run(const std::vector<int32_t> &tokens) {
    std::vector<int32_t> in = tokens;
    MemRef<int32_t, 1> arg{in.data(), in.data(), 0, {int64_t(in.size())}, {1}};
    MemRef<float, 2> result{};
    fn_(&result, &arg);
    EXPECT_EQ(result.sizes[0], int64_t(tokens.size()));
    EXPECT_EQ(result.sizes[1], vocab_);
    std::vector<float> out(size_t(result.sizes[0] * result.sizes[1]));
    for (int64_t t = 0; t < result.sizes[0]; ++t)
      for (int64_t v = 0; v < result.sizes[1]; ++v)
        out[t * vocab_ + v] =
            result.aligned[result.offset + t * result.strides[0] +
                           v * result.strides[1]];
    std::free(result.allocated);
    return out;
  }

private:
  using Fn = void (*)(MemRef<float, 2> *, MemRef<int32_t, 1> *);
  Compiled() = default;
  std::unique_ptr<mlir::ExecutionEngine> engine_;
  Fn fn_ = nullptr;
  int64_t vocab_ = 0;
};

/// KV-cache step functions (FloatModelOptions::kvCache) of one module,
/// lowered with the reference pipeline and JIT-compiled, with the caches
/// they update in place.
class CompiledSteps {
public:
  static std::unique_ptr<CompiledSteps>
  create(mlir::ModuleOp module, const std::vector<std::string> &names,
         int64_t layers, int64_t context, int64_t kvHeads, int64_t headDim,
         int64_t vocab, const std::string &kernelTarget = "",
         bool quantizedKV = false) {
    mlir::nibble::ReferencePipelineOptions opts;
    opts.kernelTarget = kernelTarget;
    auto engine = lowerAndJit(module, names, opts);
    if (!engine)
      return nullptr;
    auto c = std::unique_ptr<CompiledSteps>(new CompiledSteps());
    for (const std::string &n : names) {
      auto sym = engine->lookup("_mlir_ciface_" + n);
      if (!sym) {
        ADD_FAILURE() << llvm::toString(sym.takeError());
        return nullptr;
      }
      c->fns_[n] = reinterpret_cast<Fn>(*sym);
    }
    c->engine_ = std::move(engine);
    c->shape_ = {layers, context, kvHeads, headDim};
    c->vocab_ = vocab;
    size_t cache = size_t(layers * context * kvHeads * headDim);
    c->quantizedKV_ = quantizedKV;
    if (quantizedKV) {
      c->kq_.assign(cache, 0);
      c->vq_.assign(cache, 0);
      c->ks_.assign(size_t(layers * context * kvHeads), 0.0f);
      c->vs_.assign(c->ks_.size(), 0.0f);
    } else {
      c->k_.assign(cache, 0.0f);
      c->v_.assign(cache, 0.0f);
    }
    return c;
  }

  /// Runs `name` on `tokens` (its chunk length) at `pos`; returns
  /// [tokens x vocab] logits.
  std::vector<float> run(const std::string &name,
                         const std::vector<int32_t> &tokens, int64_t pos) {
    std::vector<int32_t> in = tokens;
    std::vector<float> logits(tokens.size() * size_t(vocab_));
    MemRef<int32_t, 1> t{in.data(), in.data(), 0, {int64_t(in.size())}, {1}};
    auto cache = [&](auto &c) {
      using T = typename std::decay_t<decltype(c)>::value_type;
      MemRef<T, 4> m{c.data(), c.data(), 0, {}, {}};
      int64_t stride = 1;
      for (int d = 3; d >= 0; --d) {
        m.sizes[d] = shape_[d];
        m.strides[d] = stride;
        stride *= shape_[d];
      }
      return m;
    };
    MemRef<float, 2> l{logits.data(),
                       logits.data(),
                       0,
                       {int64_t(tokens.size()), vocab_},
                       {vocab_, 1}};
    if (quantizedKV_) {
      auto scales = [&](std::vector<float> &s) {
        return MemRef<float, 3>{s.data(),
                                s.data(),
                                0,
                                {shape_[0], shape_[1], shape_[2]},
                                {shape_[1] * shape_[2], shape_[2], 1}};
      };
      MemRef<int8_t, 4> k = cache(kq_), v = cache(vq_);
      MemRef<float, 3> ks = scales(ks_), vs = scales(vs_);
      reinterpret_cast<QuantFn>(reinterpret_cast<void *>(fns_.at(name)))(
          &t, pos, &k, &v, &ks, &vs, &l);
    } else {
      MemRef<float, 4> k = cache(k_), v = cache(v_);
      fns_.at(name)(&t, pos, &k, &v, &l);
    }
    return logits;
  }

private:
  using Fn = void (*)(MemRef<int32_t, 1> *, int64_t, MemRef<float, 4> *,
                      MemRef<float, 4> *, MemRef<float, 2> *);
  /// With a quantized KV cache (FloatModelOptions::kvFormat).
  using QuantFn = void (*)(MemRef<int32_t, 1> *, int64_t, MemRef<int8_t, 4> *,
                           MemRef<int8_t, 4> *, MemRef<float, 3> *,
                           MemRef<float, 3> *, MemRef<float, 2> *);
  CompiledSteps() = default;
  std::unique_ptr<mlir::ExecutionEngine> engine_;
  std::map<std::string, Fn> fns_;
  std::array<int64_t, 4> shape_{};
  int64_t vocab_ = 0;
  bool quantizedKV_ = false;
  std::vector<float> k_, v_, ks_, vs_;
  std::vector<int8_t> kq_, vq_;
};

/// Lowers `module` with the reference pipeline and runs @forward on
/// `tokens`; returns [T x vocab] logits.
inline std::vector<float> runCompiled(mlir::ModuleOp module,
                                      const std::vector<int32_t> &tokens,
                                      int64_t vocab) {
  auto c = Compiled::create(module, vocab);
  return c ? c->run(tokens) : std::vector<float>{};
}

} // namespace nibble::jit

#endif // NIBBLE_TEST_UNIT_IMPORT_JITSUPPORT_H
