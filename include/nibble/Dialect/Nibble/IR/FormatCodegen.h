//===- FormatCodegen.h - Scalar code for any number format ------*- C++ -*-===//
//
// Encode and decode of one element of any number format as arith/tensor
// ops, derived from the format library: decode is a lookup in the table of
// all codes, encode a branchless binary search over the format's rounding
// thresholds (ties and saturation exactly as the library decides). Shared
// by the reference lowering (nibble-lower-to-linalg) and the model builder
// (KV-cache quantization), so both round the same way.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_DIALECT_NIBBLE_IR_FORMATCODEGEN_H
#define NIBBLE_DIALECT_NIBBLE_IR_FORMATCODEGEN_H

#include "nibble/Formats/Format.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace mlir::nibble::codegen {

namespace fmt = ::nibble::formats;

struct FormatTables {
  /// decode[c] = value of code c, for every code of `bits` bits.
  SmallVector<float> decode;
  /// Distinct finite values ascending; codes[i] is the code of values[i].
  SmallVector<float> values;
  SmallVector<int8_t> codes;
  /// thresholds[j] = smallest float that encodes to values[j + 1] or above,
  /// so index(x) = #{ j : x >= thresholds[j] }.
  SmallVector<float> thresholds;
  uint32_t nanCode = 0;
  std::optional<uint32_t> negZeroCode;
  int64_t zeroIndex = -1;
};

/// The tables of `f`.
FormatTables buildTables(const fmt::Format &f);

/// Constant tensors of one format's tables, created once per lowered op.
struct FormatTableValues {
  FormatTables tables;
  Value decode, thresholds, codes;
};

FormatTableValues materializeTables(OpBuilder &b, Location loc,
                                    const fmt::Format &f);

/// i8 code -> f32 value.
Value emitDecode(OpBuilder &b, Location loc, Value code,
                 const FormatTableValues &tv);

/// f32 -> i8 code: nearest representable value (ties and saturation exactly
/// as the format library decides, via its thresholds), then -0 and NaN.
Value emitEncode(OpBuilder &b, Location loc, Value y,
                 const FormatTableValues &tv);

Value cIndex(OpBuilder &b, Location loc, int64_t v);

/// A 1-D constant tensor of `data`.
template <typename T>
inline Value constTensor(OpBuilder &b, Location loc, Type elemType,
                         ArrayRef<T> data) {
  auto type =
      RankedTensorType::get({static_cast<int64_t>(data.size())}, elemType);
  return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(type, data));
}

} // namespace mlir::nibble::codegen

#endif // NIBBLE_DIALECT_NIBBLE_IR_FORMATCODEGEN_H
