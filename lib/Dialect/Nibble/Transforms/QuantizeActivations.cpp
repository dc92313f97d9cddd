//===- QuantizeActivations.cpp - act_format / act_scale on nibble.matmul --===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "WeightIR.h"

#include <algorithm>
#include <cmath>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEQUANTIZEACTIVATIONS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;
using namespace mlir::nibble::detail;
namespace nq = ::nibble::quant;

namespace {

struct QuantizeActivationsPass
    : public mlir::nibble::impl::NibbleQuantizeActivationsBase<
          QuantizeActivationsPass> {
  using NibbleQuantizeActivationsBase::NibbleQuantizeActivationsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    const bool isStatic = mode == "static";
    if (!isStatic && mode != "dynamic") {
      module.emitError("mode must be dynamic or static, got '") << mode << "'";
      return signalPassFailure();
    }
    NumberFormatAttrInterface fmt = parseFormat(ctx, format);
    if (!fmt) {
      module.emitError("unknown activation format '") << format << "'";
      return signalPassFailure();
    }
    if (!fmt.getFormat().isSigned()) {
      module.emitError("activation format '")
          << format << "' must be signed (activations are quantized "
                       "symmetrically)";
      return signalPassFailure();
    }
    if (!(percentile > 0.0 && percentile <= 1.0)) {
      module.emitError("percentile must be in (0, 1], got ") << percentile;
      return signalPassFailure();
    }
    std::optional<nq::StatsFile> stats;
    if (isStatic) {
      if (statsPath.empty()) {
        module.emitError("mode=static needs calibration statistics "
                         "(stats=FILE)");
        return signalPassFailure();
      }
      if (!(stats = loadStats(module, statsPath)))
        return signalPassFailure();
    }
    LayerFilter filter;
    if (failed(filter.init(module, match)))
      return signalPassFailure();

    int64_t changed = 0;
    WalkResult walk = module.walk([&](MatmulOp op) {
      auto name = op->getAttrOfType<StringAttr>("nibble.linear");
      if (!name || !filter(name.getValue()))
        return WalkResult::advance();
      op.setActFormatAttr(fmt);
      op.removeActScaleAttr();
      ++changed;
      if (!isStatic)
        return WalkResult::advance();
      const int64_t k = op.getInput().getType().getDimSize(1);
      std::unique_ptr<nq::LinearStats> adjusted;
      const nq::LinearStats *ls =
          statsFor(op, name.getValue(), k, *stats, adjusted);
      if (!ls)
        return WalkResult::interrupt();
      if (ls->tokens() == 0) {
        op.emitError("the statistics of '")
            << name.getValue() << "' hold no tokens";
        return WalkResult::interrupt();
      }
      float absMax = 0;
      if (percentile < 1.0) {
        if (ls->histogram().count() == 0) {
          op.emitError("percentile clipping of '")
              << name.getValue()
              << "' needs the calibrated |x| histogram, which smoothing or "
                 "outlier splitting invalidated (use percentile=1)";
          return WalkResult::interrupt();
        }
        absMax = ls->histogram().quantile(percentile);
      } else {
        for (float v : ls->absMax())
          absMax = std::max(absMax, v);
      }
      // As the library's fakeQuantizePerTensor: scale = absmax / max.
      float scale = absMax > 0 ? absMax / fmt.getFormat().maxValue() : 1.0f;
      if (!std::isfinite(scale)) {
        op.emitError("the calibrated abs-max of '")
            << name.getValue() << "' is not finite";
        return WalkResult::interrupt();
      }
      op.setActScaleAttr(FloatAttr::get(Float32Type::get(ctx), scale));
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    if (changed == 0)
      module.emitWarning("nibble-quantize-activations found no nibble.matmul "
                         "tagged nibble.linear (run nibble-quantize-weights "
                         "first)");
  }
};

} // namespace
