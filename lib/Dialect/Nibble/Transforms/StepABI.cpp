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

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <map>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEDROPINPLACERESULTS
#define GEN_PASS_DEF_NIBBLEEXTERNALIZEWEIGHTS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;

namespace {

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
      f.setFunctionType(FunctionType::get(&getContext(), f.getArgumentTypes(),
                                          {}));
      f.setAllResultAttrs(ArrayRef<DictionaryAttr>{});
    }
  }
};

/// The bytes of a constant global's initializer, or nullopt when it has
/// none we can store (no initializer, sub-byte elements).
std::optional<ArrayRef<char>> constantBytes(memref::GlobalOp g,
                                            std::string &scratch) {
  if (!g.getConstant() || !g.getInitialValue())
    return std::nullopt;
  auto type = g.getType();
  if (!type.hasStaticShape() ||
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
