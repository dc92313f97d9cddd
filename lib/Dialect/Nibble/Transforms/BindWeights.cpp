//===- BindWeights.cpp - Attach checkpoint tensors to float IR ------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Import/FloatModel.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEBINDWEIGHTS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;

namespace {
struct BindWeightsPass
    : public mlir::nibble::impl::NibbleBindWeightsBase<BindWeightsPass> {
  using NibbleBindWeightsBase::NibbleBindWeightsBase;

  void runOnOperation() override {
    if (modelPath.empty()) {
      getOperation().emitError("nibble-bind-weights needs model=PATH");
      return signalPassFailure();
    }
    std::string error;
    auto model = ::nibble::model::Model::load(modelPath, error);
    // The pass does not outlive its model: copy the bytes into the context.
    if (!model || !::nibble::import::bindWeights(getOperation(), *model,
                                                 /*copy=*/true, error)) {
      getOperation().emitError(error);
      return signalPassFailure();
    }
  }
};
} // namespace
