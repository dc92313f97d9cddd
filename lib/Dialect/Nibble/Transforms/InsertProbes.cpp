//===- InsertProbes.cpp - nibble.observe on the inputs of linears ---------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "WeightIR.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEINSERTPROBES
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;

namespace {

struct InsertProbesPass
    : public mlir::nibble::impl::NibbleInsertProbesBase<InsertProbesPass> {
  using NibbleInsertProbesBase::NibbleInsertProbesBase;

  void runOnOperation() override {
    mlir::nibble::detail::LayerFilter filter;
    if (failed(filter.init(getOperation(), match)))
      return signalPassFailure();
    SmallVector<std::pair<Operation *, StringAttr>> linears;
    getOperation().walk([&](Operation *op) {
      auto name = op->getAttrOfType<StringAttr>("nibble.linear");
      if (name && (isa<linalg::MatmulOp, MatmulOp>(op)) &&
          filter(name.getValue()))
        linears.push_back({op, name});
    });
    for (auto [op, name] : linears) {
      OpBuilder b(op);
      ObserveOp::create(b, op->getLoc(), name, op->getOperand(0));
    }
  }
};

} // namespace
