//===- EmitObject.cpp - LLVM-dialect module -> object file / shared library ===//
//
// The last step of an ahead-of-time compile: translate the module (already
// in the LLVM dialect) to LLVM IR, optimize it at -O3 for the named target
// (TargetSpec: CPU and features), and emit an ELF object, or link it into a
// shared library with ld.lld. The output is written to a temporary file in
// the same directory and renamed, so a failed compile never leaves a
// partial file behind.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Target/TargetSpec.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"

#include <mutex>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEEMITOBJECT
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;

namespace {

/// A temporary file next to `final` (same file system, so rename is
/// atomic), removed on destruction unless committed.
struct TempFile {
  std::string path;
  bool committed = false;
  explicit TempFile(llvm::StringRef final, llvm::StringRef ext) {
    llvm::SmallString<256> model(final);
    model += ".tmp-%%%%%%";
    model += ext;
    int fd;
    if (!llvm::sys::fs::createUniqueFile(model, fd, model)) {
      llvm::sys::Process::SafelyCloseFileDescriptor(fd);
      path = model.str().str();
    }
  }
  ~TempFile() {
    if (!committed && !path.empty())
      llvm::sys::fs::remove(path);
  }
};

struct EmitObjectPass
    : public mlir::nibble::impl::NibbleEmitObjectBase<EmitObjectPass> {
  using NibbleEmitObjectBase::NibbleEmitObjectBase;

  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<LLVM::LLVMDialect>();
    registerBuiltinDialectTranslation(registry);
    registerLLVMDialectTranslation(registry);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](const llvm::Twine &msg) {
      // No op dump: the module is large and the message says it all.
      mlir::emitError(module.getLoc(), "nibble-emit-object: ") << msg;
      signalPassFailure();
    };
    if (output.empty())
      return fail("no output file (output=PATH)");
    if (kind != "object" && kind != "shared")
      return fail("kind must be 'object' or 'shared', not '" + kind + "'");
    std::string error;
    auto spec = ::nibble::target::TargetSpec::parse(target, error);
    if (!spec)
      return fail(error);
    static std::once_flag init;
    std::call_once(init, [] {
      llvm::InitializeAllTargetInfos();
      llvm::InitializeAllTargets();
      llvm::InitializeAllTargetMCs();
      llvm::InitializeAllAsmPrinters();
    });
    llvm::Triple triple(spec->triple());
    const llvm::Target *t = llvm::TargetRegistry::lookupTarget(triple, error);
    if (!t)
      return fail("no LLVM backend for " + spec->triple() + ": " + error);
    llvm::TargetOptions options;
    std::unique_ptr<llvm::TargetMachine> tm(t->createTargetMachine(
        triple, spec->cpu(), spec->features(), options, llvm::Reloc::PIC_,
        std::nullopt, llvm::CodeGenOptLevel::Aggressive));
    if (!tm)
      return fail("cannot create a target machine for " + spec->describe());

    llvm::LLVMContext llvmContext;
    std::unique_ptr<llvm::Module> llvmModule =
        translateModuleToLLVMIR(module, llvmContext, "nibble");
    if (!llvmModule)
      return fail("the module is not fully in the LLVM dialect (run "
                  "nibble-reference-to-llvm first)");
    llvmModule->setTargetTriple(triple);
    llvmModule->setDataLayout(tm->createDataLayout());
    // Every function gets the target's CPU and features, so that LLVM's
    // IR passes (vectorizers, inlining) see the same machine as codegen.
    for (llvm::Function &f : *llvmModule) {
      if (f.isDeclaration())
        continue;
      f.addFnAttr("target-cpu", spec->cpu());
      if (!spec->features().empty())
        f.addFnAttr("target-features", spec->features());
    }
    if (llvm::Error e = makeOptimizingTransformer(3, 0, tm.get())(
            llvmModule.get())) {
      return fail("LLVM optimization failed: " +
                  llvm::toString(std::move(e)));
    }

    llvm::SmallVector<char, 0> objectBytes;
    {
      llvm::raw_svector_ostream os(objectBytes);
      llvm::legacy::PassManager pm;
      if (tm->addPassesToEmitFile(pm, os, nullptr,
                                  llvm::CodeGenFileType::ObjectFile))
        return fail("the target cannot emit object files");
      pm.run(*llvmModule);
    }

    TempFile object(output, ".o");
    if (object.path.empty())
      return fail("cannot create a temporary file next to '" + output + "'");
    {
      std::error_code ec;
      llvm::raw_fd_ostream os(object.path, ec);
      if (ec)
        return fail("cannot write '" + object.path + "': " + ec.message());
      os.write(objectBytes.data(), objectBytes.size());
      os.close();
      if (os.has_error())
        return fail("cannot write '" + object.path + "'");
    }
    TempFile *finished = &object;
    std::optional<TempFile> shared;
    if (kind == "shared") {
      auto lld = llvm::sys::findProgramByName("ld.lld-22");
      if (!lld)
        lld = llvm::sys::findProgramByName("ld.lld");
      if (!lld)
        return fail("kind=shared needs ld.lld (Debian package lld-22) on "
                    "PATH");
      shared.emplace(output, ".so");
      if (shared->path.empty())
        return fail("cannot create a temporary file next to '" + output +
                    "'");
      std::string message;
      llvm::SmallVector<llvm::StringRef> args = {
          *lld, "-shared", "--build-id=none", "-o", shared->path, object.path};
      int rc = llvm::sys::ExecuteAndWait(*lld, args, std::nullopt, {}, 0, 0,
                                         &message);
      if (rc != 0)
        return fail("ld.lld failed (" + std::to_string(rc) + ")" +
                    (message.empty() ? "" : ": " + message));
      finished = &*shared;
    }
    if (std::error_code ec = llvm::sys::fs::rename(finished->path, output))
      return fail("cannot rename '" + finished->path + "' to '" + output +
                  "': " + ec.message());
    finished->committed = true;
  }
};

} // namespace
