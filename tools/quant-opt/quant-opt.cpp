//===- quant-opt.cpp - The nibble optimizer driver ------------------------===//
//
// mlir-opt with the nibble dialect, its passes and pipelines, plus the
// upstream dialects and passes the pipelines use.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Pipelines/Pipelines.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::nibble::registerNibblePasses();
  mlir::nibble::registerNibblePipelines();

  mlir::DialectRegistry registry;
  // Translations too: gpu-module-to-binary (nibble-gpu-to-ptx) translates
  // NVVM to LLVM IR.
  mlir::nibble::registerCompilerDialects(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "quant-opt: the Nibble quantizing compiler's optimizer driver\n",
      registry));
}
