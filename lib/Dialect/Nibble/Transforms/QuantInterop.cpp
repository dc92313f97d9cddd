//===- QuantInterop.cpp - Conversion to and from upstream !quant.uniform --===//
//
// Upstream keeps scales inside the type; nibble keeps them as SSA tensors.
// Both directions go through one description, `UniformDesc`: integer format,
// block sizes per dimension, scale and zero-point tensors as attributes.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"

#include "mlir/Dialect/Quant/IR/QuantTypes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Matchers.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLECONVERTFROMQUANT
#define GEN_PASS_DEF_NIBBLECONVERTTOQUANT
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;

namespace {

/// A uniform integer quantization with scales and zero points laid out with
/// the data's rank (scale shape = data shape / block sizes).
struct UniformDesc {
  unsigned width = 0;
  bool isSigned = true;
  SmallVector<int64_t> block;
  DenseElementsAttr scales;     // f32, scale shape
  DenseElementsAttr zeroPoints; // i32, scale shape; null when all zero
};

/// The scheme whose block sizes on `shape` equal `block`, if nibble has one.
static SchemeAttr schemeForBlocks(MLIRContext *ctx, Attribute format,
                                  ArrayRef<int64_t> shape,
                                  ArrayRef<int64_t> block, Type zpType) {
  Type f32 = Float32Type::get(ctx);
  int64_t rank = shape.size();
  SmallVector<SchemeAttr> candidates;
  candidates.push_back(SchemeAttr::get(ctx, format, GranularityKind::PerTensor,
                                       -1, {}, f32, zpType, {}, {}));
  for (int64_t a = 0; a < rank; ++a)
    candidates.push_back(SchemeAttr::get(ctx, format,
                                         GranularityKind::PerChannel, a, {},
                                         f32, zpType, {}, {}));
  for (int64_t a = 0; a < rank; ++a) {
    if (block[a] > 1)
      candidates.push_back(SchemeAttr::get(ctx, format, GranularityKind::Group,
                                           a, {block[a]}, f32, zpType, {},
                                           {}));
  }
  if (rank >= 2)
    candidates.push_back(SchemeAttr::get(
        ctx, format, GranularityKind::Block, -1,
        {block[rank - 2], block[rank - 1]}, f32, zpType, {}, {}));
  for (SchemeAttr s : candidates) {
    if (failed(s.verifyShape(shape, [] { return InFlightDiagnostic(); })))
      continue;
    if (s.getBlockSizes(shape) == block)
      return s;
  }
  return {};
}

//===----------------------------------------------------------------------===//
// !quant.uniform -> nibble
//===----------------------------------------------------------------------===//

static FailureOr<UniformDesc> describeQuantType(Operation *op,
                                                RankedTensorType tensorType) {
  auto qt = llvm::dyn_cast<quant::QuantizedType>(tensorType.getElementType());
  auto fail = [&](const Twine &why) -> FailureOr<UniformDesc> {
    op->emitOpError() << "cannot convert " << tensorType << " to nibble: "
                      << why;
    return failure();
  };
  if (!qt)
    return fail("not a quantized element type");
  auto storage = llvm::dyn_cast<IntegerType>(qt.getStorageType());
  if (!storage)
    return fail("storage is not an integer type");
  UniformDesc d;
  d.width = storage.getWidth();
  d.isSigned = qt.isSigned();
  if (d.width < 2 || d.width > 8)
    return fail("storage width must be 2..8 bits");
  if (qt.getStorageTypeMin() !=
          quant::QuantizedType::getDefaultMinimumForInteger(d.isSigned,
                                                            d.width) ||
      qt.getStorageTypeMax() !=
          quant::QuantizedType::getDefaultMaximumForInteger(d.isSigned,
                                                            d.width))
    return fail("narrow storage ranges are not expressible (nibble's integer "
                "formats use the full range)");
  ArrayRef<int64_t> shape = tensorType.getShape();
  if (!tensorType.hasStaticShape())
    return fail("the shape must be static");
  int64_t rank = shape.size();
  MLIRContext *ctx = op->getContext();
  SmallVector<double> scales;
  SmallVector<int64_t> zps;
  d.block.assign(shape.begin(), shape.end());
  if (auto u = llvm::dyn_cast<quant::UniformQuantizedType>(qt)) {
    scales.push_back(u.getScale());
    zps.push_back(u.getZeroPoint());
  } else if (auto pa = llvm::dyn_cast<quant::UniformQuantizedPerAxisType>(qt)) {
    int32_t axis = pa.getQuantizedDimension();
    if (axis < 0 || axis >= rank)
      return fail("quantized dimension out of range");
    d.block[axis] = 1;
    scales.assign(pa.getScales().begin(), pa.getScales().end());
    zps.assign(pa.getZeroPoints().begin(), pa.getZeroPoints().end());
  } else if (auto sc =
                 llvm::dyn_cast<quant::UniformQuantizedSubChannelType>(qt)) {
    for (auto [dim, size] :
         llvm::zip_equal(sc.getQuantizedDimensions(), sc.getBlockSizes()))
      d.block[dim] = size;
    for (APFloat v : sc.getScales().getValues<APFloat>())
      scales.push_back(v.convertToDouble());
    for (APInt v : sc.getZeroPoints().getValues<APInt>())
      zps.push_back(v.getSExtValue());
  } else {
    return fail("only !quant.uniform (per tensor, per axis, sub-channel) is "
                "supported");
  }
  SmallVector<int64_t> scaleShape;
  for (auto [s, b] : llvm::zip_equal(shape, d.block))
    scaleShape.push_back(s / b);
  SmallVector<float> fscales(scales.begin(), scales.end());
  d.scales = DenseElementsAttr::get(
      RankedTensorType::get(scaleShape, Float32Type::get(ctx)),
      ArrayRef<float>(fscales));
  if (llvm::any_of(zps, [](int64_t z) { return z != 0; })) {
    SmallVector<int32_t> izps(zps.begin(), zps.end());
    d.zeroPoints = DenseElementsAttr::get(
        RankedTensorType::get(scaleShape, IntegerType::get(ctx, 32)),
        ArrayRef<int32_t>(izps));
  }
  return d;
}

struct ConvertFromQuantPass
    : mlir::nibble::impl::NibbleConvertFromQuantBase<ConvertFromQuantPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    MLIRContext *ctx = &getContext();
    struct Converted {
      Value q, scales, zeroPoints;
    };
    llvm::DenseMap<Value, Converted> map;
    SmallVector<Operation *> toErase;
    WalkResult result = func.walk([&](Operation *op) -> WalkResult {
      OpBuilder b(op);
      if (auto qcast = llvm::dyn_cast<quant::QuantizeCastOp>(op)) {
        auto type = llvm::cast<RankedTensorType>(qcast.getResult().getType());
        FailureOr<UniformDesc> d = describeQuantType(op, type);
        if (failed(d))
          return WalkResult::interrupt();
        Type zpType = d->zeroPoints ? IntegerType::get(ctx, 32) : Type();
        auto format = IntFormatAttr::get(ctx, d->width, d->isSigned);
        SchemeAttr scheme =
            schemeForBlocks(ctx, format, type.getShape(), d->block, zpType);
        if (!scheme) {
          op->emitOpError() << "cannot convert " << type
                            << ": its blocks are not per-tensor, per-channel, "
                               "groups along one axis or 2-D blocks";
          return WalkResult::interrupt();
        }
        Location loc = op->getLoc();
        Value scales = arith::ConstantOp::create(b, loc, d->scales);
        Value zps;
        if (d->zeroPoints)
          zps = arith::ConstantOp::create(b, loc, d->zeroPoints);
        auto qtype = QTensorType::get(ctx, type.getShape(), scheme);
        Value q = QuantizeOp::create(b, loc, qtype, qcast.getInput(), scales,
                                     zps, Value());
        map[qcast.getResult()] = {q, scales, zps};
        toErase.push_back(op);
      } else if (auto dcast = llvm::dyn_cast<quant::DequantizeCastOp>(op)) {
        auto it = map.find(dcast.getInput());
        if (it == map.end()) {
          op->emitOpError() << "cannot convert: its operand is not produced by "
                               "a quant.qcast in this function";
          return WalkResult::interrupt();
        }
        Value y = DequantizeOp::create(
            b, op->getLoc(), dcast.getResult().getType(), it->second.q,
            it->second.scales, it->second.zeroPoints, Value());
        dcast.getResult().replaceAllUsesWith(y);
        toErase.push_back(op);
      }
      return WalkResult::advance();
    });
    if (result.wasInterrupted())
      return signalPassFailure();
    for (Operation *op : llvm::reverse(toErase)) {
      if (!op->use_empty()) {
        op->emitOpError() << "cannot convert: the quantized value has users "
                             "other than quant.dcast";
        return signalPassFailure();
      }
      op->erase();
    }
  }
};

//===----------------------------------------------------------------------===//
// nibble -> !quant.uniform
//===----------------------------------------------------------------------===//

/// The !quant type for `scheme` on data of `type`, or a reason why not.
static FailureOr<Type> quantTypeFor(QuantizeOp op, std::string &why) {
  QTensorType qtype = op.getResult().getType();
  SchemeAttr scheme = qtype.getScheme();
  auto intFormat = llvm::dyn_cast<IntFormatAttr>(scheme.getFormat());
  if (!intFormat) {
    why = "upstream !quant.uniform stores integers only; the format is not "
          "#nibble.int";
    return failure();
  }
  if (scheme.getScaleScheme() || scheme.getLayout()) {
    why = "two-level schemes and custom layouts have no !quant equivalent";
    return failure();
  }
  DenseElementsAttr scales, zps;
  if (!matchPattern(op.getScales(), m_Constant(&scales)) ||
      !scales.getElementType().isF32()) {
    why = "scales are not an f32 arith.constant";
    return failure();
  }
  if (op.getZeroPoints() &&
      (!matchPattern(op.getZeroPoints(), m_Constant(&zps)) ||
       !llvm::isa<IntegerType>(zps.getElementType()))) {
    why = "zero points are not an integer arith.constant";
    return failure();
  }
  MLIRContext *ctx = op.getContext();
  unsigned width = intFormat.getWidth();
  bool isSigned = intFormat.getIsSigned();
  Type storage = IntegerType::get(ctx, width);
  Type expressed = op.getInput().getType().getElementType();
  unsigned flags = isSigned ? quant::QuantizationFlags::Signed : 0;
  int64_t lo = quant::QuantizedType::getDefaultMinimumForInteger(isSigned,
                                                                 width);
  int64_t hi = quant::QuantizedType::getDefaultMaximumForInteger(isSigned,
                                                                 width);
  SmallVector<double> s;
  for (APFloat v : scales.getValues<APFloat>())
    s.push_back(v.convertToDouble());
  SmallVector<int64_t> z(s.size(), 0);
  if (zps) {
    z.clear();
    for (APInt v : zps.getValues<APInt>())
      z.push_back(v.getSExtValue());
  }
  ArrayRef<int64_t> shape = qtype.getShape();
  Type element;
  switch (scheme.getGranularity()) {
  case GranularityKind::PerTensor:
    element = quant::UniformQuantizedType::get(flags, storage, expressed, s[0],
                                               z[0], lo, hi);
    break;
  case GranularityKind::PerChannel:
    element = quant::UniformQuantizedPerAxisType::get(
        flags, storage, expressed, s, z, scheme.getAxis(), lo, hi);
    break;
  case GranularityKind::Group:
  case GranularityKind::Block: {
    SmallVector<int64_t> block = scheme.getBlockSizes(shape);
    SmallVector<int32_t> dims;
    SmallVector<int64_t> sizes;
    for (auto [i, b] : llvm::enumerate(block)) {
      dims.push_back(i);
      sizes.push_back(b);
    }
    auto zType = RankedTensorType::get(scales.getType().getShape(), storage);
    SmallVector<APInt> zv;
    for (int64_t v : z)
      zv.push_back(APInt(width, v, /*isSigned=*/true));
    auto sType = RankedTensorType::get(scales.getType().getShape(), expressed);
    SmallVector<APFloat> sv;
    for (double v : s) {
      APFloat f(v);
      bool lost;
      f.convert(llvm::cast<FloatType>(expressed).getFloatSemantics(),
                APFloat::rmNearestTiesToEven, &lost);
      sv.push_back(f);
    }
    element = quant::UniformQuantizedSubChannelType::get(
        flags, storage, expressed, DenseElementsAttr::get(sType, sv),
        DenseElementsAttr::get(zType, zv), dims, sizes, lo, hi);
    break;
  }
  }
  return Type(RankedTensorType::get(shape, element));
}

struct ConvertToQuantPass
    : mlir::nibble::impl::NibbleConvertToQuantBase<ConvertToQuantPass> {
  using Base::Base;
  void runOnOperation() override {
    bool failedAny = false;
    SmallVector<QuantizeOp> quantizes;
    getOperation().walk([&](QuantizeOp op) { quantizes.push_back(op); });
    for (QuantizeOp op : quantizes) {
      auto skip = [&](const std::string &why) {
        InFlightDiagnostic diag =
            strict ? op.emitOpError() : op.emitRemark();
        diag << "not converted to !quant.uniform: " << why;
        failedAny |= strict;
      };
      std::string why;
      FailureOr<Type> type = quantTypeFor(op, why);
      if (failed(type)) {
        skip(why);
        continue;
      }
      bool allDequant = llvm::all_of(op->getUsers(), [&](Operation *u) {
        auto dq = llvm::dyn_cast<DequantizeOp>(u);
        return dq && dq.getScales() == op.getScales() &&
               dq.getZeroPoints() == op.getZeroPoints();
      });
      if (!allDequant) {
        skip("a user is not a nibble.dequantize with the same scales and zero "
             "points");
        continue;
      }
      OpBuilder b(op);
      Value q = quant::QuantizeCastOp::create(b, op.getLoc(), *type,
                                              op.getInput());
      for (Operation *u : llvm::make_early_inc_range(op->getUsers())) {
        auto dq = llvm::cast<DequantizeOp>(u);
        OpBuilder ub(dq);
        Value y = quant::DequantizeCastOp::create(
            ub, dq.getLoc(), dq.getResult().getType(), q);
        dq.getResult().replaceAllUsesWith(y);
        dq.erase();
      }
      op.erase();
    }
    if (failedAny)
      signalPassFailure();
  }
};

} // namespace
