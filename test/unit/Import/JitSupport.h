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
#include "llvm/Support/TargetSelect.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <memory>
#include <vector>

namespace nibble::jit {

template <typename T, int N> struct MemRef {
  T *allocated;
  T *aligned;
  int64_t offset;
  int64_t sizes[N];
  int64_t strides[N];
};

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
    mlir::registerAllDialects(registry);
    mlir::registerAllExtensions(registry);
    mlir::registerAllToLLVMIRTranslations(registry);
    ctx = std::make_unique<mlir::MLIRContext>(registry);
    ctx->loadAllAvailableDialects();
  }
  std::unique_ptr<mlir::MLIRContext> ctx;
};

/// Lowers `module` with the reference pipeline and runs @forward on
/// `tokens`; returns [T x vocab] logits.
inline std::vector<float> runCompiled(mlir::ModuleOp module,
                               const std::vector<int32_t> &tokens,
                               int64_t vocab) {
  auto func = module.lookupSymbol<mlir::func::FuncOp>("forward");
  EXPECT_TRUE(func);
  if (!func)
    return {};
  func->setAttr("llvm.emit_c_interface", mlir::UnitAttr::get(module.getContext()));
  mlir::PassManager pm(module.getContext());
  mlir::nibble::ReferencePipelineOptions opts;
  EXPECT_TRUE(mlir::succeeded(mlir::nibble::buildReferenceToLLVMPipeline(pm, opts)));
  if (mlir::failed(pm.run(module))) {
    ADD_FAILURE() << "reference lowering failed";
    return {};
  }
  auto engine = mlir::ExecutionEngine::create(module);
  if (!engine) {
    ADD_FAILURE() << llvm::toString(engine.takeError());
    return {};
  }
  auto sym = (*engine)->lookup("_mlir_ciface_forward");
  if (!sym) {
    ADD_FAILURE() << llvm::toString(sym.takeError());
    return {};
  }
  using Fn = void (*)(MemRef<float, 2> *, MemRef<int32_t, 1> *);
  auto fn = reinterpret_cast<Fn>(*sym);
  std::vector<int32_t> in = tokens;
  MemRef<int32_t, 1> arg{in.data(), in.data(), 0, {int64_t(in.size())}, {1}};
  MemRef<float, 2> result{};
  fn(&result, &arg);
  EXPECT_EQ(result.sizes[0], int64_t(tokens.size()));
  EXPECT_EQ(result.sizes[1], vocab);
  std::vector<float> out(size_t(result.sizes[0] * result.sizes[1]));
  for (int64_t t = 0; t < result.sizes[0]; ++t)
    for (int64_t v = 0; v < result.sizes[1]; ++v)
      out[t * vocab + v] =
          result.aligned[result.offset + t * result.strides[0] + v * result.strides[1]];
  std::free(result.allocated);
  return out;
}

} // namespace nibble::jit

#endif // NIBBLE_TEST_UNIT_IMPORT_JITSUPPORT_H
