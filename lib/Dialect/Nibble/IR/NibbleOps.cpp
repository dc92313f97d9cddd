//===- NibbleOps.cpp - Dialect, qtensor type and op verifiers -------------===//

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Formats/Packing.h"

#include <cmath>

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::nibble;
namespace fmt = ::nibble::formats;

#include "nibble/Dialect/Nibble/IR/NibbleDialect.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "nibble/Dialect/Nibble/IR/NibbleTypes.cpp.inc"

#define GET_OP_CLASSES
#include "nibble/Dialect/Nibble/IR/NibbleOps.cpp.inc"

void NibbleDialect::initialize() {
  registerAttributes();
  registerTypes();
  addOperations<
#define GET_OP_LIST
#include "nibble/Dialect/Nibble/IR/NibbleOps.cpp.inc"
      >();
}

void NibbleDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "nibble/Dialect/Nibble/IR/NibbleTypes.cpp.inc"
      >();
}

static std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleaveComma(shape, os);
  os << "]";
  return s;
}

//===----------------------------------------------------------------------===//
// !nibble.qtensor
//===----------------------------------------------------------------------===//

LogicalResult QTensorType::verify(function_ref<InFlightDiagnostic()> emitError,
                                  ArrayRef<int64_t> shape, SchemeAttr scheme) {
  if (shape.empty())
    return emitError() << "!nibble.qtensor must have rank >= 1";
  for (int64_t d : shape)
    if (d <= 0)
      return emitError() << "!nibble.qtensor dimensions must be static and "
                            "positive, got "
                         << shapeStr(shape);
  if (!scheme)
    return emitError() << "!nibble.qtensor needs a #nibble.scheme";
  return scheme.verifyShape(shape, emitError);
}

int64_t QTensorType::getNumElements() const {
  int64_t n = 1;
  for (int64_t d : getShape())
    n *= d;
  return n;
}

int64_t QTensorType::getPackedByteCount() const {
  return static_cast<int64_t>(fmt::packedByteCount(
      getNumElements(), getScheme().getFormatAttr().getBitWidth()));
}

Type QTensorType::parse(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  SmallVector<int64_t> shape;
  Attribute attr;
  if (parser.parseLess() ||
      parser.parseDimensionList(shape, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseComma() || parser.parseAttribute(attr) ||
      parser.parseGreater())
    return {};
  auto scheme = llvm::dyn_cast<SchemeAttr>(attr);
  if (!scheme) {
    parser.emitError(loc, "expected a #nibble.scheme after the shape, got ")
        << attr;
    return {};
  }
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(),
                    shape, scheme);
}

void QTensorType::print(AsmPrinter &p) const {
  p << "<";
  llvm::interleave(getShape(), p, "x");
  p << ", ";
  p.printAttribute(getScheme());
  p << ">";
}

//===----------------------------------------------------------------------===//
// Shared operand checks
//===----------------------------------------------------------------------===//

/// Checks the scales / zero points / scale_scales operands of an op that
/// (de)quantizes data of `shape` with `scheme`.
static LogicalResult verifyScaleOperands(Operation *op,
                                         ArrayRef<int64_t> shape,
                                         SchemeAttr scheme, Value scales,
                                         Value zeroPoints, Value scaleScales) {
  SmallVector<int64_t> want = scheme.getScaleShape(shape);
  auto describe = [&]() {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << "required by the scheme's granularity on data shape "
       << shapeStr(shape);
    return s;
  };
  if (SchemeAttr inner = scheme.getScaleSchemeAttr()) {
    auto qs = llvm::dyn_cast<QTensorType>(scales.getType());
    if (!qs || qs.getScheme() != inner)
      return op->emitOpError()
             << "the scheme is two-level (scale_scheme = " << inner
             << "), so scales must be a !nibble.qtensor with that scheme, got "
             << scales.getType();
    if (qs.getShape() != ArrayRef<int64_t>(want))
      return op->emitOpError()
             << "scales shape " << shapeStr(qs.getShape())
             << " does not match " << shapeStr(want) << " " << describe();
    if (!scaleScales)
      return op->emitOpError() << "the scheme is two-level, so scale_scales "
                                  "(the scales of the scales) are required";
    auto ssType = llvm::cast<RankedTensorType>(scaleScales.getType());
    SmallVector<int64_t> wantSS = inner.getScaleShape(want);
    if (ssType.getElementType() != inner.getScaleType())
      return op->emitOpError()
             << "scale_scales element type " << ssType.getElementType()
             << " does not match the scale scheme's scale type "
             << inner.getScaleType();
    if (ssType.getShape() != ArrayRef<int64_t>(wantSS))
      return op->emitOpError()
             << "scale_scales shape " << shapeStr(ssType.getShape())
             << " does not match " << shapeStr(wantSS)
             << " required by the scale scheme on scales shape "
             << shapeStr(want);
  } else {
    auto st = llvm::dyn_cast<RankedTensorType>(scales.getType());
    if (!st)
      return op->emitOpError()
             << "scales must be a ranked tensor of the scheme's scale type "
             << scheme.getScaleType() << " (the scheme is not two-level), got "
             << scales.getType();
    if (st.getElementType() != scheme.getScaleType())
      return op->emitOpError()
             << "scales element type " << st.getElementType()
             << " does not match the scheme's scale type "
             << scheme.getScaleType();
    if (st.getShape() != ArrayRef<int64_t>(want))
      return op->emitOpError()
             << "scales shape " << shapeStr(st.getShape())
             << " does not match " << shapeStr(want) << " " << describe();
    if (scaleScales)
      return op->emitOpError() << "scale_scales given but the scheme has no "
                                  "scale_scheme";
  }
  if (scheme.hasZeroPoints()) {
    if (!zeroPoints)
      return op->emitOpError()
             << "the scheme has zero points of type "
             << scheme.getZeroPointType()
             << " but no zero_points operand was given";
    auto zt = llvm::cast<RankedTensorType>(zeroPoints.getType());
    if (zt.getElementType() != scheme.getZeroPointType())
      return op->emitOpError()
             << "zero_points element type " << zt.getElementType()
             << " does not match the scheme's zero point type "
             << scheme.getZeroPointType();
    if (zt.getShape() != ArrayRef<int64_t>(want))
      return op->emitOpError()
             << "zero_points shape " << shapeStr(zt.getShape())
             << " does not match " << shapeStr(want) << " " << describe();
  } else if (zeroPoints) {
    return op->emitOpError() << "zero_points given but the scheme is "
                                "symmetric (it has no zero_point type)";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

LogicalResult QuantizeOp::verify() {
  auto in = getInput().getType();
  auto out = getResult().getType();
  if (!in.hasStaticShape() || in.getShape() != out.getShape())
    return emitOpError() << "input shape " << shapeStr(in.getShape())
                         << " must be static and equal the result shape "
                         << shapeStr(out.getShape());
  return verifyScaleOperands(*this, out.getShape(), out.getScheme(),
                             getScales(), getZeroPoints(), getScaleScales());
}

LogicalResult DequantizeOp::verify() {
  auto in = getInput().getType();
  auto out = getResult().getType();
  if (!out.hasStaticShape() || in.getShape() != out.getShape())
    return emitOpError() << "result shape " << shapeStr(out.getShape())
                         << " must be static and equal the input shape "
                         << shapeStr(in.getShape());
  return verifyScaleOperands(*this, in.getShape(), in.getScheme(),
                             getScales(), getZeroPoints(), getScaleScales());
}

LogicalResult MatmulOp::verify() {
  auto x = getInput().getType();
  auto w = getWeight().getType();
  auto y = getResult().getType();
  if (x.getRank() != 2 || !x.hasStaticShape())
    return emitOpError() << "input must be a static M x K matrix, got "
                         << getInput().getType();
  if (w.getRank() != 2)
    return emitOpError() << "weight must be an N x K matrix, got rank "
                         << w.getRank();
  int64_t m = x.getDimSize(0), k = x.getDimSize(1);
  int64_t n = w.getShape()[0];
  if (w.getShape()[1] != k)
    return emitOpError() << "weight is " << n << " x " << w.getShape()[1]
                         << " but the input has K = " << k
                         << " (the weight is N x K, as in PyTorch Linear)";
  if (y.getRank() != 2 || y.getDimSize(0) != m || y.getDimSize(1) != n)
    return emitOpError() << "result must be " << m << " x " << n << ", got "
                         << getResult().getType();
  if (auto act = getActFormatAttr())
    if (!llvm::isa<NumberFormatAttrInterface>(act))
      return emitOpError() << "act_format must be a number format attribute, "
                              "got "
                           << act;
  if (auto scale = getActScaleAttr()) {
    if (!getActFormatAttr())
      return emitOpError() << "act_scale needs act_format";
    float v = scale.getValueAsDouble();
    if (!std::isfinite(v) || v <= 0)
      return emitOpError() << "act_scale must be finite and positive, got "
                           << v;
  }
  return verifyScaleOperands(*this, w.getShape(), w.getScheme(), getScales(),
                             getZeroPoints(), getScaleScales());
}

LogicalResult ConstantOp::verify() {
  QTensorType type = getResult().getType();
  Attribute value = getValue();
  if (llvm::isa<ExternalWeightsAttr>(value))
    return success();
  auto elements = llvm::dyn_cast<ElementsAttr>(value);
  if (!elements || !elements.getElementType().isInteger(8))
    return emitOpError() << "payload must be an i8 elements attribute (dense "
                            "or dense_resource) or a #nibble.external "
                            "reference, got "
                         << value;
  if (type.getScheme().getLayout())
    return success(); // Layout-specific byte counts are checked by backends.
  int64_t want = type.getPackedByteCount();
  if (elements.getNumElements() != want)
    return emitOpError() << "payload has " << elements.getNumElements()
                         << " bytes but " << type.getNumElements()
                         << " codes of " << type.getScheme().getFormatAttr().getBitWidth()
                         << " bits pack into " << want << " bytes";
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult ObserveOp::verify() {
  if (getName().empty())
    return emitOpError() << "needs a non-empty name (the statistics key)";
  return success();
}
