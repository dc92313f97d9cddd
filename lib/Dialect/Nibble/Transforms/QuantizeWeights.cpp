//===- QuantizeWeights.cpp - Float linears -> nibble.matmul ---------------===//
//
// The numerical work is done by the plain C++ rounding library
// (nibble/Quant); this pass only finds the linears, reads their bound
// weights, picks the per-layer configuration (options or recipe) and writes
// the result back as nibble IR.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Formats/Half.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Quant/Smooth.h"
#include "nibble/Quant/Stats.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Regex.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEQUANTIZEWEIGHTS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;
namespace nq = ::nibble::quant;

namespace {

/// One layer's configuration.
struct LayerConfig {
  bool skip = false;
  std::string method, format;
  int64_t group = 0;
  bool symmetric = true;
};

struct RecipeRule {
  llvm::Regex pattern;
  LayerConfig config;
};

/// Format option text -> format attribute text.
std::string formatAttrText(StringRef name) {
  if (name.starts_with("#"))
    return name.str();
  unsigned bits;
  if (name.consume_front("uint") && !name.getAsInteger(10, bits))
    return "#nibble.int<" + std::to_string(bits) + ", unsigned>";
  if (name.consume_front("int") && !name.getAsInteger(10, bits))
    return "#nibble.int<" + std::to_string(bits) + ", signed>";
  if (name == "nf4")
    return "#nibble.lut<nf4>";
  return "#nibble.float<" + name.str() + ">";
}

/// The weight of a bound dense_resource constant as floats.
FailureOr<std::vector<float>> readWeight(Operation *op, Value v) {
  auto cst = v.getDefiningOp<arith::ConstantOp>();
  auto attr = cst ? dyn_cast<DenseResourceElementsAttr>(cst.getValue())
                  : DenseResourceElementsAttr();
  if (!attr)
    return op->emitError("the weight is not a dense_resource constant"),
           failure();
  AsmResourceBlob *blob = attr.getRawHandle().getBlob();
  if (!blob)
    return op->emitError("the weight dense_resource<")
               << attr.getRawHandle().getKey()
               << "> has no data: bind it first (nibble-bind-weights)",
           failure();
  ArrayRef<char> bytes = blob->getData();
  Type et = attr.getType().getElementType();
  size_t n = size_t(attr.getType().getNumElements());
  std::vector<float> out(n);
  if (et.isF32() && bytes.size() == n * 4)
    std::memcpy(out.data(), bytes.data(), n * 4);
  else if (et.isF16() && bytes.size() == n * 2)
    ::nibble::formats::halfToFloat(bytes.data(), out.data(), n);
  else if (et.isBF16() && bytes.size() == n * 2)
    ::nibble::formats::bf16ToFloat(bytes.data(), out.data(), n);
  else
    return op->emitError("the weight must hold f32, f16 or bf16 data of its "
                         "type's size"),
           failure();
  return out;
}

Value resourceConstant(OpBuilder &b, Location loc, const std::string &name,
                       RankedTensorType type, ArrayRef<char> bytes) {
  auto blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(bytes, 64);
  return arith::ConstantOp::create(
      b, loc, DenseResourceElementsAttr::get(type, name, std::move(blob)));
}

struct QuantizeWeightsPass
    : public mlir::nibble::impl::NibbleQuantizeWeightsBase<QuantizeWeightsPass> {
  using NibbleQuantizeWeightsBase::NibbleQuantizeWeightsBase;

  LogicalResult loadRecipe(std::vector<RecipeRule> &rules) {
    if (recipePath.empty())
      return success();
    auto buf = llvm::MemoryBuffer::getFile(recipePath);
    if (!buf)
      return getOperation().emitError("cannot open recipe ")
             << recipePath << ": " << buf.getError().message();
    auto json = llvm::json::parse((*buf)->getBuffer());
    if (!json)
      return getOperation().emitError("recipe ")
             << recipePath << ": " << llvm::toString(json.takeError());
    const llvm::json::Object *root = json->getAsObject();
    const llvm::json::Array *arr = root ? root->getArray("rules") : nullptr;
    if (!arr)
      return getOperation().emitError("recipe ")
             << recipePath << ": expected an object with a 'rules' array";
    for (size_t i = 0; i < arr->size(); ++i) {
      const llvm::json::Object *r = (*arr)[i].getAsObject();
      auto where = [&]() {
        return getOperation().emitError("recipe ")
               << recipePath << ": rules[" << i << "]";
      };
      if (!r || !r->getString("match"))
        return where() << " needs a string 'match' (a regex on layer names)";
      RecipeRule rule{llvm::Regex(*r->getString("match")), {}};
      std::string regexError;
      if (!rule.pattern.isValid(regexError))
        return where() << ": bad regex: " << regexError;
      LayerConfig &c = rule.config;
      c.skip = r->getBoolean("skip").value_or(false);
      c.method = r->getString("method").value_or(method).str();
      c.format = r->getString("format").value_or(format).str();
      c.group = r->getInteger("group").value_or(group);
      c.symmetric = r->getBoolean("symmetric").value_or(symmetric);
      for (const auto &kv : *r)
        if (!llvm::is_contained({"match", "skip", "method", "format", "group",
                                 "symmetric"},
                                kv.first.str()))
          return where() << ": unknown key '" << kv.first.str() << "'";
      rules.push_back(std::move(rule));
    }
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::vector<RecipeRule> rules;
    if (failed(loadRecipe(rules)))
      return signalPassFailure();
    std::optional<nq::StatsFile> stats;
    if (!statsPath.empty()) {
      std::string error;
      stats = nq::StatsFile::load(statsPath, error);
      if (!stats) {
        module.emitError(error);
        return signalPassFailure();
      }
    }
    SmallVector<linalg::MatmulOp> matmuls;
    module.walk([&](linalg::MatmulOp op) {
      if (op->hasAttr("nibble.linear"))
        matmuls.push_back(op);
    });
    for (linalg::MatmulOp op : matmuls) {
      std::string name =
          op->getAttrOfType<StringAttr>("nibble.linear").getValue().str();
      LayerConfig cfg{false, method, format, group, symmetric};
      for (const RecipeRule &r : rules)
        if (r.pattern.match(name)) {
          cfg = r.config;
          break;
        }
      if (cfg.skip)
        continue;
      if (failed(quantizeOne(op, name, cfg, stats ? &*stats : nullptr)))
        return signalPassFailure();
    }
  }

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

    auto fmtAttr = dyn_cast_or_null<NumberFormatAttrInterface>(
        parseAttribute(formatAttrText(cfg.format), ctx));
    if (!fmtAttr)
      return op.emitError("unknown weight format '") << cfg.format << "'";
    nq::WeightScheme scheme;
    scheme.format = fmtAttr.getFormat();
    scheme.groupSize = cfg.group;
    scheme.symmetric = cfg.symmetric;

    const nq::LinearStats *ls = stats ? stats->find(name) : nullptr;
    bool needsStats = cfg.method == "gptq" || cfg.method == "awq" ||
                      cfg.method == "imatrix";
    if (needsStats && !ls)
      return op.emitError("method '")
             << cfg.method << "' for '" << name
             << "' needs calibration statistics of that layer (stats=FILE)";
    if ((cfg.method == "gptq" || cfg.method == "awq") && !ls->hasHessian())
      return op.emitError("the statistics of '")
             << name << "' have no Hessian (calibrate without --no-hessian)";
    if (ls && ls->k() != k)
      return op.emitError("the statistics of '")
             << name << "' have " << ls->k() << " channels, the layer " << k;

    std::string error;
    nq::MatrixView view{w->data(), n, k};
    std::optional<nq::QuantizedWeight> q;
    std::vector<float> awqScales;
    if (cfg.method == "rtn" || cfg.method == "rtn-mse" ||
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
    auto schemeAttr = SchemeAttr::get(
        ctx, fmtAttr, granularity, cfg.group == 0 ? 0 : 1, blockShape, f32,
        cfg.symmetric ? Type() : f32, Attribute(), Attribute());
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
    Value scales = resourceConstant(
        b, loc, name + ".scales", scaleType,
        ArrayRef<char>(reinterpret_cast<const char *>(q->scales.data()),
                       q->scales.size() * 4));
    Value zps;
    if (!cfg.symmetric)
      zps = resourceConstant(
          b, loc, name + ".zero_points", scaleType,
          ArrayRef<char>(reinterpret_cast<const char *>(q->zeroPoints.data()),
                         q->zeroPoints.size() * 4));
    if (!awqScales.empty()) {
      // x / s on the input (W was multiplied by s before rounding).
      auto xType = cast<RankedTensorType>(x.getType());
      std::vector<float> inv(awqScales.size());
      for (size_t j = 0; j < inv.size(); ++j)
        inv[j] = 1.0f / awqScales[j];
      Value invC = resourceConstant(
          b, loc, name + ".awq_inverse_scales",
          RankedTensorType::get({k}, f32),
          ArrayRef<char>(reinterpret_cast<const char *>(inv.data()),
                         inv.size() * 4));
      AffineMap id = b.getMultiDimIdentityMap(2);
      AffineMap col = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, ctx);
      Value empty = tensor::EmptyOp::create(b, loc, xType.getShape(), f32);
      x = linalg::GenericOp::create(
              b, loc, TypeRange{xType}, ValueRange{x, invC}, ValueRange{empty},
              ArrayRef<AffineMap>{id, col, id},
              ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                            utils::IteratorType::parallel},
              [](OpBuilder &ob, Location l, ValueRange a) {
                linalg::YieldOp::create(
                    ob, l, ValueRange{arith::MulFOp::create(ob, l, a[0], a[1])});
              })
              .getResult(0);
    }
    auto mm = MatmulOp::create(b, loc, op.getResult(0).getType(), x, codes,
                               scales, zps, Value(), Attribute());
    mm->setAttr("nibble.linear", b.getStringAttr(name));
    mm->setAttr("nibble.method", b.getStringAttr(cfg.method));
    op.getResult(0).replaceAllUsesWith(mm.getResult());
    op.erase();
    return success();
  }
};

} // namespace
