//===- Pipelines.cpp - Named nibble pass pipelines ------------------------===//

#include "nibble/Pipelines/Pipelines.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

LogicalResult
mlir::nibble::buildReferenceToBuffersPipeline(OpPassManager &pm,
                                              const ReferencePipelineOptions &o) {
  std::string text;
  llvm::raw_string_ostream os(text);
  // 0. Optionally, generated vector kernels for the matmuls they cover.
  if (!o.kernelTarget.empty())
    os << "nibble-generate-kernels{target=" << o.kernelTarget << "},";
  // 1. nibble -> linalg on tensors: the literal semantics, formats seen only
  //    through NumberFormatAttrInterface.
  os << "nibble-lower-to-linalg{weights-dir=" << o.weightsDir
     << " probes=" << o.probes << "},";
  // tensor.empty -> alloc_tensor first: CSE would otherwise merge the
  // destinations of unrelated ops and force copies (or fail on casts).
  os << "empty-tensor-to-alloc-tensor,canonicalize,cse,";
  // 2. Tensors -> buffers; identity layouts so raw buffers can be passed.
  os << "one-shot-bufferize{bufferize-function-boundaries "
        "function-boundary-type-conversion=identity-layout-map},";
  // Step functions' caches and logits are updated in their arguments:
  // their results leave the signature.
  os << "nibble-drop-in-place-results";
  if (!o.weightsOutput.empty())
    os << ",nibble-externalize-weights{output=" << o.weightsOutput << "}";
  return parsePassPipeline(os.str(), pm);
}

LogicalResult
mlir::nibble::buildBuffersToLLVMPipeline(OpPassManager &pm,
                                         const ReferencePipelineOptions &o) {
  std::string text;
  llvm::raw_string_ostream os(text);
  // Temporaries are freed where their last use is (a decode loop calls the
  // entry points thousands of times): buffer-deallocation-pipeline, with
  // the ownership analysis run on everything but the generated kernels
  // (their LLVM intrinsic calls have no declared memory effects).
  if (o.deallocate)
    os << "expand-realloc{emit-deallocs=false},canonicalize,"
          "nibble-deallocate-temporaries,canonicalize,"
          "buffer-deallocation-simplification,"
          "bufferization-lower-deallocations,cse,canonicalize,"
          "convert-bufferization-to-memref,";
  // 3. linalg -> loops -> cf. This is the oracle, not the fast path: no
  //    tiling or vectorization on purpose.
  os << "func.func(convert-linalg-to-loops),convert-vector-to-scf,";
  os << "lower-affine,convert-scf-to-cf,expand-strided-metadata,lower-affine,";
  // 4. Everything to the LLVM dialect.
  os << "convert-vector-to-llvm,convert-math-to-llvm,finalize-memref-to-llvm,"
        "convert-arith-to-llvm,convert-index-to-llvm,";
  os << "convert-func-to-llvm{use-bare-ptr-memref-call-conv="
     << (o.barePtrCallConv ? "true" : "false") << "},";
  os << "convert-cf-to-llvm,convert-ub-to-llvm,reconcile-unrealized-casts";
  if (o.parallel)
    os << ",nibble-parallelize-kernel-calls";
  return parsePassPipeline(os.str(), pm);
}

LogicalResult
mlir::nibble::buildReferenceToLLVMPipeline(OpPassManager &pm,
                                           const ReferencePipelineOptions &o) {
  if (failed(buildReferenceToBuffersPipeline(pm, o)))
    return failure();
  return buildBuffersToLLVMPipeline(pm, o);
}

LogicalResult
mlir::nibble::buildCompilePipeline(OpPassManager &pm,
                                   const CompilePipelineOptions &o) {
  ReferencePipelineOptions ref;
  ref.kernelTarget = o.target;
  ref.weightsDir = o.weightsDir;
  ref.weightsOutput = o.weightsOutput;
  if (failed(buildReferenceToLLVMPipeline(pm, ref)))
    return failure();
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "nibble-emit-object{target=" << o.target << " output=" << o.output
     << " kind=" << o.kind << "}";
  return parsePassPipeline(os.str(), pm);
}

LogicalResult mlir::nibble::buildGpuPipeline(OpPassManager &pm,
                                             const GpuPipelineOptions &o) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "nibble-generate-gpu-kernels{chip=" << o.chip
     << " rows-per-block=" << o.rowsPerBlock << "},nibble-gpu-to-ptx{chip="
     << o.chip << " features=" << o.features << " output=" << o.output << "}";
  return parsePassPipeline(os.str(), pm);
}

void mlir::nibble::registerNibblePipelines() {
  PassPipelineRegistration<GpuPipelineOptions>(
      "nibble-to-ptx",
      "Generate NVIDIA GEMV kernels for the nibble matmuls they serve and "
      "write their PTX for one chip",
      [](OpPassManager &pm, const GpuPipelineOptions &o) {
        if (failed(buildGpuPipeline(pm, o)))
          llvm::report_fatal_error("nibble-to-ptx: bad pipeline");
      });
  PassPipelineRegistration<CompilePipelineOptions>(
      "nibble-compile",
      "Compile nibble IR to an object file or shared library for a named "
      "target: generated kernels where they apply, the reference lowering "
      "elsewhere",
      [](OpPassManager &pm, const CompilePipelineOptions &o) {
        if (failed(buildCompilePipeline(pm, o)))
          llvm::report_fatal_error("nibble-compile: bad pipeline");
      });
  PassPipelineRegistration<ReferencePipelineOptions>(
      "nibble-reference-to-llvm",
      "Lower nibble IR to the LLVM dialect through the reference linalg "
      "lowering (the numerical oracle; run with mlir-runner or the JIT)",
      [](OpPassManager &pm, const ReferencePipelineOptions &o) {
        if (failed(buildReferenceToLLVMPipeline(pm, o)))
          llvm::report_fatal_error("nibble-reference-to-llvm: bad pipeline");
      });
}

void mlir::nibble::registerCompilerDialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  registry.insert<NibbleDialect>();
}
