//===- Nibble.h - The nibble dialect: attributes, types, ops --------------===//

#ifndef NIBBLE_DIALECT_NIBBLE_IR_NIBBLE_H
#define NIBBLE_DIALECT_NIBBLE_IR_NIBBLE_H

#include "nibble/Formats/Format.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::nibble {

enum class NonFiniteKind : uint8_t { IEEE, NanOnly, FiniteOnly };
enum class NanEncodingKind : uint8_t { IEEE, AllOnes, NegativeZero };
enum class GranularityKind : uint8_t { PerTensor, PerChannel, Group, Block };

/// A builtin float type of at most 8 bits (f8E8M0FNU, f8E4M3FN, ...) as a
/// format of the codec library; std::nullopt for other types.
std::optional<::nibble::formats::Format> getSmallFloatTypeFormat(Type type);

} // namespace mlir::nibble

#include "nibble/Dialect/Nibble/IR/NibbleAttrInterfaces.h.inc"
#include "nibble/Dialect/Nibble/IR/NibbleDialect.h.inc"

#define GET_ATTRDEF_CLASSES
#include "nibble/Dialect/Nibble/IR/NibbleAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "nibble/Dialect/Nibble/IR/NibbleTypes.h.inc"

#define GET_OP_CLASSES
#include "nibble/Dialect/Nibble/IR/NibbleOps.h.inc"

#endif // NIBBLE_DIALECT_NIBBLE_IR_NIBBLE_H
