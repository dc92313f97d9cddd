//===- Passes.h - nibble passes --------------------------------------------===//

#ifndef NIBBLE_DIALECT_NIBBLE_TRANSFORMS_PASSES_H
#define NIBBLE_DIALECT_NIBBLE_TRANSFORMS_PASSES_H

#include "nibble/Dialect/Nibble/IR/Nibble.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Quant/IR/Quant.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::nibble {

#define GEN_PASS_DECL
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"

/// The rewrite behind nibble-externalize-weights: moves constant globals of
/// at least `minBytes` read by public functions into `blob` (see the pass).
LogicalResult externalizeWeights(ModuleOp module, int64_t minBytes,
                                 std::string &blob);

#define GEN_PASS_REGISTRATION
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"

} // namespace mlir::nibble

#endif // NIBBLE_DIALECT_NIBBLE_TRANSFORMS_PASSES_H
