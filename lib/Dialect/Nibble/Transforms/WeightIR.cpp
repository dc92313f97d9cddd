//===- WeightIR.cpp - Shared helpers of the weight-rewriting passes -------===//

#include "WeightIR.h"

#include "nibble/Formats/Half.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstring>

using namespace mlir;
namespace nq = ::nibble::quant;

namespace mlir::nibble::detail {

FailureOr<std::vector<float>> readWeight(Operation *op, Value v) {
  auto cst = v.getDefiningOp<arith::ConstantOp>();
  auto attr = cst ? dyn_cast<DenseResourceElementsAttr>(cst.getValue())
                  : DenseResourceElementsAttr();
  if (!attr)
    return op->emitError("the weight is not a dense_resource constant"),
           failure();
  AsmResourceBlob *blob = attr.getRawHandle().getBlob();
  if (!blob)
    return op->emitError("the weight dense_resource<")
               << attr.getRawHandle().getKey()
               << "> has no data: bind it first (nibble-bind-weights)",
           failure();
  ArrayRef<char> bytes = blob->getData();
  Type et = attr.getType().getElementType();
  size_t n = size_t(attr.getType().getNumElements());
  std::vector<float> out(n);
  if (et.isF32() && bytes.size() == n * 4)
    std::memcpy(out.data(), bytes.data(), n * 4);
  else if (et.isF16() && bytes.size() == n * 2)
    ::nibble::formats::halfToFloat(bytes.data(), out.data(), n);
  else if (et.isBF16() && bytes.size() == n * 2)
    ::nibble::formats::bf16ToFloat(bytes.data(), out.data(), n);
  else
    return op->emitError("the weight must hold f32, f16 or bf16 data of its "
                         "type's size"),
           failure();
  return out;
}

Value resourceConstant(OpBuilder &b, Location loc, StringRef name,
                       RankedTensorType type, ArrayRef<char> bytes) {
  auto blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(bytes, 64);
  return arith::ConstantOp::create(
      b, loc, DenseResourceElementsAttr::get(type, name, std::move(blob)));
}

Value floatConstant(OpBuilder &b, Location loc, StringRef name,
                    ArrayRef<int64_t> shape, ArrayRef<float> values,
                    Type elementType) {
  auto type = RankedTensorType::get(shape, elementType);
  if (elementType.isF32())
    return resourceConstant(
        b, loc, name, type,
        ArrayRef<char>(reinterpret_cast<const char *>(values.data()),
                       values.size() * 4));
  std::vector<uint16_t> half(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    half[i] = elementType.isBF16() ? ::nibble::formats::floatToBF16(values[i])
                                   : ::nibble::formats::floatToHalf(values[i]);
  return resourceConstant(
      b, loc, name, type,
      ArrayRef<char>(reinterpret_cast<const char *>(half.data()),
                     half.size() * 2));
}

Value scaleColumns(OpBuilder &b, Location loc, Value x, Value m) {
  MLIRContext *ctx = b.getContext();
  auto xType = cast<RankedTensorType>(x.getType());
  AffineMap id = b.getMultiDimIdentityMap(2);
  AffineMap col = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, ctx);
  Value empty = tensor::EmptyOp::create(b, loc, xType.getShape(),
                                        xType.getElementType());
  return linalg::GenericOp::create(
             b, loc, TypeRange{xType}, ValueRange{x, m}, ValueRange{empty},
             ArrayRef<AffineMap>{id, col, id},
             ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                           utils::IteratorType::parallel},
             [](OpBuilder &ob, Location l, ValueRange a) {
               linalg::YieldOp::create(
                   ob, l, ValueRange{arith::MulFOp::create(ob, l, a[0], a[1])});
             })
      .getResult(0);
}

NumberFormatAttrInterface parseFormat(MLIRContext *ctx, StringRef name) {
  std::string text;
  unsigned bits;
  StringRef rest = name;
  if (name.starts_with("#"))
    text = name.str();
  else if (rest.consume_front("uint") && !rest.getAsInteger(10, bits))
    text = "#nibble.int<" + std::to_string(bits) + ", unsigned>";
  else if ((rest = name).consume_front("int") && !rest.getAsInteger(10, bits))
    text = "#nibble.int<" + std::to_string(bits) + ", signed>";
  else if (name == "nf4")
    text = "#nibble.lut<nf4>";
  else
    text = "#nibble.float<" + name.str() + ">";
  // Unknown names are diagnosed by the caller; keep the parser quiet.
  ScopedDiagnosticHandler quiet(ctx, [](Diagnostic &) { return success(); });
  return dyn_cast_or_null<NumberFormatAttrInterface>(parseAttribute(text, ctx));
}

std::optional<std::vector<float>> inputMultiplier(Operation *op) {
  auto attr =
      op->getAttrOfType<DenseResourceElementsAttr>("nibble.input_multiplier");
  if (!attr || !attr.getRawHandle().getBlob())
    return std::nullopt;
  ArrayRef<char> bytes = attr.getRawHandle().getBlob()->getData();
  std::vector<float> m(bytes.size() / 4);
  std::memcpy(m.data(), bytes.data(), m.size() * 4);
  return m;
}

void setInputMultiplier(Operation *op, StringRef layer, ArrayRef<float> m) {
  auto type = RankedTensorType::get({int64_t(m.size())},
                                    Float32Type::get(op->getContext()));
  auto blob = HeapAsmResourceBlob::allocateAndCopyWithAlign(
      ArrayRef<char>(reinterpret_cast<const char *>(m.data()), m.size() * 4),
      64);
  op->setAttr("nibble.input_multiplier",
              DenseResourceElementsAttr::get(
                  type, (layer + ".input_multiplier").str(), std::move(blob)));
}

std::optional<nq::StatsFile> loadStats(Operation *where, StringRef path) {
  std::string error;
  auto stats = nq::StatsFile::load(path.str(), error);
  if (!stats)
    where->emitError(error);
  return stats;
}

const nq::LinearStats *statsFor(Operation *op, StringRef layer, int64_t k,
                                const nq::StatsFile &stats,
                                std::unique_ptr<nq::LinearStats> &holder) {
  const nq::LinearStats *ls = stats.find(layer.str());
  if (!ls) {
    op->emitError("no calibration statistics for '") << layer << "'";
    return nullptr;
  }
  if (ls->k() != k) {
    op->emitError("the statistics of '")
        << layer << "' have " << ls->k() << " channels, the layer " << k;
    return nullptr;
  }
  std::optional<std::vector<float>> m = inputMultiplier(op);
  if (!m)
    return ls;
  std::string error;
  holder = ls->scaled(*m, error);
  if (!holder)
    op->emitError("'") << layer << "': " << error;
  return holder.get();
}

LogicalResult LayerFilter::init(Operation *where, StringRef pattern) {
  if (pattern.empty())
    return success();
  regex_.emplace(pattern);
  std::string error;
  if (!regex_->isValid(error))
    return where->emitError("bad layer regex '") << pattern << "': " << error;
  return success();
}

bool LayerFilter::operator()(StringRef layer) const {
  return !regex_ || regex_->match(layer);
}

LogicalResult Recipe::load(Operation *where, StringRef path,
                           const LayerConfig &defaults) {
  defaults_ = defaults;
  if (path.empty())
    return success();
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf)
    return where->emitError("cannot open recipe ")
           << path << ": " << buf.getError().message();
  auto json = llvm::json::parse((*buf)->getBuffer());
  if (!json)
    return where->emitError("recipe ")
           << path << ": " << llvm::toString(json.takeError());
  const llvm::json::Object *root = json->getAsObject();
  const llvm::json::Array *arr = root ? root->getArray("rules") : nullptr;
  if (!arr)
    return where->emitError("recipe ")
           << path << ": expected an object with a 'rules' array";
  for (size_t i = 0; i < arr->size(); ++i) {
    const llvm::json::Object *r = (*arr)[i].getAsObject();
    auto fail = [&]() {
      return where->emitError("recipe ") << path << ": rules[" << i << "]";
    };
    if (!r || !r->getString("match"))
      return fail() << " needs a string 'match' (a regex on layer names)";
    llvm::Regex pattern(*r->getString("match"));
    std::string regexError;
    if (!pattern.isValid(regexError))
      return fail() << ": bad regex: " << regexError;
    LayerConfig c;
    c.skip = r->getBoolean("skip").value_or(false);
    c.method = r->getString("method").value_or(defaults.method).str();
    c.format = r->getString("format").value_or(defaults.format).str();
    c.group = r->getInteger("group").value_or(defaults.group);
    c.symmetric = r->getBoolean("symmetric").value_or(defaults.symmetric);
    c.scale = r->getString("scale").value_or(defaults.scale).str();
    if (!::nibble::quant::parseScaleStorage(c.scale))
      return fail() << ": scale '" << c.scale
                    << "' is not one of f32, e8m0, e4m3";
    for (const auto &kv : *r)
      if (!llvm::is_contained({"match", "skip", "method", "format", "group",
                               "symmetric", "scale"},
                              kv.first.str()))
        return fail() << ": unknown key '" << kv.first.str() << "'";
    rules_.emplace_back(std::move(pattern), std::move(c));
  }
  return success();
}

LayerConfig Recipe::configFor(StringRef layer) const {
  for (const auto &[pattern, config] : rules_)
    if (pattern.match(layer))
      return config;
  return defaults_;
}

} // namespace mlir::nibble::detail
