//===- CudaBundle.h - The code and weights of a CUDA bundle -----*- C++ -*-===//
//
// quant-compile --target cuda-smXY: after the same float import and
// quantization passes as a CPU bundle, the decode step becomes a fixed
// sequence of generated GPU kernels (docs/gpu.md). This builds their PTX,
// the weights in the kernels' layouts and the manifest's "gpu" section that
// tells the runtime which kernel runs which linear.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_TOOLS_QUANT_COMPILE_CUDABUNDLE_H
#define NIBBLE_TOOLS_QUANT_COMPILE_CUDABUNDLE_H

#include "nibble/Model/Model.h"

#include "mlir/IR/BuiltinOps.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace nibble::compile {

/// A parsed `cuda-smXY[a]` target.
struct CudaTarget {
  std::string spec;     ///< as given
  std::string chip;     ///< sm_90
  std::string features; ///< +ptx80
};
/// nullopt for a name that does not start with "cuda"; an error for one
/// that does but is malformed.
std::optional<CudaTarget> parseCudaTarget(const std::string &spec,
                                          std::string &error);

struct CudaProgram {
  std::string ptx;         ///< the "code" section
  std::string weights;     ///< the "weights" section
  nlohmann::ordered_json gpu; ///< the manifest's "gpu" section
};

/// Builds the program of `module` (nibble_decode after quantization) for
/// `target`; false with `error` naming the linear or shape it cannot serve.
bool buildCudaProgram(mlir::ModuleOp module, const model::Model &model,
                      const CudaTarget &target, int64_t context,
                      CudaProgram &out, std::string &error);

} // namespace nibble::compile

#endif // NIBBLE_TOOLS_QUANT_COMPILE_CUDABUNDLE_H
