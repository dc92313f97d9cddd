//===- QuantizeWeights.cpp - Float linears -> nibble.matmul ---------------===//
//
// The numerical work is done by the plain C++ rounding library
// (nibble/Quant); this pass only finds the linears, reads their bound
// weights, picks the per-layer configuration (options or recipe) and writes
// the result back as nibble IR.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "WeightIR.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Quant/Smooth.h"
#include "nibble/Quant/Stats.h"
#include "nibble/Support/Progress.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <map>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEQUANTIZEWEIGHTS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;
using namespace mlir::nibble::detail;
namespace nq = ::nibble::quant;

namespace {

struct QuantizeWeightsPass
    : public mlir::nibble::impl::NibbleQuantizeWeightsBase<QuantizeWeightsPass> {
  using NibbleQuantizeWeightsBase::NibbleQuantizeWeightsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    Recipe recipe;
    if (failed(recipe.load(module, recipePath,
                           {false, method, format, group, symmetric,
                            scale})))
      return signalPassFailure();
    std::optional<nq::StatsFile> stats;
    if (!statsPath.empty() && !(stats = loadStats(module, statsPath)))
      return signalPassFailure();
    SmallVector<linalg::MatmulOp> matmuls;
    module.walk([&](linalg::MatmulOp op) {
      if (op->hasAttr("nibble.linear"))
        matmuls.push_back(op);
    });
    ::nibble::support::Progress bar("quantizing weights",
                                    int64_t(matmuls.size()), !progress);
    int64_t done = 0;
    for (linalg::MatmulOp op : matmuls) {
      std::string name =
          op->getAttrOfType<StringAttr>("nibble.linear").getValue().str();
      LayerConfig cfg = recipe.configFor(name);
      if (!cfg.skip &&
          failed(quantizeOne(op, name, cfg, stats ? &*stats : nullptr)))
        return signalPassFailure();
      bar.update(++done, name);
    }
    bar.finish();
  }

  struct Memo {
    std::vector<float> weights;
    nq::QuantizedWeight q;
    std::vector<float> awqScales;
  };
  std::map<std::string, Memo> memo_;

  LogicalResult quantizeOne(linalg::MatmulOp op, const std::string &name,
                            const LayerConfig &cfg,
                            const nq::StatsFile *stats) {
    MLIRContext *ctx = op.getContext();
    if (!isa<linalg::MatmulTransposeBOp>(op.getOperation()))
      return op.emitError("nibble.linear '")
             << name << "' is not a transposed-B matmul over [out, in]";
    Value x = op.getDpsInputs()[0], wv = op.getDpsInputs()[1];
    auto wType = cast<RankedTensorType>(wv.getType());
    const int64_t n = wType.getDimSize(0), k = wType.getDimSize(1);
    FailureOr<std::vector<float>> w = readWeight(op, wv);
    if (failed(w))
      return failure();

    auto fmtAttr = parseFormat(ctx, cfg.format);
    if (!fmtAttr)
      return op.emitError("unknown weight format '") << cfg.format << "'";
    nq::WeightScheme scheme;
    scheme.format = fmtAttr.getFormat();
    scheme.groupSize = cfg.group;
    scheme.symmetric = cfg.symmetric;
    std::optional<nq::ScaleStorage> storage = nq::parseScaleStorage(cfg.scale);
    if (!storage)
      return op.emitError("unknown scale storage '")
             << cfg.scale << "' (expected f32, e8m0, e4m3)";
    scheme.scaleStorage = *storage;

    bool needsStats = cfg.method == "gptq" || cfg.method == "awq" ||
                      cfg.method == "imatrix";
    if (needsStats && !stats)
      return op.emitError("method '")
             << cfg.method << "' for '" << name
             << "' needs calibration statistics of that layer (stats=FILE)";
    // The statistics of the input as it is now (after any smoothing or
    // channel masking recorded on the op).
    std::unique_ptr<nq::LinearStats> adjusted;
    const nq::LinearStats *ls = nullptr;
    if (needsStats && !(ls = statsFor(op, name, k, *stats, adjusted)))
      return failure();
    if ((cfg.method == "gptq" || cfg.method == "awq") && !ls->hasHessian())
      return op.emitError("the statistics of '")
             << name << "' have no Hessian (calibrate without --no-hessian)";

    std::string error;
    nq::MatrixView view{w->data(), n, k};
    std::optional<nq::QuantizedWeight> q;
    std::vector<float> awqScales;
    // A module can hold the same linear once per function (a prefill chunk
    // and a decode step): same name, configuration, input multiplier and
    // weights give the same result, computed once (GPTQ is the costly part
    // of compiling).
    std::string memoKey = name + "\n" + cfg.method + "\n" + cfg.format + "\n" +
                          std::to_string(cfg.group) + "\n" +
                          (cfg.symmetric ? "s" : "a") + "\n" + cfg.scale;
    if (Attribute m = op->getAttr("nibble.input_multiplier")) {
      llvm::raw_string_ostream os(memoKey);
      os << "\n" << m;
    }
    auto memo = memo_.find(memoKey);
    if (memo != memo_.end() && memo->second.weights == *w) {
      q = memo->second.q;
      awqScales = memo->second.awqScales;
    } else if (cfg.method == "rtn" || cfg.method == "rtn-mse" ||
        cfg.method == "imatrix") {
      nq::RTNOptions o;
      o.mseClip = cfg.method != "rtn";
      if (cfg.method == "imatrix")
        o.importance = ls->meanSq();
      q = nq::quantizeRTN(view, scheme, o, error);
    } else if (cfg.method == "gptq") {
      nq::GPTQOptions o;
      o.damp = damp;
      o.actOrder = actOrder;
      auto r = nq::quantizeGPTQ(view, ls->hessian()->hessian(), scheme, o,
                                error);
      if (r)
        q = std::move(r->weight);
    } else if (cfg.method == "awq") {
      auto r = nq::quantizeAWQ(view, ls->hessian()->gram(), ls->meanAbs(),
                               ls->meanSq(), scheme, error);
      if (r) {
        q = std::move(r->weight);
        awqScales = std::move(r->scales);
      }
    } else {
      return op.emitError("unknown method '")
             << cfg.method << "' (expected rtn, rtn-mse, imatrix, gptq, awq)";
    }
    if (!q)
      return op.emitError(name) << ": " << error;
    if (memo == memo_.end())
      memo_[memoKey] = Memo{*w, *q, awqScales};

    // IR: packed codes, scales, zero points, nibble.matmul.
    OpBuilder b(op);
    Location loc = op.getLoc();
    Type f32 = b.getF32Type();
    const int64_t groups = q->groups();
    auto granularity = cfg.group == 0 ? GranularityKind::PerChannel
                                      : GranularityKind::Group;
    // per_channel<0>: one scale per output row; group<1, G>: G consecutive
    // input columns of a row.
    SmallVector<int64_t> blockShape;
    if (cfg.group != 0)
      blockShape.push_back(cfg.group);
    // Scale storage: f32; E8M0 codes (MX); or e4m3fn codes that are
    // themselves a per-tensor-scaled tensor (NVFP4-style two levels).
    Type scaleElem = f32;
    Attribute scaleScheme;
    if (*storage == nq::ScaleStorage::E8M0)
      scaleElem = b.getType<Float8E8M0FNUType>();
    else if (*storage == nq::ScaleStorage::E4M3)
      scaleScheme = SchemeAttr::get(
          ctx, parseFormat(ctx, "e4m3fn"),
          GranularityKind::PerTensor, 0, {}, f32, Type(), Attribute(),
          Attribute());
    auto schemeAttr = SchemeAttr::get(
        ctx, fmtAttr, granularity, cfg.group == 0 ? 0 : 1, blockShape,
        scaleElem, cfg.symmetric ? Type() : f32, scaleScheme, Attribute());
    const unsigned bits = unsigned(fmtAttr.getBitWidth());
    std::vector<uint8_t> packed(
        ::nibble::formats::packedByteCount(q->codes.size(), bits));
    ::nibble::formats::packCodes(q->codes.data(), q->codes.size(), bits,
                                 packed.data());
    auto qType = QTensorType::get(ctx, {n, k}, schemeAttr);
    Value codes = ConstantOp::create(
        b, loc, qType,
        DenseResourceElementsAttr::get(
            RankedTensorType::get({int64_t(packed.size())}, b.getI8Type()),
            name + ".codes",
            HeapAsmResourceBlob::allocateAndCopyWithAlign(
                ArrayRef<char>(reinterpret_cast<char *>(packed.data()),
                               packed.size()),
                64)));
    auto scaleType = RankedTensorType::get({n, groups}, f32);
    Value scales, scaleScales;
    if (*storage == nq::ScaleStorage::F32) {
      scales = resourceConstant(
          b, loc, name + ".scales", scaleType,
          ArrayRef<char>(reinterpret_cast<const char *>(q->scales.data()),
                         q->scales.size() * 4));
    } else {
      // One byte per group: the code the library's (exactly
      // representable) scale stands for.
      const bool e8m0 = *storage == nq::ScaleStorage::E8M0;
      const ::nibble::formats::Format sf =
          e8m0 ? ::nibble::formats::Format::e8m0fnu()
               : ::nibble::formats::Format::e4m3fn();
      std::vector<uint8_t> codes8(q->scales.size());
      for (size_t i = 0; i < codes8.size(); ++i)
        codes8[i] = uint8_t(sf.encode(q->scales[i] / q->tensorScale));
      ArrayRef<char> bytes(reinterpret_cast<const char *>(codes8.data()),
                           codes8.size());
      if (e8m0) {
        scales = resourceConstant(
            b, loc, name + ".scales",
            RankedTensorType::get({n, groups}, scaleElem), bytes);
      } else {
        auto inner = cast<SchemeAttr>(scaleScheme);
        scales = ConstantOp::create(
            b, loc, QTensorType::get(ctx, {n, groups}, inner),
            DenseResourceElementsAttr::get(
                RankedTensorType::get({int64_t(codes8.size())},
                                      b.getI8Type()),
                name + ".scales",
                HeapAsmResourceBlob::allocateAndCopyWithAlign(bytes, 64)));
        scaleScales = floatConstant(b, loc, name + ".scale_scales", {1, 1},
                                    {q->tensorScale}, f32);
      }
    }
    Value zps;
    if (!cfg.symmetric)
      zps = resourceConstant(
          b, loc, name + ".zero_points", scaleType,
          ArrayRef<char>(reinterpret_cast<const char *>(q->zeroPoints.data()),
                         q->zeroPoints.size() * 4));
    if (!awqScales.empty()) {
      // x / s on the input (W was multiplied by s before rounding).
      std::vector<float> inv(awqScales.size());
      for (size_t j = 0; j < inv.size(); ++j)
        inv[j] = 1.0f / awqScales[j];
      x = scaleColumns(b, loc, x,
                       floatConstant(b, loc, name + ".awq_inverse_scales", {k},
                                     inv, f32));
    }
    auto mm = MatmulOp::create(b, loc, op.getResult(0).getType(), x, codes,
                               scales, zps, scaleScales, Attribute(),
                               FloatAttr());
    // Keep what earlier passes recorded (input multiplier, outlier
    // channels, fold structure) for later ones.
    for (NamedAttribute a : op->getDiscardableAttrs())
      if (a.getName().getValue().starts_with("nibble."))
        mm->setAttr(a.getName(), a.getValue());
    mm->setAttr("nibble.linear", b.getStringAttr(name));
    mm->setAttr("nibble.method", b.getStringAttr(cfg.method));
    // What was lost, for the card: the relative squared error of the
    // weights it quantized (not for unfolded AWQ, whose codes stand for
    // rescaled weights) and the stored bits per weight, scales included.
    if (awqScales.empty()) {
      double norm = 0;
      for (float v : *w)
        norm += double(v) * double(v);
      if (norm > 0)
        mm->setAttr("nibble.weight_error",
                    b.getF64FloatAttr(nq::weightedError(view, *q) / norm));
    }
    nq::WeightScheme stored = scheme;
    stored.groupSize = q->groupSize;
    mm->setAttr("nibble.bits_per_weight",
                b.getF64FloatAttr(nq::storedBitsPerWeight(
                    stored, q->rows, q->cols, unsigned(bits))));
    op.getResult(0).replaceAllUsesWith(mm.getResult());
    op.erase();
    return success();
  }
};

} // namespace
