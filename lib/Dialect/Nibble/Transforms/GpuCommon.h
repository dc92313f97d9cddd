//===- GpuCommon.h - Shared by the GPU kernel generators --------*- C++ -*-===//

#ifndef NIBBLE_LIB_TRANSFORMS_GPUCOMMON_H
#define NIBBLE_LIB_TRANSFORMS_GPUCOMMON_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"

#include <optional>

namespace mlir::nibble::detail {

/// The SM version of a chip name ("sm_90a" -> 90), or nullopt after an
/// error at `loc` saying what was expected.
std::optional<int> smVersion(Location loc, StringRef chip);

/// `gpu.module @nibble_gpu` of `module`, created (recording `chip` as
/// `nibble.chip`, the module marked as a GPU container) when absent.
gpu::GPUModuleOp getOrCreateGpuModule(ModuleOp module, StringRef chip);

} // namespace mlir::nibble::detail

#endif // NIBBLE_LIB_TRANSFORMS_GPUCOMMON_H
