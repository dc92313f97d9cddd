//===- LowerToLinalg.cpp - Reference lowering of nibble ops ---------------===//
//
// The numerical oracle of Nibble: quantize / dequantize / matmul / constant
// become linalg.generic ops on tensors that follow the dialect's semantics
// literally. Formats are only seen through NumberFormatAttrInterface: decode
// is a lookup in the table of all codes, encode a branchless binary search
// over the format's rounding thresholds, both derived from the format library.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/IR/FormatCodegen.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Formats/Format.h"

#include "mlir/Dialect/Func/Transforms/FuncConversions.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLELOWERTOLINALG
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;
using namespace mlir::nibble::codegen;
namespace fmt = ::nibble::formats;

namespace {

/// Any scalar scale / zero point / activation -> f32.
static Value emitToF32(OpBuilder &b, Location loc, Value v,
                       llvm::DenseMap<Type, FormatTableValues> &smallFloats) {
  Type t = v.getType();
  Type f32 = b.getF32Type();
  if (t == f32)
    return v;
  if (auto it = llvm::dyn_cast<IntegerType>(t))
    return arith::SIToFPOp::create(b, loc, f32, v);
  auto ft = llvm::cast<FloatType>(t);
  if (auto small = getSmallFloatTypeFormat(ft)) {
    auto found = smallFloats.find(t);
    assert(found != smallFloats.end() && "small-float table not prepared");
    Value bits = arith::BitcastOp::create(
        b, loc, b.getIntegerType(ft.getWidth()), v);
    Value idx = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), bits);
    return tensor::ExtractOp::create(b, loc, found->second.decode,
                                     ValueRange{idx});
  }
  if (ft.getWidth() < 32)
    return arith::ExtFOp::create(b, loc, f32, v);
  return arith::TruncFOp::create(b, loc, f32, v);
}

static Value emitFromF32(OpBuilder &b, Location loc, Value v, Type to) {
  if (to == v.getType())
    return v;
  return arith::TruncFOp::create(b, loc, to, v);
}

//===----------------------------------------------------------------------===//
// Tensor-level builders
//===----------------------------------------------------------------------===//

/// What one (de)quantization needs besides the data: the block sizes, the
/// float (already dequantized for two-level schemes) scales and zero points.
struct ScaleInfo {
  SmallVector<int64_t> block;
  Value scales;     // tensor<scale shape x T>
  Value zeroPoints; // may be null
};

class Lowering {
public:
  Lowering(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  /// Prepare decode tables for a small builtin float scale type.
  void prepareScaleType(Type t) {
    if (smallFloats.count(t))
      return;
    if (auto f = getSmallFloatTypeFormat(t))
      smallFloats[t] = materializeTables(b, loc, *f);
  }

  ScaleInfo scaleInfo(SchemeAttr scheme, ArrayRef<int64_t> shape,
                      Value scales, Value zeroPoints, Value scaleScales) {
    ScaleInfo info;
    info.block = scheme.getBlockSizes(shape);
    info.zeroPoints = zeroPoints;
    if (zeroPoints)
      prepareScaleType(
          llvm::cast<RankedTensorType>(zeroPoints.getType()).getElementType());
    if (SchemeAttr inner = scheme.getScaleSchemeAttr()) {
      SmallVector<int64_t> scaleShape = scheme.getScaleShape(shape);
      ScaleInfo innerInfo =
          scaleInfo(inner, scaleShape, scaleScales, Value(), Value());
      info.scales = dequantize(scales, inner, scaleShape, innerInfo,
                               b.getF32Type());
    } else {
      info.scales = scales;
      prepareScaleType(
          llvm::cast<RankedTensorType>(scales.getType()).getElementType());
    }
    return info;
  }

  /// codes (tensor<S x i8>) -> tensor<S x outType>.
  Value dequantize(Value codes, SchemeAttr scheme, ArrayRef<int64_t> shape,
                   const ScaleInfo &info, Type outType) {
    FormatTableValues tv =
        materializeTables(b, loc, scheme.getFormatAttr().getFormat());
    return elementwise(codes, shape, outType,
                       [&](OpBuilder &nb, Location l, Value code,
                           ValueRange ivs) {
                         Value v = emitDecode(nb, l, code, tv);
                         auto [s, zp] = loadScale(nb, l, info, ivs);
                         if (zp)
                           v = arith::SubFOp::create(nb, l, v, zp);
                         v = arith::MulFOp::create(nb, l, v, s);
                         return emitFromF32(nb, l, v, outType);
                       });
  }

  /// floats (tensor<S x f*>) -> codes tensor<S x i8>.
  Value quantize(Value input, SchemeAttr scheme, ArrayRef<int64_t> shape,
                 const ScaleInfo &info) {
    FormatTableValues tv =
        materializeTables(b, loc, scheme.getFormatAttr().getFormat());
    return elementwise(input, shape, b.getI8Type(),
                       [&](OpBuilder &nb, Location l, Value x,
                           ValueRange ivs) {
                         Value y = emitToF32(nb, l, x, smallFloats);
                         auto [s, zp] = loadScale(nb, l, info, ivs);
                         y = arith::DivFOp::create(nb, l, y, s);
                         if (zp)
                           y = arith::AddFOp::create(nb, l, y, zp);
                         return emitEncode(nb, l, y, tv);
                       });
  }

  /// Packed bytes (tensor<N x i8>) in the canonical dense LSB-first layout ->
  /// one code per element.
  Value unpack(Value bytes, int64_t numBytes, ArrayRef<int64_t> shape,
               unsigned bits) {
    SmallVector<int64_t> strides(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i)
      strides[i] = strides[i + 1] * shape[i + 1];
    return elementwise(
        Value(), shape, b.getI8Type(),
        [&](OpBuilder &nb, Location l, Value, ValueRange ivs) {
          auto ci = [&](int64_t v) { return cIndex(nb, l, v); };
          Value flat = ci(0);
          for (auto [iv, stride] : llvm::zip_equal(ivs, strides))
            flat = arith::AddIOp::create(
                nb, l, flat, arith::MulIOp::create(nb, l, iv, ci(stride)));
          Value bit = arith::MulIOp::create(nb, l, flat, ci(bits));
          Value byte = arith::DivUIOp::create(nb, l, bit, ci(8));
          Value shift = arith::RemUIOp::create(nb, l, bit, ci(8));
          Value byte1 = arith::MinUIOp::create(
              nb, l, arith::AddIOp::create(nb, l, byte, ci(1)),
              ci(numBytes - 1));
          Type i32 = nb.getI32Type();
          auto load = [&](Value at) -> Value {
            Value v = tensor::ExtractOp::create(nb, l, bytes, ValueRange{at});
            return arith::ExtUIOp::create(nb, l, i32, v);
          };
          Value shift32 = arith::IndexCastUIOp::create(nb, l, i32, shift);
          Value lo = arith::ShRUIOp::create(nb, l, load(byte), shift32);
          Value hiShift = arith::SubIOp::create(
              nb, l, arith::ConstantIntOp::create(nb, l, i32, 8), shift32);
          Value hi = arith::ShLIOp::create(nb, l, load(byte1), hiShift);
          Value straddles = arith::CmpIOp::create(
              nb, l, arith::CmpIPredicate::ugt,
              arith::AddIOp::create(nb, l, shift, ci(bits)), ci(8));
          Value both = arith::OrIOp::create(nb, l, lo, hi);
          Value v = arith::SelectOp::create(nb, l, straddles, both, lo);
          v = arith::AndIOp::create(
              nb, l, v,
              arith::ConstantIntOp::create(nb, l, i32, (1u << bits) - 1));
          return arith::TruncIOp::create(nb, l, nb.getI8Type(), v);
        });
  }

  /// Per-row symmetric dynamic fake quantization of activations (M x K, f32)
  /// in `format`: scale = max|x[m,:]| / max(format), 1 when the row is zero.
  /// Symmetric fake quantization of each row of x to `format`, with the
  /// row's own scale max|x_row| / max(format) (1 for a zero row) or, when
  /// `fixedScale` is given, that scale for every row.
  Value fakeQuantizeRows(Value x, ArrayRef<int64_t> shape,
                         const fmt::Format &format,
                         std::optional<float> fixedScale) {
    Type f32 = b.getF32Type();
    FormatTableValues tv = materializeTables(b, loc, format);
    Value absmax;
    if (!fixedScale) {
      MLIRContext *ctx = b.getContext();
      Value init = tensor::EmptyOp::create(
          b, loc, ArrayRef<int64_t>{shape[0]}, f32);
      Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
      Value acc = linalg::FillOp::create(b, loc, zero, init).getResult(0);
      AffineMap id = AffineMap::getMultiDimIdentityMap(2, ctx);
      AffineMap row = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
      absmax =
          linalg::GenericOp::create(
              b, loc, TypeRange{acc.getType()}, ValueRange{x}, ValueRange{acc},
              ArrayRef<AffineMap>{id, row},
              ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                            utils::IteratorType::reduction},
              [&](OpBuilder &nb, Location l, ValueRange args) {
                Value a = math::AbsFOp::create(nb, l, args[0]);
                linalg::YieldOp::create(
                    nb, l,
                    ValueRange{arith::MaximumFOp::create(nb, l, a, args[1])});
              })
              .getResult(0);
    }
    float maxVal = format.maxValue();
    return elementwise(
        x, shape, f32, [&](OpBuilder &nb, Location l, Value v, ValueRange ivs) {
          auto cst = [&](float f) {
            return arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(f))
                .getResult();
          };
          Value s;
          if (fixedScale) {
            s = cst(*fixedScale);
          } else {
            Value am =
                tensor::ExtractOp::create(nb, l, absmax, ValueRange{ivs[0]});
            s = arith::DivFOp::create(nb, l, am, cst(maxVal));
            Value isZero = arith::CmpFOp::create(
                nb, l, arith::CmpFPredicate::OEQ, s, cst(0.0f));
            s = arith::SelectOp::create(nb, l, isZero, cst(1.0f), s);
          }
          Value q = emitEncode(nb, l, arith::DivFOp::create(nb, l, v, s), tv);
          return arith::MulFOp::create(nb, l, emitDecode(nb, l, q, tv), s);
        });
  }

  /// y[m, n] = sum_k x[m, k] * w[n, k] in f32, ascending k.
  Value matmulTransposedB(Value x, Value w, int64_t m, int64_t n) {
    MLIRContext *ctx = b.getContext();
    Type f32 = b.getF32Type();
    Value init = tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{m, n}, f32);
    Value zero = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
    Value acc = linalg::FillOp::create(b, loc, zero, init).getResult(0);
    auto d = [&](unsigned i) { return getAffineDimExpr(i, ctx); };
    SmallVector<AffineMap> maps = {AffineMap::get(3, 0, {d(0), d(2)}, ctx),
                                   AffineMap::get(3, 0, {d(1), d(2)}, ctx),
                                   AffineMap::get(3, 0, {d(0), d(1)}, ctx)};
    return linalg::GenericOp::create(
               b, loc, TypeRange{acc.getType()}, ValueRange{x, w},
               ValueRange{acc}, maps,
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                             utils::IteratorType::parallel,
                                             utils::IteratorType::reduction},
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 Value p = arith::MulFOp::create(nb, l, args[0], args[1]);
                 linalg::YieldOp::create(
                     nb, l, ValueRange{arith::AddFOp::create(nb, l, args[2], p)});
               })
        .getResult(0);
  }

  /// Element-wise linalg.generic over `shape` producing `outType`; `input`
  /// may be null (then the body gets a null value and only the indices).
  Value elementwise(
      Value input, ArrayRef<int64_t> shape, Type outType,
      function_ref<Value(OpBuilder &, Location, Value, ValueRange)> body) {
    MLIRContext *ctx = b.getContext();
    int64_t rank = shape.size();
    Value init = tensor::EmptyOp::create(b, loc, shape, outType);
    AffineMap id = AffineMap::getMultiDimIdentityMap(rank, ctx);
    SmallVector<AffineMap> maps;
    SmallVector<Value> inputs;
    if (input) {
      inputs.push_back(input);
      maps.push_back(id);
    }
    maps.push_back(id);
    SmallVector<utils::IteratorType> iters(rank,
                                           utils::IteratorType::parallel);
    return linalg::GenericOp::create(
               b, loc, TypeRange{init.getType()}, inputs, ValueRange{init},
               maps, iters,
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 SmallVector<Value> ivs;
                 for (int64_t i = 0; i < rank; ++i)
                   ivs.push_back(linalg::IndexOp::create(nb, l, i));
                 Value r = body(nb, l, input ? args[0] : Value(), ivs);
                 linalg::YieldOp::create(nb, l, ValueRange{r});
               })
        .getResult(0);
  }

private:
  /// Scale (and zero point) of the element at `ivs`, as f32.
  std::pair<Value, Value> loadScale(OpBuilder &nb, Location l,
                                    const ScaleInfo &info, ValueRange ivs) {
    SmallVector<Value> sIdx;
    for (auto [iv, blk] : llvm::zip_equal(ivs, info.block))
      sIdx.push_back(blk == 1 ? iv
                              : arith::DivUIOp::create(nb, l, iv,
                                                       cIndex(nb, l, blk))
                                    .getResult());
    Value s = emitToF32(
        nb, l, tensor::ExtractOp::create(nb, l, info.scales, sIdx),
        smallFloats);
    Value zp;
    if (info.zeroPoints)
      zp = emitToF32(
          nb, l, tensor::ExtractOp::create(nb, l, info.zeroPoints, sIdx),
          smallFloats);
    return {s, zp};
  }

  OpBuilder &b;
  Location loc;
  llvm::DenseMap<Type, FormatTableValues> smallFloats;
};

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

struct QuantizeLowering : OpConversionPattern<QuantizeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(QuantizeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    QTensorType type = op.getResult().getType();
    Lowering low(rewriter, op.getLoc());
    ScaleInfo info =
        low.scaleInfo(type.getScheme(), type.getShape(), adaptor.getScales(),
                      adaptor.getZeroPoints(), adaptor.getScaleScales());
    rewriter.replaceOp(op, low.quantize(adaptor.getInput(), type.getScheme(),
                                        type.getShape(), info));
    return success();
  }
};

struct DequantizeLowering : OpConversionPattern<DequantizeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(DequantizeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    QTensorType type = op.getInput().getType();
    Lowering low(rewriter, op.getLoc());
    ScaleInfo info =
        low.scaleInfo(type.getScheme(), type.getShape(), adaptor.getScales(),
                      adaptor.getZeroPoints(), adaptor.getScaleScales());
    rewriter.replaceOp(
        op, low.dequantize(adaptor.getInput(), type.getScheme(),
                           type.getShape(), info,
                           op.getResult().getType().getElementType()));
    return success();
  }
};

struct MatmulLowering : OpConversionPattern<MatmulOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(MatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    QTensorType wType = op.getWeight().getType();
    auto xType = op.getInput().getType();
    auto yType = op.getResult().getType();
    Lowering low(rewriter, op.getLoc());
    Type f32 = rewriter.getF32Type();
    ScaleInfo info =
        low.scaleInfo(wType.getScheme(), wType.getShape(), adaptor.getScales(),
                      adaptor.getZeroPoints(), adaptor.getScaleScales());
    Value w = low.dequantize(adaptor.getWeight(), wType.getScheme(),
                             wType.getShape(), info, f32);
    Value x = adaptor.getInput();
    llvm::DenseMap<Type, FormatTableValues> none;
    if (xType.getElementType() != f32)
      x = low.elementwise(x, xType.getShape(), f32,
                          [&](OpBuilder &nb, Location l, Value v, ValueRange) {
                            return emitToF32(nb, l, v, none);
                          });
    if (auto act = op.getActFormatAttr())
      x = low.fakeQuantizeRows(
          x, xType.getShape(),
          llvm::cast<NumberFormatAttrInterface>(act).getFormat(),
          op.getActScaleAttr()
              ? std::optional<float>(op.getActScaleAttr().getValueAsDouble())
              : std::nullopt);
    Value y = low.matmulTransposedB(x, w, xType.getDimSize(0),
                                    wType.getShape()[0]);
    if (yType.getElementType() != f32)
      y = low.elementwise(y, yType.getShape(), yType.getElementType(),
                          [&](OpBuilder &nb, Location l, Value v, ValueRange) {
                            return emitFromF32(nb, l, v,
                                               yType.getElementType());
                          });
    rewriter.replaceOp(op, y);
    return success();
  }
};

struct ConstantLowering : OpConversionPattern<ConstantOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(ConstantOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    QTensorType type = op.getResult().getType();
    int64_t numBytes = type.getPackedByteCount();
    auto elements = llvm::dyn_cast<TypedAttr>(op.getValue());
    if (!elements)
      return rewriter.notifyMatchFailure(op, "external payload not loaded");
    Location loc = op.getLoc();
    Value bytes = arith::ConstantOp::create(rewriter, loc, elements);
    Lowering low(rewriter, loc);
    rewriter.replaceOp(
        op, low.unpack(bytes, numBytes, type.getShape(),
                       type.getScheme().getFormatAttr().getBitWidth()));
    return success();
  }
};

/// Replace a #nibble.external payload by the bytes it refers to, or report
/// which file, offset and size could not be read.
static LogicalResult loadExternalPayload(ConstantOp op, StringRef weightsDir) {
  auto ext = llvm::dyn_cast<ExternalWeightsAttr>(op.getValue());
  if (!ext)
    return success();
  QTensorType type = op.getResult().getType();
  int64_t numBytes = type.getPackedByteCount();
  SmallString<256> path(ext.getPath().getValue());
  if (!weightsDir.empty() && llvm::sys::path::is_relative(path)) {
    SmallString<256> full(weightsDir);
    llvm::sys::path::append(full, path);
    path = full;
  }
  auto buf = llvm::MemoryBuffer::getFileSlice(path, numBytes, ext.getOffset(),
                                              /*IsVolatile=*/false);
  if (!buf)
    return op.emitOpError() << "cannot read " << numBytes
                            << " bytes at offset " << ext.getOffset() << " of '"
                            << path << "': " << buf.getError().message();
  if (static_cast<int64_t>((*buf)->getBufferSize()) != numBytes)
    return op.emitOpError() << "'" << path << "' ends before offset "
                            << ext.getOffset() + numBytes << " (expected "
                            << numBytes << " bytes at offset "
                            << ext.getOffset() << ")";
  ArrayRef<int8_t> data(
      reinterpret_cast<const int8_t *>((*buf)->getBufferStart()), numBytes);
  auto bytesType =
      RankedTensorType::get({numBytes}, IntegerType::get(op.getContext(), 8));
  op.setValueAttr(DenseElementsAttr::get(bytesType, data));
  return success();
}

struct ObserveLowering : OpConversionPattern<ObserveOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(ObserveOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.eraseOp(op);
    return success();
  }
};

struct NibbleLowerToLinalgPass
    : mlir::nibble::impl::NibbleLowerToLinalgBase<NibbleLowerToLinalgPass> {
  using Base::Base;

  /// nibble.observe "NAME" %x -> func.call @nibble_observe_f32(%id, %x*)
  /// with %x cast to tensor<*xf32>; the module attribute nibble.probes
  /// lists the names by id (existing entries are kept, so ids stay stable
  /// when probes are lowered in several steps).
  LogicalResult lowerProbesToCalls() {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    SmallVector<ObserveOp> probeOps;
    module.walk([&](ObserveOp op) { probeOps.push_back(op); });
    if (probeOps.empty())
      return success();
    SmallVector<Attribute> names;
    if (auto existing = module->getAttrOfType<ArrayAttr>("nibble.probes"))
      names.assign(existing.begin(), existing.end());
    llvm::StringMap<int64_t> ids;
    for (auto [i, a] : llvm::enumerate(names))
      ids[cast<StringAttr>(a).getValue()] = int64_t(i);
    OpBuilder b(ctx);
    Type f32 = b.getF32Type();
    auto unranked = UnrankedTensorType::get(f32);
    const char *callee = "nibble_observe_f32";
    if (!module.lookupSymbol<func::FuncOp>(callee)) {
      b.setInsertionPointToStart(module.getBody());
      auto decl = func::FuncOp::create(
          b, module.getLoc(), callee,
          b.getFunctionType({b.getI64Type(), unranked}, {}));
      decl.setPrivate();
      // The probe only reads x: without this, bufferization must assume
      // the external call writes it and cannot keep x in place.
      decl.setArgAttr(1, "bufferization.access", b.getStringAttr("read"));
    }
    for (ObserveOp op : probeOps) {
      auto type = dyn_cast<RankedTensorType>(op.getInput().getType());
      if (!type || !type.getElementType().isF32())
        return op.emitOpError("probes=call needs an f32 tensor, got ")
               << op.getInput().getType();
      StringRef name = op.getName();
      auto [it, inserted] = ids.try_emplace(name, int64_t(names.size()));
      if (inserted)
        names.push_back(b.getStringAttr(name));
      b.setInsertionPoint(op);
      Value id = arith::ConstantOp::create(b, op.getLoc(),
                                           b.getI64IntegerAttr(it->second));
      Value cast = tensor::CastOp::create(b, op.getLoc(), unranked,
                                          op.getInput());
      func::CallOp::create(b, op.getLoc(), callee, TypeRange{},
                           ValueRange{id, cast});
      op.erase();
    }
    module->setAttr("nibble.probes", b.getArrayAttr(names));
    return success();
  }

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    TypeConverter converter;
    converter.addConversion([](Type t) { return t; });
    converter.addConversion([](QTensorType t) -> Type {
      return RankedTensorType::get(t.getShape(),
                                   IntegerType::get(t.getContext(), 8));
    });
    auto materialize = [](OpBuilder &b, Type type, ValueRange inputs,
                          Location loc) -> Value {
      return UnrealizedConversionCastOp::create(b, loc, type, inputs)
          .getResult(0);
    };
    converter.addSourceMaterialization(materialize);
    converter.addTargetMaterialization(materialize);

    // Reject layouts the reference cannot interpret with a clear message.
    WalkResult walk = getOperation()->walk([&](Operation *op) {
      for (Type t : llvm::concat<Type>(op->getOperandTypes(),
                                       op->getResultTypes()))
        if (auto q = llvm::dyn_cast<QTensorType>(t))
          if (q.getScheme().getLayout()) {
            op->emitOpError() << "uses layout " << q.getScheme().getLayout()
                              << ", which the reference lowering does not "
                                 "understand (it reads the canonical dense "
                                 "LSB-first layout only)";
            return WalkResult::interrupt();
          }
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    WalkResult loaded = getOperation()->walk([&](ConstantOp op) {
      return failed(loadExternalPayload(op, weightsDir))
                 ? WalkResult::interrupt()
                 : WalkResult::advance();
    });
    if (loaded.wasInterrupted())
      return signalPassFailure();

    if (probes != "drop" && probes != "call") {
      getOperation().emitError("probes must be drop or call, got '")
          << probes << "'";
      return signalPassFailure();
    }
    if (probes == "call" && failed(lowerProbesToCalls()))
      return signalPassFailure();

    RewritePatternSet patterns(ctx);
    patterns.add<QuantizeLowering, DequantizeLowering, MatmulLowering,
                 ObserveLowering, ConstantLowering>(converter, ctx);
    populateFunctionOpInterfaceTypeConversionPattern<func::FuncOp>(patterns,
                                                                   converter);
    populateReturnOpTypeConversionPattern(patterns, converter);
    populateCallOpTypeConversionPattern(patterns, converter);

    ConversionTarget target(*ctx);
    target.addIllegalDialect<NibbleDialect>();
    target.addLegalDialect<arith::ArithDialect, linalg::LinalgDialect,
                           math::MathDialect, tensor::TensorDialect>();
    target.addLegalOp<UnrealizedConversionCastOp>();
    target.addDynamicallyLegalOp<func::FuncOp>([&](func::FuncOp op) {
      return converter.isSignatureLegal(op.getFunctionType()) &&
             converter.isLegal(&op.getBody());
    });
    target.addDynamicallyLegalOp<func::ReturnOp, func::CallOp>(
        [&](Operation *op) { return converter.isLegal(op); });
    target.markUnknownOpDynamicallyLegal(
        [&](Operation *op) { return converter.isLegal(op); });

    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
