//===- SplitOutliers.cpp - Static LLM.int8()-style outlier decomposition --===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "WeightIR.h"

#include "nibble/Quant/Smooth.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLESPLITOUTLIERS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;
using namespace mlir::nibble::detail;
namespace nq = ::nibble::quant;

namespace {

struct SplitOutliersPass
    : public mlir::nibble::impl::NibbleSplitOutliersBase<SplitOutliersPass> {
  using NibbleSplitOutliersBase::NibbleSplitOutliersBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (statsPath.empty()) {
      module.emitError(
          "nibble-split-outliers needs calibration statistics (stats=FILE)");
      return signalPassFailure();
    }
    if (!(threshold > 0)) {
      module.emitError("threshold must be positive, got ") << threshold;
      return signalPassFailure();
    }
    Type outType;
    if (outlierType == "f16")
      outType = Float16Type::get(&getContext());
    else if (outlierType == "f32")
      outType = Float32Type::get(&getContext());
    else {
      module.emitError("outlier-type must be f16 or f32, got '")
          << outlierType << "'";
      return signalPassFailure();
    }
    std::optional<nq::StatsFile> stats = loadStats(module, statsPath);
    LayerFilter filter;
    if (!stats || failed(filter.init(module, match)))
      return signalPassFailure();
    SmallVector<linalg::MatmulOp> linears;
    module.walk([&](linalg::MatmulOp op) {
      if (auto n = op->getAttrOfType<StringAttr>("nibble.linear"))
        if (filter(n.getValue()))
          linears.push_back(op);
    });
    for (linalg::MatmulOp op : linears)
      if (failed(split(op, *stats, outType)))
        return signalPassFailure();
  }

  LogicalResult split(linalg::MatmulOp op, const nq::StatsFile &stats,
                      Type outType) {
    std::string name =
        op->getAttrOfType<StringAttr>("nibble.linear").getValue().str();
    if (!isa<linalg::MatmulTransposeBOp>(op.getOperation()))
      return op.emitError("nibble.linear '")
             << name << "' is not a transposed-B matmul over [out, in]";
    Value x = op.getDpsInputs()[0], wv = op.getDpsInputs()[1];
    auto xType = cast<RankedTensorType>(x.getType());
    auto wType = cast<RankedTensorType>(wv.getType());
    const int64_t t = xType.getDimSize(0), n = wType.getDimSize(0),
                  k = wType.getDimSize(1);
    std::unique_ptr<nq::LinearStats> adjusted;
    const nq::LinearStats *ls = statsFor(op, name, k, stats, adjusted);
    if (!ls)
      return failure();
    std::vector<int64_t> outliers =
        nq::outlierChannels(ls->absMax(), float(threshold));
    if (outliers.empty())
      return success();
    FailureOr<std::vector<float>> w = readWeight(op, wv);
    if (failed(w))
      return failure();
    const int64_t m = int64_t(outliers.size());

    // W_out [n, m] and W_in (outlier columns zeroed).
    std::vector<float> wOut(size_t(n * m)), mask(size_t(k), 1.0f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < m; ++c) {
        float &v = (*w)[size_t(i * k + outliers[size_t(c)])];
        wOut[size_t(i * m + c)] = v;
        v = 0;
      }
    for (int64_t c : outliers)
      mask[size_t(c)] = 0;

    OpBuilder b(op);
    Location loc = op.getLoc();
    MLIRContext *ctx = op.getContext();
    Type f32 = b.getF32Type();
    // Inlier part: masked input, zeroed columns; stays the quantizable
    // linear.
    Value maskC = floatConstant(b, loc, name + ".inlier_mask", {k}, mask, f32);
    Value xIn = scaleColumns(b, loc, x, maskC);
    op->setOperand(0, xIn);
    op->setOperand(1, floatConstant(b, loc, name + ".weight.inliers", {n, k},
                                    *w, f32));
    std::vector<float> mult =
        inputMultiplier(op).value_or(std::vector<float>(size_t(k), 1.0f));
    for (int64_t c : outliers)
      mult[size_t(c)] = 0;
    setInputMultiplier(op, name, mult);
    op->setAttr("nibble.outlier_channels", b.getDenseI64ArrayAttr(outliers));

    // Outlier part: gather x[:, outliers] and multiply by W_out in float.
    auto idxType = RankedTensorType::get({m}, b.getIndexType());
    SmallVector<APInt> idx;
    for (int64_t c : outliers)
      idx.push_back(APInt(64, uint64_t(c)));
    Value idxC = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(idxType, ArrayRef<APInt>(idx)));
    auto gType = RankedTensorType::get({t, m}, xType.getElementType());
    AffineMap col = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, ctx);
    Value gathered =
        linalg::GenericOp::create(
            b, loc, TypeRange{gType}, ValueRange{idxC},
            ValueRange{tensor::EmptyOp::create(b, loc, gType.getShape(),
                                               gType.getElementType())},
            ArrayRef<AffineMap>{col, b.getMultiDimIdentityMap(2)},
            ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                          utils::IteratorType::parallel},
            [&](OpBuilder &ob, Location l, ValueRange a) {
              Value row = linalg::IndexOp::create(ob, l, 0);
              Value v = tensor::ExtractOp::create(ob, l, x, ValueRange{row, a[0]});
              linalg::YieldOp::create(ob, l, ValueRange{v});
            })
            .getResult(0);
    Value wOutC = floatConstant(b, loc, name + ".weight.outliers", {n, m},
                                wOut, outType);
    auto yType = cast<RankedTensorType>(op.getResult(0).getType());
    Value zero = arith::ConstantOp::create(
        b, loc, b.getFloatAttr(yType.getElementType(), 0.0));
    Value acc = linalg::FillOp::create(
                    b, loc, zero,
                    tensor::EmptyOp::create(b, loc, yType.getShape(),
                                            yType.getElementType())
                        .getResult())
                    .getResult(0);
    auto outMM = linalg::MatmulTransposeBOp::create(
        b, loc, TypeRange{yType}, ValueRange{gathered, wOutC}, ValueRange{acc});
    outMM->setAttr("nibble.outlier_part", b.getStringAttr(name));

    // y = y_in + y_out, after the inlier matmul.
    b.setInsertionPointAfter(op);
    AffineMap id = b.getMultiDimIdentityMap(2);
    Value yIn = op.getResult(0);
    auto sum = linalg::GenericOp::create(
        b, loc, TypeRange{yType}, ValueRange{yIn, outMM->getResult(0)},
        ValueRange{tensor::EmptyOp::create(b, loc, yType.getShape(),
                                           yType.getElementType())},
        ArrayRef<AffineMap>{id, id, id},
        ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                      utils::IteratorType::parallel},
        [](OpBuilder &ob, Location l, ValueRange a) {
          linalg::YieldOp::create(
              ob, l, ValueRange{arith::AddFOp::create(ob, l, a[0], a[1])});
        });
    yIn.replaceAllUsesExcept(sum.getResult(0), sum);
    return success();
  }
};

} // namespace
