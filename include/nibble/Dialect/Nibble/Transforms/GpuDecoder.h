//===- GpuDecoder.h - GPU kernels for a whole Llama decode step -*- C++ -*-===//
//
// The kernels a CUDA bundle runs (quant-compile --target cuda-smXY): one
// GEMV per distinct linear shape and format, and the rest of the decoder
// (embedding, RMSNorm, RoPE with the KV-cache write, attention over the
// cache, SwiGLU, residual add) for one model shape. All are gpu.func
// kernels in `gpu.module @nibble_gpu`, one token (M = 1) at a time, f32
// activations and KV cache; nibble-gpu-to-ptx lowers them. Every kernel
// records its launch as `nibble.grid` (blocks) and `known_block_size`.
// docs/gpu.md gives each kernel's arguments.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_DIALECT_NIBBLE_TRANSFORMS_GPUDECODER_H
#define NIBBLE_DIALECT_NIBBLE_TRANSFORMS_GPUDECODER_H

#include "nibble/Formats/Format.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <cstdint>
#include <string>

namespace mlir::nibble {

/// One linear y[N] = W[N, K] x[K] with f32 activations and result.
struct GpuGemvSpec {
  /// "int4", "int8" (signed, offset-binary words), "e4m3fn", "e5m2" (bytes)
  /// or "f16" (halves; one scale per row).
  std::string format;
  int64_t n = 0, k = 0;
  int64_t group = 0; ///< input columns per f32 scale (k: one per row)
};

/// The GEMV format name of quantized weights in `f` ("int4", "int8",
/// "e4m3fn", "e5m2"), empty for a format the kernels do not serve.
std::string gpuGemvFormat(const ::nibble::formats::Format &f);

/// Bits one weight code takes in the GEMV kernels' layout, 0 for a format
/// they do not serve.
unsigned gpuGemvCodeBits(StringRef format);

/// Adds (once) the GEMV kernel for `spec` to `@nibble_gpu` (created for
/// `chip` if absent) and returns its name; failure with `why` when the
/// kernels cannot serve it (format, K or the group not a multiple of one
/// 128-bit load of codes).
FailureOr<std::string> addGpuGemvKernel(ModuleOp module, StringRef chip,
                                        const GpuGemvSpec &spec,
                                        int64_t rowsPerBlock,
                                        std::string &why);

/// The model shape the non-matmul kernels are specialised for.
struct GpuDecoderShape {
  int64_t vocab = 0, dim = 0, hidden = 0, heads = 0, kvHeads = 0,
          headDim = 0, context = 0, layers = 0;
  double normEps = 1e-5;
  bool interleavedRope = false; ///< (2i, 2i+1) pairs, else (i, i + hd/2)
};

/// The names addGpuDecoderKernels gives its kernels.
struct GpuDecoderKernelNames {
  std::string embed, rmsnorm, ropeKV, attention, swiglu, add;
};
GpuDecoderKernelNames gpuDecoderKernelNames(const GpuDecoderShape &shape);

/// Adds the non-matmul kernels for `shape` to `@nibble_gpu` (created for
/// `chip` if absent); failure (with an error at the module) for a shape
/// they cannot serve.
LogicalResult addGpuDecoderKernels(ModuleOp module, StringRef chip,
                                   const GpuDecoderShape &shape);

} // namespace mlir::nibble

#endif // NIBBLE_DIALECT_NIBBLE_TRANSFORMS_GPUDECODER_H
