//===- StepABI.cpp - The entry-point ABI of compiled step functions -------===//
//
// Two memref-level rewrites that give compiled models the calling convention
// the runtime uses: results that are updated arguments leave the signature
// (nibble-drop-in-place-results), and weights leave the code for a blob the
// runtime maps (nibble-externalize-weights).
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Support/File.h"

#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include <map>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEDROPINPLACERESULTS
#define GEN_PASS_DEF_NIBBLEDEALLOCATETEMPORARIES
#define GEN_PASS_DEF_NIBBLEEXTERNALIZEWEIGHTS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;

namespace {

/// The function argument `v` is, looking through loops that carry a buffer
/// (bufferized `scf.for` iter_args, nested or not: a loop result is what its
/// body yields, a loop's iter_arg is its init) and `scf.if`s both of whose
/// branches yield that argument, or null.
BlockArgument argumentBehind(Value v, func::FuncOp f) {
  while (v) {
    if (auto branch = v.getDefiningOp<scf::IfOp>()) {
      if (!branch.elseBlock())
        return {};
      const unsigned i = cast<OpResult>(v).getResultNumber();
      BlockArgument then =
          argumentBehind(branch.thenYield().getOperand(i), f);
      return then == argumentBehind(branch.elseYield().getOperand(i), f)
                 ? then
                 : BlockArgument();
    }
    if (auto arg = dyn_cast<BlockArgument>(v)) {
      Operation *owner = arg.getOwner()->getParentOp();
      if (owner == f)
        return arg;
      auto loop = dyn_cast<scf::ForOp>(owner);
      OpOperand *init = loop ? loop.getTiedLoopInit(arg) : nullptr;
      if (!init)
        return {};
      v = init->get();
      continue;
    }
    auto loop = v.getDefiningOp<scf::ForOp>();
    if (!loop)
      return {};
    v = loop.getYieldedValues()[cast<OpResult>(v).getResultNumber()];
  }
  return {};
}

/// `f` returns nothing (its returns were emptied).
void dropResultTypes(func::FuncOp f) {
  f.setFunctionType(
      FunctionType::get(f.getContext(), f.getArgumentTypes(), {}));
  f.setAllResultAttrs(ArrayRef<DictionaryAttr>{});
}

struct DropInPlaceResultsPass
    : public mlir::nibble::impl::NibbleDropInPlaceResultsBase<
          DropInPlaceResultsPass> {
  void runOnOperation() override {
    for (auto f : getOperation().getOps<func::FuncOp>()) {
      if (!f->hasAttr("nibble.in_place_results") || f.isExternal())
        continue;
      bool ok = true;
      f.walk([&](func::ReturnOp ret) {
        for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
          auto arg = dyn_cast<BlockArgument>(v);
          if (!arg || arg.getOwner()->getParentOp() != f) {
            ret.emitError() << "@" << f.getSymName() << ": result " << i
                            << " is not updated in place in an argument "
                               "(bufferization copied it)";
            ok = false;
          }
        }
        if (ok)
          ret->setOperands({});
      });
      if (!ok)
        return signalPassFailure();
      dropResultTypes(f);
    }
    dropKernelResults();
  }

  /// Kernels in destination-passing style return their destination
  /// arguments: drop those results and let callers use what they passed.
  void dropKernelResults() {
    ModuleOp module = getOperation();
    SymbolTableCollection tables;
    SymbolUserMap users(tables, module);
    for (auto f : module.getOps<func::FuncOp>()) {
      if (!f->hasAttr("nibble.kernel") || f.isExternal() ||
          f.getNumResults() == 0)
        continue;
      // The argument each result is, identical on every return.
      SmallVector<int> argOf(f.getNumResults(), -1);
      bool dps = true;
      f.walk([&](func::ReturnOp ret) {
        for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
          BlockArgument arg = argumentBehind(v, f);
          if (!arg ||
              (argOf[i] >= 0 && argOf[i] != int(arg.getArgNumber()))) {
            dps = false;
            continue;
          }
          argOf[i] = int(arg.getArgNumber());
        }
      });
      if (!dps)
        continue;
      f.walk([](func::ReturnOp ret) { ret->setOperands({}); });
      dropResultTypes(f);
      for (Operation *user : users.getUsers(f)) {
        auto call = dyn_cast<func::CallOp>(user);
        if (!call)
          continue;
        for (auto [i, r] : llvm::enumerate(call.getResults()))
          r.replaceAllUsesWith(call.getOperand(unsigned(argOf[i])));
        OpBuilder b(call);
        func::CallOp::create(b, call.getLoc(), f, call.getOperands());
        call.erase();
      }
    }
  }
};

struct DeallocateTemporariesPass
    : public mlir::nibble::impl::NibbleDeallocateTemporariesBase<
          DeallocateTemporariesPass> {
  void runOnOperation() override {
    SymbolTableCollection tables;
    bufferization::DeallocationOptions options;
    for (auto f : getOperation().getOps<func::FuncOp>()) {
      if (f.isExternal())
        continue;
      if (!f->hasAttr("nibble.kernel")) {
        if (failed(bufferization::deallocateBuffersOwnershipBased(f, options,
                                                                  tables)))
          return signalPassFailure();
        continue;
      }
      if (failed(freeKernelScratch(f)))
        return signalPassFailure();
    }
  }

  /// Kernels hand back nothing, and their scratch buffers live in one
  /// block: free each at the end of the block that allocates it, after
  /// checking that no alias of it leaves that block.
  static LogicalResult freeKernelScratch(func::FuncOp f) {
    if (llvm::any_of(f.getResultTypes(), llvm::IsaPred<BaseMemRefType>))
      return f.emitError() << "kernel @" << f.getSymName()
                           << " returns a buffer; its temporaries cannot be "
                              "freed";
    SmallVector<memref::AllocOp> allocs;
    f.walk([&](memref::AllocOp a) { allocs.push_back(a); });
    for (memref::AllocOp alloc : allocs) {
      Block *block = alloc->getBlock();
      Operation *term = block->getTerminator();
      // The buffer and what aliases it in this block: loop results that
      // carry it, views and casts of it.
      SmallVector<Value> work{alloc.getResult()};
      DenseSet<Value> seen;
      while (!work.empty()) {
        Value v = work.pop_back_val();
        if (!seen.insert(v).second)
          continue;
        for (OpOperand &use : v.getUses()) {
          Operation *user = use.getOwner();
          if (user == term)
            return alloc.emitError()
                   << "kernel @" << f.getSymName()
                   << ": a scratch buffer leaves the block that allocates it";
          if (auto loop = dyn_cast<scf::ForOp>(user)) {
            if (OpResult r = loop.getTiedLoopResult(&use))
              work.push_back(r);
          } else if (isa<ViewLikeOpInterface, memref::CastOp>(user)) {
            for (Value r : user->getResults())
              work.push_back(r);
          }
        }
      }
      OpBuilder b(term);
      memref::DeallocOp::create(b, alloc.getLoc(), alloc.getResult());
    }
    return success();
  }
};

/// The bytes of a constant global's initializer, or nullopt when it has
/// none we can store (no initializer, sub-byte elements).
std::optional<ArrayRef<char>> constantBytes(memref::GlobalOp g,
                                            std::string &scratch) {
  if (!g.getConstant() || !g.getInitialValue())
    return std::nullopt;
  auto type = g.getType();
  // index (and other non-scalar) elements have no fixed byte width here:
  // they stay in the code.
  if (!type.hasStaticShape() || !type.getElementType().isIntOrFloat() ||
      type.getElementTypeBitWidth() % 8 != 0)
    return std::nullopt;
  Attribute init = *g.getInitialValue();
  if (auto res = dyn_cast<DenseResourceElementsAttr>(init)) {
    AsmResourceBlob *blob = res.getRawHandle().getBlob();
    if (!blob)
      return std::nullopt;
    return blob->getData();
  }
  auto dense = dyn_cast<DenseElementsAttr>(init);
  if (!dense)
    return std::nullopt;
  ArrayRef<char> raw = dense.getRawData();
  if (!dense.isSplat())
    return raw;
  // A splat stores one element: expand it.
  scratch.clear();
  for (int64_t i = 0, n = type.getNumElements(); i < n; ++i)
    scratch.append(raw.data(), raw.size());
  return ArrayRef<char>(scratch.data(), scratch.size());
}

struct ExternalizeWeightsPass
    : public mlir::nibble::impl::NibbleExternalizeWeightsBase<
          ExternalizeWeightsPass> {
  using NibbleExternalizeWeightsBase::NibbleExternalizeWeightsBase;
  void runOnOperation() override {
    std::string blob;
    if (failed(mlir::nibble::externalizeWeights(getOperation(), minBytes,
                                                blob)))
      return signalPassFailure();
    std::string error;
    if (!output.empty() &&
        !::nibble::support::writeFileAtomic(output, blob.data(), blob.size(),
                                            error)) {
      getOperation().emitError(error);
      return signalPassFailure();
    }
  }
};

} // namespace

LogicalResult mlir::nibble::externalizeWeights(ModuleOp module,
                                               int64_t minBytes,
                                               std::string &blob) {
  MLIRContext *ctx = module.getContext();
  SymbolTable symbols(module);
  // Which globals move: constant, large enough, byte-addressable.
  std::map<StringRef, int64_t> offsetOf;
  std::map<std::string, int64_t> byContent;
  SmallVector<Attribute> entries;
  std::string scratch;
  for (auto g : module.getOps<memref::GlobalOp>()) {
    std::optional<ArrayRef<char>> bytes = constantBytes(g, scratch);
    if (!bytes || int64_t(bytes->size()) < minBytes)
      continue;
    std::string key(bytes->data(), bytes->size());
    auto [it, fresh] = byContent.try_emplace(std::move(key), 0);
    if (fresh) {
      blob.resize((blob.size() + 63) / 64 * 64, '\0');
      it->second = int64_t(blob.size());
      blob.append(bytes->data(), bytes->size());
    }
    offsetOf[g.getSymName()] = it->second;
    entries.push_back(DictionaryAttr::get(
        ctx, {NamedAttribute(StringAttr::get(ctx, "global"),
                             FlatSymbolRefAttr::get(g.getSymNameAttr())),
              NamedAttribute(StringAttr::get(ctx, "offset"),
                             IntegerAttr::get(IntegerType::get(ctx, 64),
                                              it->second)),
              NamedAttribute(StringAttr::get(ctx, "bytes"),
                             IntegerAttr::get(IntegerType::get(ctx, 64),
                                              int64_t(bytes->size())))}));
  }
  // Every read must be in a public function, which gains the argument.
  bool ok = true;
  module.walk([&](memref::GetGlobalOp get) {
    if (!offsetOf.count(get.getName()))
      return;
    auto f = get->getParentOfType<func::FuncOp>();
    if (!f || !f.isPublic()) {
      get.emitError() << "weight @" << get.getName()
                      << " is read outside a public function";
      ok = false;
    }
  });
  if (!ok)
    return failure();
  auto bytesTy = MemRefType::get({ShapedType::kDynamic},
                                 IntegerType::get(ctx, 8));
  for (auto f : module.getOps<func::FuncOp>()) {
    SmallVector<memref::GetGlobalOp> gets;
    f.walk([&](memref::GetGlobalOp get) {
      if (offsetOf.count(get.getName()))
        gets.push_back(get);
    });
    if (gets.empty())
      continue;
    unsigned idx = f.getNumArguments();
    if (failed(f.insertArgument(idx, bytesTy,
                                DictionaryAttr::get(
                                    ctx, {NamedAttribute(
                                             StringAttr::get(ctx, "nibble.name"),
                                             StringAttr::get(ctx, "weights"))}),
                                f.getLoc())))
      return failure();
    Value base = f.getArgument(idx);
    for (memref::GetGlobalOp get : gets) {
      OpBuilder b(get);
      Value shift = arith::ConstantIndexOp::create(b, get.getLoc(),
                                                   offsetOf[get.getName()]);
      Value view = memref::ViewOp::create(b, get.getLoc(), get.getType(), base,
                                          shift, ValueRange{});
      get.replaceAllUsesWith(view);
      get.erase();
    }
  }
  for (auto &[name, offset] : offsetOf)
    if (auto g = symbols.lookup<memref::GlobalOp>(name);
        g && SymbolTable::symbolKnownUseEmpty(g, module))
      g.erase();
  module->setAttr(
      "nibble.weights",
      DictionaryAttr::get(
          ctx, {NamedAttribute(StringAttr::get(ctx, "bytes"),
                               IntegerAttr::get(IntegerType::get(ctx, 64),
                                                int64_t(blob.size()))),
                NamedAttribute(StringAttr::get(ctx, "entries"),
                               ArrayAttr::get(ctx, entries))}));
  return success();
}
