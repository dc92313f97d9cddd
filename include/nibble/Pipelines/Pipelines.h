//===- Pipelines.h - Named nibble pass pipelines --------------------------===//
//
// The only place passes are ordered. quant-opt, lit tests and (later)
// quant-compile run exactly these pipelines.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_PIPELINES_PIPELINES_H
#define NIBBLE_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::nibble {

struct ReferencePipelineOptions
    : public PassPipelineOptions<ReferencePipelineOptions> {
  PassOptions::Option<bool> barePtrCallConv{
      *this, "bare-ptr-calling-convention",
      llvm::cl::desc("Pass memrefs as bare pointers at function boundaries "
                     "(for callers that pass raw buffers)"),
      llvm::cl::init(false)};
  PassOptions::Option<std::string> kernelTarget{
      *this, "kernel-target",
      llvm::cl::desc("Generate vector kernels for eligible nibble.matmul "
                     "for this target (nibble-generate-kernels) first; "
                     "empty: reference lowering only"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> probes{
      *this, "probes",
      llvm::cl::desc("nibble.observe probes: drop, or call "
                     "nibble_observe_f32 (calibration through compiled IR)"),
      llvm::cl::init("drop")};
  PassOptions::Option<std::string> weightsDir{
      *this, "weights-dir",
      llvm::cl::desc("Directory for relative #nibble.external paths"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> weightsOutput{
      *this, "weights-output",
      llvm::cl::desc("Move constant weights out of the code into this blob "
                     "file (nibble-externalize-weights); empty: keep them"),
      llvm::cl::init("")};
  PassOptions::Option<bool> parallel{
      *this, "parallel",
      llvm::cl::desc("Split the rows of large generated-kernel calls over "
                     "the runtime's pool (nibble-parallelize-kernel-calls; "
                     "the code then needs nibble_parallel_for from "
                     "libnibble_runtime.so)"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> deallocate{
      *this, "deallocate",
      llvm::cl::desc("Free temporaries (ownership-based deallocation; "
                     "generated kernels free their own scratch); off only "
                     "to inspect the IR without the dealloc bookkeeping"),
      llvm::cl::init(true)};
};

/// The first half: nibble IR -> buffers (generated kernels, reference
/// lowering, bufferization, step-function ABI, optionally externalized
/// weights). quant-compile runs the halves separately to take the weights.
LogicalResult buildReferenceToBuffersPipeline(OpPassManager &pm,
                                              const ReferencePipelineOptions &o);
/// The second half: buffers -> LLVM dialect.
LogicalResult buildBuffersToLLVMPipeline(OpPassManager &pm,
                                         const ReferencePipelineOptions &o);

/// nibble IR -> LLVM dialect through the reference (linalg) lowering: the
/// oracle every backend is compared with, runnable with the ExecutionEngine
/// or mlir-runner.
LogicalResult buildReferenceToLLVMPipeline(OpPassManager &pm,
                                           const ReferencePipelineOptions &o);

struct CompilePipelineOptions
    : public PassPipelineOptions<CompilePipelineOptions> {
  PassOptions::Option<std::string> target{
      *this, "target",
      llvm::cl::desc("Target: native, a CPU name (znver4, x86-64-v3, "
                     "sapphirerapids, ...) with +feature / ,-feature, or "
                     "aarch64[:cpu]"),
      llvm::cl::init("native")};
  PassOptions::Option<std::string> output{
      *this, "output", llvm::cl::desc("Object file or shared library to write"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> kind{
      *this, "kind", llvm::cl::desc("object or shared"),
      llvm::cl::init("object")};
  PassOptions::Option<std::string> weightsDir{
      *this, "weights-dir",
      llvm::cl::desc("Directory for relative #nibble.external paths"),
      llvm::cl::init("")};
  PassOptions::Option<std::string> weightsOutput{
      *this, "weights-output",
      llvm::cl::desc("Move constant weights out of the code into this blob "
                     "file; empty: keep them in the code"),
      llvm::cl::init("")};
};

/// nibble IR -> generated kernels for `target` where they apply, the
/// reference lowering elsewhere -> machine code for `target` in `output`.
LogicalResult buildCompilePipeline(OpPassManager &pm,
                                   const CompilePipelineOptions &o);

struct GpuPipelineOptions : public PassPipelineOptions<GpuPipelineOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip",
      llvm::cl::desc("NVIDIA architecture: sm_80, sm_89, sm_90, sm_90a, ..."),
      llvm::cl::init("sm_90")};
  PassOptions::Option<std::string> features{
      *this, "features", llvm::cl::desc("PTX ISA version feature"),
      llvm::cl::init("+ptx80")};
  PassOptions::Option<std::string> output{
      *this, "output", llvm::cl::desc("PTX file to write"),
      llvm::cl::init("")};
  PassOptions::Option<int64_t> rowsPerBlock{
      *this, "rows-per-block",
      llvm::cl::desc("Output rows (warps) per thread block"),
      llvm::cl::init(4)};
};

/// nibble IR -> GEMV kernels for `chip` (nibble-generate-gpu-kernels) ->
/// PTX in `output` (nibble-gpu-to-ptx), one chip for both.
LogicalResult buildGpuPipeline(OpPassManager &pm, const GpuPipelineOptions &o);

/// Registers `nibble-reference-to-llvm`, `nibble-compile` and
/// `nibble-to-ptx`.
void registerNibblePipelines();

/// Everything a compiler context needs: the upstream dialects and their
/// extensions, their translations to LLVM IR (object emission, NVVM for
/// gpu-module-to-binary) and the nibble dialect.
void registerCompilerDialects(DialectRegistry &registry);

} // namespace mlir::nibble

#endif // NIBBLE_PIPELINES_PIPELINES_H
