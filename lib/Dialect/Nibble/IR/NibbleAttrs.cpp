//===- NibbleAttrs.cpp - Format and scheme attributes ---------------------===//

#include "nibble/Dialect/Nibble/IR/Nibble.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::nibble;
namespace fmt = ::nibble::formats;

#include "nibble/Dialect/Nibble/IR/NibbleAttrInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "nibble/Dialect/Nibble/IR/NibbleAttrs.cpp.inc"

void NibbleDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "nibble/Dialect/Nibble/IR/NibbleAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Small builtin float types as formats
//===----------------------------------------------------------------------===//

std::optional<fmt::Format> mlir::nibble::getSmallFloatTypeFormat(Type type) {
  using FS = fmt::FloatSpec;
  auto make = [](FS spec) { return fmt::Format::makeFloat(spec); };
  return llvm::TypeSwitch<Type, std::optional<fmt::Format>>(type)
      .Case<Float8E4M3FNType>([](auto) { return fmt::Format::e4m3fn(); })
      .Case<Float8E5M2Type>([](auto) { return fmt::Format::e5m2(); })
      .Case<Float8E4M3FNUZType>([](auto) { return fmt::Format::e4m3fnuz(); })
      .Case<Float8E5M2FNUZType>([](auto) { return fmt::Format::e5m2fnuz(); })
      .Case<Float6E2M3FNType>([](auto) { return fmt::Format::e2m3fn(); })
      .Case<Float6E3M2FNType>([](auto) { return fmt::Format::e3m2fn(); })
      .Case<Float4E2M1FNType>([](auto) { return fmt::Format::e2m1fn(); })
      .Case<Float8E8M0FNUType>([](auto) { return fmt::Format::e8m0fnu(); })
      .Case<Float8E4M3Type>([&](auto) {
        return make({4, 3, 7, fmt::NonFinite::IEEE, fmt::NanEncoding::IEEE,
                     true, true});
      })
      .Case<Float8E3M4Type>([&](auto) {
        return make({3, 4, 3, fmt::NonFinite::IEEE, fmt::NanEncoding::IEEE,
                     true, true});
      })
      .Case<Float8E4M3B11FNUZType>([&](auto) {
        return make({4, 3, 11, fmt::NonFinite::NanOnly,
                     fmt::NanEncoding::NegativeZero, true, true});
      })
      .Default([](Type) { return std::nullopt; });
}

//===----------------------------------------------------------------------===//
// #nibble.int
//===----------------------------------------------------------------------===//

LogicalResult IntFormatAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    unsigned width, bool isSigned) {
  std::string why;
  if (!fmt::Format::makeInt(static_cast<int>(width), isSigned, &why))
    return emitError() << "invalid #nibble.int format: " << why;
  return success();
}

fmt::Format IntFormatAttr::getFormat() const {
  return fmt::Format::intN(getWidth(), getIsSigned());
}

Attribute IntFormatAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  unsigned width = 0;
  StringRef signedness;
  if (parser.parseLess() || parser.parseInteger(width) || parser.parseComma() ||
      parser.parseKeyword(&signedness) || parser.parseGreater())
    return {};
  if (signedness != "signed" && signedness != "unsigned") {
    parser.emitError(loc, "expected 'signed' or 'unsigned', got '")
        << signedness << "'";
    return {};
  }
  return getChecked([&] { return parser.emitError(loc); },
                    parser.getContext(), width, signedness == "signed");
}

void IntFormatAttr::print(AsmPrinter &p) const {
  p << "<" << getWidth() << ", " << (getIsSigned() ? "signed" : "unsigned")
    << ">";
}

//===----------------------------------------------------------------------===//
// #nibble.float
//===----------------------------------------------------------------------===//

// NonFiniteKind / NanEncodingKind mirror the library's enums value for value.
static StringRef nonFiniteName(NonFiniteKind k) {
  return fmt::nonFiniteName(static_cast<fmt::NonFinite>(k));
}

static StringRef nanEncodingName(NanEncodingKind k) {
  return fmt::nanEncodingName(static_cast<fmt::NanEncoding>(k));
}

static NanEncodingKind defaultNanEncoding(NonFiniteKind k) {
  return k == NonFiniteKind::NanOnly ? NanEncodingKind::AllOnes
                                     : NanEncodingKind::IEEE;
}

static int defaultBias(unsigned expBits) {
  return expBits == 0 ? 0 : (1 << (expBits - 1)) - 1;
}

fmt::FloatSpec FloatFormatAttr::getSpec() const {
  fmt::FloatSpec s;
  s.expBits = static_cast<int>(getExpBits());
  s.manBits = static_cast<int>(getManBits());
  s.bias = getBias();
  s.nonFinite = static_cast<fmt::NonFinite>(getNonFinite());
  s.nanEncoding = static_cast<fmt::NanEncoding>(getNanEncoding());
  s.isSigned = getIsSigned();
  s.hasZero = getHasZero();
  return s;
}

FloatFormatAttr FloatFormatAttr::get(MLIRContext *ctx,
                                     const fmt::FloatSpec &s) {
  return get(ctx, s.expBits, s.manBits, s.bias,
             static_cast<NonFiniteKind>(s.nonFinite),
             static_cast<NanEncodingKind>(s.nanEncoding), s.isSigned,
             s.hasZero);
}

LogicalResult
FloatFormatAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                        unsigned expBits, unsigned manBits, int bias,
                        NonFiniteKind nonFinite, NanEncodingKind nan,
                        bool isSigned, bool hasZero) {
  fmt::FloatSpec s{static_cast<int>(expBits),
                   static_cast<int>(manBits),
                   bias,
                   static_cast<fmt::NonFinite>(nonFinite),
                   static_cast<fmt::NanEncoding>(nan),
                   isSigned,
                   hasZero};
  std::string why;
  if (!fmt::Format::makeFloat(s, &why))
    return emitError() << "invalid #nibble.float format: " << why;
  return success();
}

fmt::Format FloatFormatAttr::getFormat() const {
  return *fmt::Format::makeFloat(getSpec());
}

Attribute FloatFormatAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef head;
  if (parser.parseLess() || parser.parseKeyword(&head))
    return {};
  MLIRContext *ctx = parser.getContext();
  auto emit = [&] { return parser.emitError(loc); };
  if (auto named = fmt::Format::namedFloatSpec(head.str())) {
    if (parser.parseGreater())
      return {};
    const fmt::FloatSpec &s = *named;
    return getChecked(emit, ctx, s.expBits, s.manBits, s.bias,
                      static_cast<NonFiniteKind>(s.nonFinite),
                      static_cast<NanEncodingKind>(s.nanEncoding), s.isSigned,
                      s.hasZero);
  }
  // eXmY form.
  unsigned e = 0, m = 0;
  {
    StringRef rest = head;
    if (!rest.consume_front("e")) {
      parser.emitError(loc, "expected a named float (e4m3fn, e5m2, ...) or "
                            "'eXmY', got '")
          << head << "'";
      return {};
    }
    auto [es, ms] = rest.split('m');
    if (es.getAsInteger(10, e) || ms.getAsInteger(10, m)) {
      parser.emitError(loc, "expected 'eXmY' with decimal X and Y, got '")
          << head << "'";
      return {};
    }
  }
  int bias = defaultBias(e);
  NonFiniteKind nonFinite = NonFiniteKind::IEEE;
  std::optional<NanEncodingKind> nan;
  bool isSigned = true, hasZero = true;
  while (succeeded(parser.parseOptionalComma())) {
    SMLoc kloc = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key))
      return {};
    if (key == "unsigned") {
      isSigned = false;
    } else if (key == "no_zero") {
      hasZero = false;
    } else if (key == "bias") {
      if (parser.parseEqual() || parser.parseInteger(bias))
        return {};
    } else if (key == "nonfinite" || key == "nan") {
      StringRef v;
      if (parser.parseEqual() || parser.parseKeyword(&v))
        return {};
      if (key == "nonfinite") {
        if (v == "ieee")
          nonFinite = NonFiniteKind::IEEE;
        else if (v == "nan_only")
          nonFinite = NonFiniteKind::NanOnly;
        else if (v == "finite_only")
          nonFinite = NonFiniteKind::FiniteOnly;
        else {
          parser.emitError(kloc, "expected ieee, nan_only or finite_only "
                                 "for 'nonfinite', got '")
              << v << "'";
          return {};
        }
      } else {
        if (v == "ieee")
          nan = NanEncodingKind::IEEE;
        else if (v == "all_ones")
          nan = NanEncodingKind::AllOnes;
        else if (v == "negative_zero")
          nan = NanEncodingKind::NegativeZero;
        else {
          parser.emitError(kloc, "expected ieee, all_ones or negative_zero "
                                 "for 'nan', got '")
              << v << "'";
          return {};
        }
      }
    } else {
      parser.emitError(kloc, "unknown #nibble.float field '")
          << key << "' (expected bias, nonfinite, nan, unsigned, no_zero)";
      return {};
    }
  }
  if (parser.parseGreater())
    return {};
  return getChecked(emit, ctx, e, m, bias, nonFinite,
                    nan.value_or(defaultNanEncoding(nonFinite)), isSigned,
                    hasZero);
}

void FloatFormatAttr::print(AsmPrinter &p) const {
  std::string name = fmt::Format::floatSpecName(getSpec());
  p << "<";
  if (!name.empty()) {
    p << name << ">";
    return;
  }
  p << "e" << getExpBits() << "m" << getManBits();
  if (getBias() != defaultBias(getExpBits()))
    p << ", bias = " << getBias();
  if (getNonFinite() != NonFiniteKind::IEEE)
    p << ", nonfinite = " << nonFiniteName(getNonFinite());
  if (getNanEncoding() != defaultNanEncoding(getNonFinite()))
    p << ", nan = " << nanEncodingName(getNanEncoding());
  if (!getIsSigned())
    p << ", unsigned";
  if (!getHasZero())
    p << ", no_zero";
  p << ">";
}

//===----------------------------------------------------------------------===//
// #nibble.lut
//===----------------------------------------------------------------------===//

LogicalResult LutFormatAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    DenseF32ArrayAttr valuesAttr) {
  ArrayRef<float> values = valuesAttr.asArrayRef();
  std::string why;
  if (!fmt::Format::makeLut(std::vector<float>(values.begin(), values.end()),
                            &why))
    return emitError() << "invalid #nibble.lut format: " << why;
  return success();
}

fmt::Format LutFormatAttr::getFormat() const {
  ArrayRef<float> values = getValues().asArrayRef();
  return *fmt::Format::makeLut(std::vector<float>(values.begin(), values.end()));
}

Attribute LutFormatAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess())
    return {};
  SmallVector<float> values;
  StringRef name;
  if (succeeded(parser.parseOptionalKeyword(&name))) {
    if (name != "nf4") {
      parser.emitError(loc, "unknown lookup table '")
          << name << "' (expected 'nf4' or a list of values)";
      return {};
    }
    const auto &nf4 = fmt::Format::nf4Values();
    values.assign(nf4.begin(), nf4.end());
  } else {
    auto parseOne = [&]() -> ParseResult {
      double v;
      if (parser.parseFloat(v))
        return failure();
      values.push_back(static_cast<float>(v));
      return success();
    };
    if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parseOne))
      return {};
  }
  if (parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(),
                    DenseF32ArrayAttr::get(parser.getContext(), values));
}

void LutFormatAttr::print(AsmPrinter &p) const {
  const auto &nf4 = fmt::Format::nf4Values();
  ArrayRef<float> values = getValues().asArrayRef();
  if (values.size() == nf4.size() &&
      std::equal(nf4.begin(), nf4.end(), values.begin())) {
    p << "<nf4>";
    return;
  }
  p << "<[";
  llvm::interleaveComma(values, p, [&](float v) {
    p.printFloat(llvm::APFloat(v));
  });
  p << "]>";
}

//===----------------------------------------------------------------------===//
// #nibble.scheme
//===----------------------------------------------------------------------===//

static bool isSupportedScaleType(Type t) {
  if (t.isF32() || t.isF16() || t.isBF16())
    return true;
  return getSmallFloatTypeFormat(t).has_value();
}

LogicalResult SchemeAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 Attribute format, GranularityKind granularity,
                                 int64_t axis, ArrayRef<int64_t> blockShape,
                                 Type scaleType, Type zeroPointType,
                                 Attribute scaleScheme, Attribute layout) {
  auto formatAttr = llvm::dyn_cast_or_null<NumberFormatAttrInterface>(format);
  if (!formatAttr)
    return emitError() << "scheme format must be a number format attribute "
                          "(#nibble.int, #nibble.float, #nibble.lut, ...), got "
                       << format;
  if (formatAttr.getBitWidth() > 8)
    return emitError() << "scheme format must have at most 8 bits per code, "
                       << format << " has " << formatAttr.getBitWidth();
  switch (granularity) {
  case GranularityKind::PerTensor:
    break;
  case GranularityKind::PerChannel:
    if (axis < 0)
      return emitError() << "per_channel axis must be non-negative, got "
                         << axis;
    break;
  case GranularityKind::Group:
    if (axis < 0)
      return emitError() << "group axis must be non-negative, got " << axis;
    if (blockShape.size() != 1 || blockShape[0] <= 0)
      return emitError() << "group size must be positive";
    break;
  case GranularityKind::Block:
    if (blockShape.size() != 2 || blockShape[0] <= 0 || blockShape[1] <= 0)
      return emitError() << "block shape must have two positive sizes";
    break;
  }
  if (!scaleType || !isSupportedScaleType(scaleType))
    return emitError() << "scale type must be f32, f16, bf16 or a builtin "
                          "float of at most 8 bits (e.g. f8E8M0FNU), got "
                       << scaleType;
  if (zeroPointType && !llvm::isa<IntegerType>(zeroPointType) &&
      !zeroPointType.isF32() && !zeroPointType.isF16() &&
      !zeroPointType.isBF16())
    return emitError() << "zero point type must be an integer type or "
                          "f32/f16/bf16, got "
                       << zeroPointType;
  if (scaleScheme) {
    auto inner = llvm::dyn_cast<SchemeAttr>(scaleScheme);
    if (!inner)
      return emitError() << "scale_scheme must be a #nibble.scheme, got "
                         << scaleScheme;
    if (inner.getScaleScheme())
      return emitError()
             << "scale_scheme may not itself have a scale_scheme (at most "
                "two levels)";
    if (inner.hasZeroPoints())
      return emitError() << "scale_scheme may not have zero points";
    if (!scaleType.isF32())
      return emitError() << "a scheme with scale_scheme must have scale = "
                            "f32 (the precision scales are dequantized to), "
                            "got "
                         << scaleType;
  }
  return success();
}

std::optional<int64_t> SchemeAttr::getColumnsPerScale(int64_t cols) const {
  if (getGranularity() == GranularityKind::Group && getAxis() == 1)
    return getBlockShape()[0];
  if (getGranularity() == GranularityKind::PerChannel && getAxis() == 0)
    return cols;
  return std::nullopt;
}

LogicalResult
SchemeAttr::verifyShape(ArrayRef<int64_t> shape,
                        function_ref<InFlightDiagnostic()> emitError) const {
  int64_t rank = shape.size();
  auto dimsStr = [&] {
    std::string s;
    llvm::raw_string_ostream os(s);
    llvm::interleave(shape, os, "x");
    return s;
  };
  switch (getGranularity()) {
  case GranularityKind::PerTensor:
    return success();
  case GranularityKind::PerChannel:
    if (getAxis() >= rank)
      return emitError() << "per_channel axis " << getAxis()
                         << " is out of range for rank " << rank
                         << " shape " << dimsStr();
    return success();
  case GranularityKind::Group: {
    if (getAxis() >= rank)
      return emitError() << "group axis " << getAxis()
                         << " is out of range for rank " << rank << " shape "
                         << dimsStr();
    int64_t g = getBlockShape()[0];
    if (shape[getAxis()] % g != 0)
      return emitError() << "group size " << g << " does not divide dimension "
                         << getAxis() << " of size " << shape[getAxis()]
                         << " (shape " << dimsStr() << ")";
    return success();
  }
  case GranularityKind::Block: {
    if (rank < 2)
      return emitError() << "block<" << getBlockShape()[0] << "x"
                         << getBlockShape()[1]
                         << "> needs a tensor of rank >= 2, got shape "
                         << dimsStr();
    for (int i = 0; i < 2; ++i) {
      int64_t d = rank - 2 + i;
      if (shape[d] % getBlockShape()[i] != 0)
        return emitError() << "block size " << getBlockShape()[i]
                           << " does not divide dimension " << d
                           << " of size " << shape[d] << " (shape "
                           << dimsStr() << ")";
    }
    return success();
  }
  }
  llvm_unreachable("bad granularity");
}

SmallVector<int64_t> SchemeAttr::getBlockSizes(ArrayRef<int64_t> shape) const {
  int64_t rank = shape.size();
  SmallVector<int64_t> block(rank, 1);
  switch (getGranularity()) {
  case GranularityKind::PerTensor:
    block.assign(shape.begin(), shape.end());
    break;
  case GranularityKind::PerChannel:
    block.assign(shape.begin(), shape.end());
    block[getAxis()] = 1;
    break;
  case GranularityKind::Group:
    block[getAxis()] = getBlockShape()[0];
    break;
  case GranularityKind::Block:
    block[rank - 2] = getBlockShape()[0];
    block[rank - 1] = getBlockShape()[1];
    break;
  }
  return block;
}

SmallVector<int64_t> SchemeAttr::getScaleShape(ArrayRef<int64_t> shape) const {
  SmallVector<int64_t> block = getBlockSizes(shape);
  SmallVector<int64_t> result;
  for (auto [d, b] : llvm::zip_equal(shape, block))
    result.push_back(b == 0 ? 1 : d / b);
  return result;
}

Attribute SchemeAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  Attribute format;
  if (parser.parseLess() || parser.parseAttribute(format) ||
      parser.parseComma())
    return {};
  SMLoc gloc = parser.getCurrentLocation();
  StringRef gname;
  if (parser.parseKeyword(&gname))
    return {};
  GranularityKind granularity;
  int64_t axis = -1;
  SmallVector<int64_t> block;
  if (gname == "per_tensor") {
    granularity = GranularityKind::PerTensor;
  } else if (gname == "per_channel") {
    granularity = GranularityKind::PerChannel;
    if (parser.parseLess() || parser.parseInteger(axis) ||
        parser.parseGreater())
      return {};
  } else if (gname == "group") {
    granularity = GranularityKind::Group;
    int64_t size = 0;
    if (parser.parseLess() || parser.parseInteger(axis) ||
        parser.parseComma() || parser.parseInteger(size) ||
        parser.parseGreater())
      return {};
    block.push_back(size);
  } else if (gname == "block") {
    granularity = GranularityKind::Block;
    if (parser.parseLess() ||
        parser.parseDimensionList(block, /*allowDynamic=*/false,
                                  /*withTrailingX=*/false) ||
        parser.parseGreater())
      return {};
  } else {
    parser.emitError(gloc, "expected granularity per_tensor, "
                           "per_channel<axis>, group<axis, size> or "
                           "block<RxC>, got '")
        << gname << "'";
    return {};
  }
  Type scaleType = Float32Type::get(parser.getContext());
  Type zeroPointType;
  Attribute scaleScheme, layout;
  while (succeeded(parser.parseOptionalComma())) {
    SMLoc kloc = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key) || parser.parseEqual())
      return {};
    if (key == "scale") {
      if (parser.parseType(scaleType))
        return {};
    } else if (key == "zero_point") {
      if (parser.parseType(zeroPointType))
        return {};
    } else if (key == "scale_scheme") {
      if (parser.parseAttribute(scaleScheme))
        return {};
    } else if (key == "layout") {
      if (parser.parseAttribute(layout))
        return {};
    } else {
      parser.emitError(kloc, "unknown #nibble.scheme field '")
          << key << "' (expected scale, zero_point, scale_scheme, layout)";
      return {};
    }
  }
  if (parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(loc); }, parser.getContext(),
                    format, granularity, axis, block, scaleType, zeroPointType,
                    scaleScheme, layout);
}

void SchemeAttr::print(AsmPrinter &p) const {
  p << "<";
  p.printAttribute(getFormat());
  p << ", ";
  switch (getGranularity()) {
  case GranularityKind::PerTensor:
    p << "per_tensor";
    break;
  case GranularityKind::PerChannel:
    p << "per_channel<" << getAxis() << ">";
    break;
  case GranularityKind::Group:
    p << "group<" << getAxis() << ", " << getBlockShape()[0] << ">";
    break;
  case GranularityKind::Block:
    p << "block<" << getBlockShape()[0] << "x" << getBlockShape()[1] << ">";
    break;
  }
  p << ", scale = ";
  p.printType(getScaleType());
  if (getZeroPointType()) {
    p << ", zero_point = ";
    p.printType(getZeroPointType());
  }
  if (getScaleScheme()) {
    p << ", scale_scheme = ";
    p.printAttribute(getScaleScheme());
  }
  if (getLayout()) {
    p << ", layout = ";
    p.printAttribute(getLayout());
  }
  p << ">";
}
