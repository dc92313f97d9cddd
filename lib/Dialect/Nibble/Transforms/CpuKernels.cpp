//===- CpuKernels.cpp - Vector-dialect CPU kernel builders ----------------===//
//
// Common shape of the matmul kernels: for each output row n in [n0, n1)
// (threads take disjoint row ranges), for each group of G input columns,
// independent vector accumulators per activation row; at the group end the
// group sum is scaled and added into the row's f32 accumulator; the row
// ends in a tree reduction (reassociation allowed on that reduction only).
// The dequantized weights never exist outside registers.
//
//===----------------------------------------------------------------------===//

#include "CpuKernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/Hashing.h"
#include "llvm/Support/Format.h"

#include <cmath>
#include <cstring>
#include <numeric>

using namespace mlir;
using namespace mlir::nibble;
using namespace mlir::nibble::cpu;

namespace {

constexpr int64_t kF32Lanes = 16;

std::string shapeSuffix(int64_t m, int64_t n, int64_t k) {
  return "_m" + std::to_string(m) + "_n" + std::to_string(n) + "_k" +
         std::to_string(k);
}

/// The element type scales of `storage` are passed in (8-bit codes as
/// i8).
Type scaleElementType(MLIRContext *ctx, ScaleStorage storage) {
  switch (storage) {
  case ScaleStorage::F32:
    return Float32Type::get(ctx);
  case ScaleStorage::F16:
    return Float16Type::get(ctx);
  case ScaleStorage::BF16:
    return BFloat16Type::get(ctx);
  case ScaleStorage::Table8:
    return IntegerType::get(ctx, 8);
  }
  llvm_unreachable("scale storage");
}

/// Kernel-name tag of the scale storage (none for f32).
const char *scaleTag(ScaleStorage storage) {
  switch (storage) {
  case ScaleStorage::F32:
    return "";
  case ScaleStorage::F16:
    return "_sf16";
  case ScaleStorage::BF16:
    return "_sbf16";
  case ScaleStorage::Table8:
    return "_s8t";
  }
  llvm_unreachable("scale storage");
}

/// Kernel-name tag of zero points: "z" for f32 ones, "z" and the element
/// type otherwise, nothing without.
std::string zeroTag(bool zeroPoints, Type type) {
  if (!zeroPoints)
    return "";
  std::string tag = "z";
  if (!type.isF32())
    llvm::raw_string_ostream(tag) << type;
  return tag;
}

/// A stored scale or zero point (scalar or vector) as f32: floats widened,
/// integers sign-extended, as the reference lowering reads them.
Value toF32(OpBuilder &b, Location loc, Value v) {
  Type f32 = b.getF32Type();
  Type t = v.getType();
  if (auto vt = dyn_cast<VectorType>(t))
    f32 = VectorType::get(vt.getShape(), f32);
  if (getElementTypeOrSelf(t).isF32())
    return v;
  if (isa<IntegerType>(getElementTypeOrSelf(t)))
    return arith::SIToFPOp::create(b, loc, f32, v);
  return arith::ExtFOp::create(b, loc, f32, v);
}

/// The f32 scale of (row n, group g) of `s`, stored as `storage`; for
/// Table8, the code (read unsigned) indexes `table`.
Value groupScale(OpBuilder &b, Location loc, ScaleStorage storage, Value s,
                 Value table, Value n, Value g) {
  Value v = tensor::ExtractOp::create(b, loc, s, ValueRange{n, g});
  if (storage != ScaleStorage::Table8)
    return toF32(b, loc, v);
  Value wide = arith::ExtUIOp::create(b, loc, b.getI32Type(), v);
  Value at = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), wide);
  return tensor::ExtractOp::create(b, loc, table, ValueRange{at});
}

/// Small helpers over one OpBuilder and Location.
struct Emit {
  OpBuilder &b;
  Location loc;
  Value idx(int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v).getResult();
  }
  Value splat(VectorType t, Attribute scalar) {
    return arith::ConstantOp::create(b, loc,
                                     DenseElementsAttr::get(t, scalar));
  }
  Value f32(float v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value read(Value t, ValueRange at, VectorType vt) {
    Type e = vt.getElementType();
    Value pad = arith::ConstantOp::create(b, loc, b.getZeroAttr(e));
    return vector::TransferReadOp::create(b, loc, vt, t, at, pad,
                                          ArrayRef<bool>{true})
        .getResult();
  }
  Value write(Value v, Value t, ValueRange at) {
    return vector::TransferWriteOp::create(b, loc, v, t, at,
                                           ArrayRef<bool>{true})
        .getResult();
  }
  /// a * c0 + c1 on indices.
  Value affine(Value a, int64_t c0, Value c1) {
    Value p = arith::MulIOp::create(b, loc, a, idx(c0));
    return c1 ? arith::AddIOp::create(b, loc, p, c1).getResult() : p;
  }
  Value add(Value a, Value c) {
    return arith::AddIOp::create(b, loc, a, c).getResult();
  }
  /// First column of step `st` of group `g`, and the byte that holds it in
  /// a row starting at `rowBase` (two codes per byte for int4).
  std::pair<Value, Value> column(Value rowBase, Value g, int64_t group,
                                 Value st, int64_t codesPerStep,
                                 int64_t bits) {
    Value col = add(affine(g, group, nullptr), affine(st, codesPerStep, nullptr));
    // col * bits / 8 (col is a multiple of 64 for 6-bit codes).
    Value inRow = col;
    if (bits == 4)
      inRow = arith::DivUIOp::create(b, loc, col, idx(2));
    else if (bits == 6)
      inRow = arith::DivUIOp::create(b, loc, affine(col, 3, nullptr), idx(4));
    return {col, add(rowBase, inRow)};
  }
};

using LoopBody = function_ref<SmallVector<Value>(OpBuilder &, Location, Value,
                                                 ValueRange)>;

/// scf.for [lb, ub) step 1 with iter_args; the body returns the yield.
scf::ForOp loop(OpBuilder &b, Location loc, Value lb, Value ub,
                ValueRange init, LoopBody body) {
  return scf::ForOp::create(
      b, loc, lb, ub, arith::ConstantIndexOp::create(b, loc, 1), init,
      [&](OpBuilder &lb2, Location l, Value iv, ValueRange iter) {
        SmallVector<Value> next = body(lb2, l, iv, iter);
        scf::YieldOp::create(lb2, l, next);
      });
}

func::FuncOp makeFunc(ModuleOp module, OpBuilder &b, StringRef name,
                      TypeRange args, TypeRange results, StringRef kind,
                      ArrayRef<unsigned> writable) {
  b.setInsertionPointToEnd(module.getBody());
  auto fn = func::FuncOp::create(b, module.getLoc(), name,
                                 b.getFunctionType(args, results));
  for (unsigned i : writable)
    fn.setArgAttr(i, "bufferization.writable", b.getBoolAttr(true));
  fn->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  fn->setAttr("nibble.kernel", b.getStringAttr(kind));
  b.setInsertionPointToStart(fn.addEntryBlock());
  return fn;
}

/// Records where the output-row range [n0, n1) (arguments `first` and
/// `first + 1`) sits among the kernel's arguments once memrefs are
/// expanded into descriptors by convert-func-to-llvm (allocated, aligned,
/// offset, sizes, strides: 3 + 2 * rank values each), and the work per row:
/// what nibble-parallelize-kernel-calls needs to split the rows, and (when
/// above 1) the multiple a range must start at.
void markRowRange(func::FuncOp fn, unsigned first, int64_t workPerRow,
                  int64_t rowAlign = 1) {
  int64_t at = 0;
  for (Type t : fn.getArgumentTypes().take_front(first))
    at += isa<ShapedType>(t) ? 3 + 2 * cast<ShapedType>(t).getRank() : 1;
  OpBuilder b(fn.getContext());
  fn->setAttr("nibble.row_range", b.getI64IntegerAttr(at));
  fn->setAttr("nibble.row_work", b.getI64IntegerAttr(workPerRow));
  if (rowAlign > 1)
    fn->setAttr("nibble.row_align", b.getI64IntegerAttr(rowAlign));
}

/// The value stored at y[m, n]: `acc` through the epilogue's body.
Value applyEpilogue(OpBuilder &b, Location loc, const Epilogue *epi,
                    Value acc, Value m, Value n, ValueRange extras) {
  if (!epi)
    return acc;
  linalg::GenericOp op = epi->op;
  Block &body = op.getRegion().front();
  IRMapping map;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  unsigned e = 0;
  for (unsigned i = 0; i < unsigned(op.getNumDpsInputs()); ++i) {
    if (i == epi->resultInput) {
      map.map(body.getArgument(i), acc);
      continue;
    }
    SmallVector<Value> idx;
    for (AffineExpr r : maps[i].getResults())
      idx.push_back(cast<AffineDimExpr>(r).getPosition() == 0 ? m : n);
    map.map(body.getArgument(i),
            tensor::ExtractOp::create(b, loc, extras[e++], idx).getResult());
  }
  for (Operation &o : body.without_terminator())
    b.clone(o, map);
  return map.lookup(body.getTerminator()->getOperand(0));
}

/// Tensor types of the epilogue's extra inputs.
SmallVector<Type> extraTypes(const Epilogue *epi) {
  SmallVector<Type> types;
  if (epi)
    for (Value v : epi->extraInputs())
      types.push_back(v.getType());
  return types;
}

/// The argument types after a kernel's row range: the epilogue's extra
/// inputs, then the output quantization's (scale, xq, xsum).
SmallVector<Type> trailingTypes(OpBuilder &b, const Epilogue *epi,
                                const QuantizeOutput *q, int64_t m,
                                int64_t n) {
  SmallVector<Type> types = extraTypes(epi);
  if (q)
    types.append({b.getF32Type(), RankedTensorType::get({m, n}, b.getI8Type()),
                  RankedTensorType::get({m, n / q->group}, b.getF32Type())});
  return types;
}

/// Where a kernel's outputs go. The loop-carried tensors are the kernel's
/// results in order: y, then with a QuantizeOutput xq and xsum.
struct OutputStore {
  const Epilogue *epilogue;
  const QuantizeOutput *quantize;
  ValueRange extras; ///< the epilogue's inputs
  Value scale;       ///< the static activation scale (quantize only)

  /// `trailing` are the kernel's arguments after its row range.
  OutputStore(const Epilogue *epi, const QuantizeOutput *q, ValueRange trailing)
      : epilogue(epi), quantize(q) {
    size_t nExtra = epi ? epi->extraInputs().size() : 0;
    extras = trailing.take_front(nExtra);
    if (q)
      scale = trailing[nExtra];
  }

  /// The initial loop-carried outputs: y0 and the quantization's buffers.
  SmallVector<Value> init(Value y0, ValueRange trailing) const {
    SmallVector<Value> outs = {y0};
    if (quantize) {
      size_t at = extras.size();
      outs.append({trailing[at + 1], trailing[at + 2]});
    }
    return outs;
  }

  /// Indices of the quantization's destination arguments (xq, xsum) when
  /// the trailing arguments start at `firstTrailing`.
  static SmallVector<unsigned> writable(const Epilogue *epi,
                                        const QuantizeOutput *q,
                                        unsigned firstTrailing) {
    if (!q)
      return {};
    unsigned at =
        firstTrailing + unsigned(epi ? epi->extraInputs().size() : 0);
    return {at + 1, at + 2};
  }

  /// Stores output (m, n), `acc` through the epilogue, into `outs` and
  /// returns the updated tensors. With a QuantizeOutput, also its int8 code
  /// (the ActQuantizer's arithmetic) and the running sum of its group's
  /// codes, restarted at the group's first column.
  SmallVector<Value> store(OpBuilder &b, Location loc, Value acc, Value m,
                           Value n, ValueRange outs) const {
    Value v = applyEpilogue(b, loc, epilogue, acc, m, n, extras);
    SmallVector<Value> next(outs.begin(), outs.end());
    next[0] = tensor::InsertOp::create(b, loc, v, outs[0], ValueRange{m, n});
    if (!quantize)
      return next;
    Emit e{b, loc};
    Value q = math::RoundEvenOp::create(
        b, loc, arith::DivFOp::create(b, loc, v, scale));
    q = arith::MinimumFOp::create(
        b, loc, arith::MaximumFOp::create(b, loc, q, e.f32(-128.0f)),
        e.f32(127.0f));
    Value code = arith::TruncIOp::create(
        b, loc, b.getI8Type(),
        arith::FPToSIOp::create(b, loc, b.getI32Type(), q));
    next[1] = tensor::InsertOp::create(b, loc, code, outs[1], ValueRange{m, n});
    Value g = e.idx(quantize->group);
    Value gi = arith::DivUIOp::create(b, loc, n, g);
    Value first = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::eq,
        arith::RemUIOp::create(b, loc, n, g), e.idx(0));
    Value old = tensor::ExtractOp::create(b, loc, outs[2], ValueRange{m, gi});
    Value base = arith::SelectOp::create(b, loc, first, e.f32(0.0f), old);
    next[2] = tensor::InsertOp::create(
        b, loc, arith::AddFOp::create(b, loc, base, q), outs[2],
        ValueRange{m, gi});
    return next;
  }
};


/// A matmul kernel's function and its entry block: `inputs`, then
/// y: [M,N]f32 and the output-row range n0, n1, then the epilogue's and the
/// output quantization's arguments (trailingTypes); results y and, with a
/// QuantizeOutput, xq and xsum. The row range is marked for
/// nibble-parallelize-kernel-calls (M * K work a row, aligned to the
/// quantization's group).
struct KernelFunc {
  func::FuncOp fn;
  ValueRange inputs;
  Value y0, n0, n1;
  ValueRange trailing;
  OutputStore outputs;
};

KernelFunc makeKernelFunc(ModuleOp module, OpBuilder &b, StringRef name,
                          StringRef kind, ArrayRef<Type> inputs, int64_t m,
                          int64_t n, int64_t k, const Epilogue *epilogue,
                          const QuantizeOutput *quantize) {
  auto yT = RankedTensorType::get({m, n}, b.getF32Type());
  SmallVector<Type> args(inputs.begin(), inputs.end());
  args.append({yT, b.getIndexType(), b.getIndexType()});
  args.append(trailingTypes(b, epilogue, quantize, m, n));
  SmallVector<Type> results = {yT};
  if (quantize)
    results.append(args.end() - 2, args.end());
  const unsigned yi = unsigned(inputs.size());
  SmallVector<unsigned> writable = {yi};
  writable.append(OutputStore::writable(epilogue, quantize, yi + 3));
  func::FuncOp fn = makeFunc(module, b, name, args, results, kind, writable);
  markRowRange(fn, yi + 1, m * k, quantize ? quantize->group : 1);
  Block *entry = &fn.getBody().front();
  ValueRange trailing = entry->getArguments().drop_front(yi + 3);
  return {fn,
          entry->getArguments().take_front(yi),
          entry->getArgument(yi),
          entry->getArgument(yi + 1),
          entry->getArgument(yi + 2),
          trailing,
          OutputStore(epilogue, quantize, trailing)};
}
} // namespace

SmallVector<Value> Epilogue::extraInputs() const {
  SmallVector<Value> out;
  for (unsigned i = 0; i < unsigned(op.getNumDpsInputs()); ++i)
    if (i != resultInput)
      out.push_back(op.getDpsInputs()[i]);
  return out;
}

std::string Epilogue::key() const {
  // The printed body, maps and input types; equal text, equal epilogue.
  std::string text;
  llvm::raw_string_ostream os(text);
  os << resultInput << ";";
  for (AffineMap m : op.getIndexingMapsArray())
    os << m << ";";
  for (Value v : op.getDpsInputs())
    os << v.getType() << ";";
  OpPrintingFlags flags;
  flags.printGenericOpForm().skipRegions(false);
  for (Operation &o : op.getRegion().front())
    o.print(os, flags);
  std::string hex;
  llvm::raw_string_ostream hs(hex);
  hs << llvm::format_hex_no_prefix(uint64_t(llvm::hash_value(text)), 16);
  return "_e" + hex;
}

std::optional<Epilogue> cpu::matchEpilogue(Value result, Operation *user) {
  auto op = dyn_cast_or_null<linalg::GenericOp>(user);
  if (!op || op.getNumDpsInits() != 1 || op.getNumResults() != 1 ||
      op.getNumLoops() != 2 || op.getNumReductionLoops() != 0 ||
      op.getResult(0).getType() != result.getType())
    return std::nullopt;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (!maps.back().isIdentity())
    return std::nullopt;
  Block &body = op.getRegion().front();
  // The output's block argument must not be read.
  if (!body.getArguments().back().use_empty())
    return std::nullopt;
  std::optional<unsigned> at;
  for (unsigned i = 0; i < unsigned(op.getNumDpsInputs()); ++i) {
    Value in = op.getDpsInputs()[i];
    if (in == result) {
      if (at || !maps[i].isIdentity())
        return std::nullopt;
      at = i;
      continue;
    }
    auto t = dyn_cast<RankedTensorType>(in.getType());
    if (!t || !t.getElementType().isF32() || !maps[i].isProjectedPermutation())
      return std::nullopt;
  }
  if (!at)
    return std::nullopt;
  for (Operation &o : body.without_terminator()) {
    if (!isa<arith::ArithDialect, math::MathDialect>(o.getDialect()) ||
        o.getNumRegions() != 0)
      return std::nullopt;
    for (Value v : o.getOperands())
      if (v.getParentBlock() != &body)
        return std::nullopt;
  }
  if (body.getTerminator()->getNumOperands() != 1 ||
      body.getTerminator()->getOperand(0).getParentBlock() != &body)
    return std::nullopt;
  return Epilogue{op, *at};
}

std::string WeightOnlyKernel::name() const {
  std::string tag;
  switch (decode) {
  case WeightDecode::SignedInt:
    tag = "w" + std::to_string(storeBits);
    break;
  case WeightDecode::UnsignedInt:
    tag = "u" + std::to_string(storeBits);
    break;
  case WeightDecode::Table: {
    // Kernels differ by their table; name them by its bits.
    llvm::hash_code h = llvm::hash_combine_range(
        reinterpret_cast<const uint32_t *>(table.data()),
        reinterpret_cast<const uint32_t *>(table.data() + table.size()));
    std::string hex;
    llvm::raw_string_ostream hs(hex);
    hs << llvm::format_hex_no_prefix(uint64_t(h) & 0xFFFFFFFFu, 8);
    tag = "lut" + hex + "_";
    break;
  }
  case WeightDecode::E5M2:
    tag = "e5m2";
    break;
  case WeightDecode::Fp6:
    tag = "f6m" + std::to_string(manBits) + "b" + std::to_string(bias) + "_";
    break;
  case WeightDecode::ByteFloat:
    tag = "f" + std::to_string(1 + expBits + manBits) + "m" +
          std::to_string(manBits) + "b" + std::to_string(bias) + "_";
    break;
  }
  return "nibble_gemv_" + tag + "g" + std::to_string(group) +
         zeroTag(zeroPoints, zeroPointType) + scaleTag(scales) +
         (tiled() ? "_t" + std::to_string(rowTile) : std::string()) +
         shapeSuffix(m, n, k);
}

std::string WeightOnlyKernel::layout() const {
  const char *prefix = decode == WeightDecode::SignedInt     ? "int"
                       : decode == WeightDecode::UnsignedInt ? "uint"
                                                             : "code";
  if (storeBits == 6)
    return "code6-split64";
  if (tiled())
    return std::string(prefix) + std::to_string(storeBits) +
           (storeBits == 4 ? "-rowtile" : "-coltile") +
           std::to_string(rowTile);
  return std::string(prefix) +
         (storeBits == 4 ? "4-interleave32" : "8-dense");
}

std::string IntDotKernel::name() const {
  return std::string("nibble_gemv_") + (unsignedFormat ? "u" : "w") +
         std::to_string(bits) + "a8g" + std::to_string(group) +
         zeroTag(zeroPoints, zeroPointType) + scaleTag(scales) +
         (tiled() ? "_t" + std::to_string(rowTile) : std::string()) +
         (paneled() ? "_p" + std::to_string(panelGroups) : std::string()) +
         shapeSuffix(m, n, k);
}

std::string ActQuantizer::name() const {
  return "nibble_quantize_rows_i8g" + std::to_string(group) + "_m" +
         std::to_string(m) + "_k" + std::to_string(k);
}

namespace {

/// How far ahead of its reads a weight-only kernel prefetches its weights.
constexpr int64_t kPrefetchBytes = 4096;

/// Turns one vector<16xi8> of stored weight bytes into f32 vectors: two
/// (codes c..c+15 from the low nibbles, c+16..c+31 from the high ones) for
/// nibble storage, one for bytes. Constants are made once, at the entry.
struct WeightDecoder {
  const WeightOnlyKernel &key;
  MLIRContext *ctx;
  VectorType vf32, vi32, vi16, vf16, vi8;
  Value c4, c28, c15, c8i16, c15b, c4b;
  // Table lookups: the whole table (AVX-512), its halves (AVX2) or its four
  // byte planes (NEON), and the bit that picks a half.
  Value table, tableLo, tableHi, bit3, zero8, zero16;
  SmallVector<Value, 4> planes;
  // code6-split64: the nibble and sign/top-bit masks, the f16 mask, shifts.
  Value nibMask, topMask, f6Mask, f6Shift;
  // ByteFloat: the shift into f32 bit positions, the mask that keeps the
  // sign and the code's exponent and mantissa, the rebias factor.
  Value bfShift, bfMask, bfFactor;
  Value shl[15];

  WeightDecoder(OpBuilder &b, Location loc, const WeightOnlyKernel &key)
      : key(key), ctx(b.getContext()) {
    Emit e{b, loc};
    vf32 = VectorType::get({kF32Lanes}, b.getF32Type());
    vi32 = VectorType::get({kF32Lanes}, b.getI32Type());
    vi16 = VectorType::get({kF32Lanes}, b.getI16Type());
    vf16 = VectorType::get({kF32Lanes}, b.getF16Type());
    vi8 = VectorType::get({kF32Lanes}, b.getI8Type());
    c4 = e.splat(vi32, b.getI32IntegerAttr(4));
    c28 = e.splat(vi32, b.getI32IntegerAttr(28));
    c15 = e.splat(vi32, b.getI32IntegerAttr(15));
    c8i16 = e.splat(vi16, b.getI16IntegerAttr(8));
    c15b = e.splat(vi8, b.getI8IntegerAttr(15));
    c4b = e.splat(vi8, b.getI8IntegerAttr(4));
    if (key.decode == WeightDecode::Fp6) {
      auto i16 = [&](int v) { return e.splat(vi16, b.getI16IntegerAttr(int16_t(v))); };
      nibMask = i16(0x3C00);
      topMask = i16(int16_t(0xC000));
      f6Mask = i16(int16_t(0x8000 | ((1 << (15 - key.manBits)) - 1)));
      f6Shift = i16(key.manBits);
      for (int sh : {6, 8, 10, 12, 14})
        shl[sh] = i16(sh);
      return;
    }
    if (key.decode == WeightDecode::ByteFloat) {
      const uint32_t field = (1u << unsigned(key.expBits + key.manBits)) - 1;
      if (key.byteFloatViaF16()) {
        const int shift = 10 - key.manBits;
        bfShift = e.splat(vi16, b.getI16IntegerAttr(int16_t(shift)));
        bfMask = e.splat(vi16, b.getI16IntegerAttr(int16_t(
                                   0x8000u | (field << unsigned(shift)))));
        return;
      }
      const int shift = 23 - key.manBits;
      bfShift = e.splat(vi32, b.getI32IntegerAttr(shift));
      bfMask = e.splat(vi32, b.getI32IntegerAttr(int32_t(
                                 0x80000000u | (field << unsigned(shift)))));
      bfFactor = e.splat(vf32, b.getF32FloatAttr(
                                   std::ldexp(1.0f, 127 - key.bias)));
      return;
    }
    if (key.decode != WeightDecode::Table)
      return;
    auto floats = [&](size_t first, int64_t count) {
      auto t = VectorType::get({count}, b.getF32Type());
      return arith::ConstantOp::create(
                 b, loc,
                 DenseElementsAttr::get(
                     t, ArrayRef<float>(key.table).slice(first, size_t(count))))
          .getResult();
    };
    switch (key.permute) {
    case PermuteKind::Avx512:
      table = floats(0, 16);
      break;
    case PermuteKind::Avx2:
      tableLo = floats(0, 8);
      tableHi = floats(8, 8);
      bit3 = e.splat(VectorType::get({8}, b.getI32Type()),
                     b.getI32IntegerAttr(8));
      zero8 = e.splat(VectorType::get({8}, b.getI32Type()),
                      b.getI32IntegerAttr(0));
      zero16 = e.splat(vf32, b.getF32FloatAttr(0.0f));
      break;
    case PermuteKind::Neon:
      for (unsigned byte = 0; byte < 4; ++byte) {
        SmallVector<int8_t> plane;
        for (float v : key.table) {
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          plane.push_back(int8_t(bits >> (8 * byte)));
        }
        planes.push_back(arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(vi8, ArrayRef<int8_t>(plane))));
      }
      break;
    case PermuteKind::None:
      llvm_unreachable("table decode needs a vector permute");
    }
  }

  Value intrinsic(OpBuilder &b, Location l, StringRef name, Type result,
                  ValueRange args) {
    return LLVM::CallIntrinsicOp::create(b, l, result,
                                         StringAttr::get(ctx, name), args)
        .getResult(0);
  }

  /// table[idx & 15] per lane; idx is vector<16xi32> (x86) or the codes
  /// as vector<16xi8> (NEON).
  Value lookup(OpBuilder &b, Location l, Value idx) {
    switch (key.permute) {
    case PermuteKind::Avx512:
      // vpermps reads the low 4 bits of each index.
      return intrinsic(b, l, "llvm.x86.avx512.permvar.sf.512", vf32,
                       {table, idx});
    case PermuteKind::Avx2: {
      // vpermps ymm reads the low 3 bits; bit 3 picks the half.
      auto v8f = VectorType::get({8}, b.getF32Type());
      Value out = zero16;
      for (int64_t h = 0; h < 2; ++h) {
        Value part = vector::ExtractStridedSliceOp::create(
            b, l, idx, ArrayRef<int64_t>{8 * h}, ArrayRef<int64_t>{8},
            ArrayRef<int64_t>{1});
        Value lo = intrinsic(b, l, "llvm.x86.avx2.permps", v8f,
                             {tableLo, part});
        Value hi = intrinsic(b, l, "llvm.x86.avx2.permps", v8f,
                             {tableHi, part});
        Value upper = arith::CmpIOp::create(
            b, l, arith::CmpIPredicate::ne,
            arith::AndIOp::create(b, l, part, bit3), zero8);
        Value sel = arith::SelectOp::create(b, l, upper, hi, lo);
        out = vector::InsertStridedSliceOp::create(
            b, l, sel, out, ArrayRef<int64_t>{8 * h}, ArrayRef<int64_t>{1});
      }
      return out;
    }
    case PermuteKind::Neon: {
      // Byte b of every looked-up value, for the 16 codes, per plane;
      // then interleave the planes into 16 little-endian f32.
      SmallVector<Value, 4> bytes;
      for (Value plane : planes)
        bytes.push_back(intrinsic(b, l, "llvm.aarch64.neon.tbl1.v16i8", vi8,
                                  {plane, idx}));
      SmallVector<int64_t> zip, quad;
      for (int64_t i = 0; i < 16; ++i)
        zip.append({i, 16 + i});
      for (int64_t i = 0; i < 16; ++i)
        quad.append({2 * i, 2 * i + 1, 32 + 2 * i, 32 + 2 * i + 1});
      Value b01 = vector::ShuffleOp::create(b, l, bytes[0], bytes[1], zip);
      Value b23 = vector::ShuffleOp::create(b, l, bytes[2], bytes[3], zip);
      Value all = vector::ShuffleOp::create(b, l, b01, b23, quad);
      return vector::BitCastOp::create(b, l, vf32, all);
    }
    case PermuteKind::None:
      break;
    }
    llvm_unreachable("table decode needs a vector permute");
  }

  /// e5m2 bytes -> f32: each is the high byte of an f16 (exact,
  /// subnormals, infinities and NaNs too).
  Value e5m2(OpBuilder &b, Location l, Value raw) {
    Value wide = arith::ExtUIOp::create(b, l, vi16, raw);
    Value bits = arith::ShLIOp::create(b, l, wide, c8i16);
    Value half = vector::BitCastOp::create(b, l, vf16, bits);
    return arith::ExtFOp::create(b, l, vf32, half);
  }

  /// code6-split64: three 16-byte vectors (two nibble blocks, the top bits)
  /// -> the f32 values of codes j, 16 + j, 32 + j, 48 + j (times
  /// 2^(bias - 15)). Per code: its nibble to bits 10-13 and its top bits to
  /// 14-15 (the sign to bit 15), then an arithmetic shift right by the
  /// mantissa width puts exponent and mantissa where an f16 has them; the
  /// mask clears the sign's copies.
  SmallVector<Value> decode6(OpBuilder &b, Location l, ArrayRef<Value> raws) {
    Value nib[2] = {arith::ExtUIOp::create(b, l, vi16, raws[0]),
                    arith::ExtUIOp::create(b, l, vi16, raws[1])};
    Value top = arith::ExtUIOp::create(b, l, vi16, raws[2]);
    SmallVector<Value> out;
    for (int q = 0; q < 4; ++q) {
      Value lo = arith::AndIOp::create(
          b, l, arith::ShLIOp::create(b, l, nib[q / 2], shl[q % 2 ? 6 : 10]),
          nibMask);
      Value hi = arith::AndIOp::create(
          b, l, arith::ShLIOp::create(b, l, top, shl[14 - 2 * q]), topMask);
      Value bits = arith::AndIOp::create(
          b, l,
          arith::ShRSIOp::create(b, l, arith::OrIOp::create(b, l, lo, hi),
                                 f6Shift),
          f6Mask);
      Value half = vector::BitCastOp::create(b, l, vf16, bits);
      out.push_back(arith::ExtFOp::create(b, l, vf32, half));
    }
    return out;
  }

  SmallVector<Value> decode(OpBuilder &b, Location l, Value raw) {
    auto toF32 = [&](Value v) -> Value {
      return arith::SIToFPOp::create(b, l, vf32, v);
    };
    switch (key.decode) {
    case WeightDecode::SignedInt: {
      // Widen bytes to i32 first: x86 has no byte shifts, and i32 shifts
      // are one instruction each.
      Value wide = arith::ExtSIOp::create(b, l, vi32, raw);
      if (key.storeBits == 8)
        return {toF32(wide)};
      // low nibble: (v << 28) >> 28; high: v >> 4 (v is the sign-extended
      // byte, so its high nibble's sign is in place).
      Value lo = arith::ShRSIOp::create(
          b, l, arith::ShLIOp::create(b, l, wide, c28), c28);
      return {toF32(lo), toF32(arith::ShRSIOp::create(b, l, wide, c4))};
    }
    case WeightDecode::UnsignedInt: {
      Value wide = arith::ExtUIOp::create(b, l, vi32, raw);
      if (key.storeBits == 8)
        return {toF32(wide)};
      return {toF32(arith::AndIOp::create(b, l, wide, c15)),
              toF32(arith::ShRUIOp::create(b, l, wide, c4))};
    }
    case WeightDecode::Table: {
      if (key.permute == PermuteKind::Neon)
        return {lookup(b, l, arith::AndIOp::create(b, l, raw, c15b)),
                lookup(b, l, arith::ShRUIOp::create(b, l, raw, c4b))};
      // The low nibble needs no mask: vpermps reads the index's low bits
      // and the AVX2 blend its bit 3.
      Value wide = arith::ExtUIOp::create(b, l, vi32, raw);
      return {lookup(b, l, wide),
              lookup(b, l, arith::ShRUIOp::create(b, l, wide, c4))};
    }
    case WeightDecode::E5M2:
      return {e5m2(b, l, raw)};
    case WeightDecode::ByteFloat: {
      if (key.byteFloatViaF16()) {
        // s eee mm (s repeated up to bit 7), sign-extended to i16 and
        // shifted left by 10 - m: exponent and mantissa sit where an f16
        // has them, bit 15 is a copy of the sign, the mask clears the
        // others. The f16 value is the code's times 2^(bias - 15)
        // (subnormal codes on f16 subnormals), widened exactly; the group
        // scale carries 2^(15 - bias). No f32 subnormal is ever an
        // operand (Zen 4 slows down on them).
        Value wide = arith::ExtSIOp::create(b, l, vi16, raw);
        Value bits = arith::AndIOp::create(
            b, l, arith::ShLIOp::create(b, l, wide, bfShift), bfMask);
        return {arith::ExtFOp::create(
            b, l, vf32, vector::BitCastOp::create(b, l, vf16, bits).getResult())};
      }
      // s eeee mmm (stored with s repeated up to bit 7 when narrower),
      // sign-extended to i32 and shifted left by 23 - m: the exponent and
      // mantissa sit where an f32 has them (exponent field e, the f32
      // value 2^(e - 127) (1.m), or 2^-126 (0.m) for e = 0), bit 31 is a
      // copy of the sign; the mask clears the other copies. Times
      // 2^(127 - bias): exactly the code's value, subnormals included. The
      // multiply cannot go into the group scale: the products of these tiny
      // values with x would lose bits as f32 subnormals.
      Value wide = arith::ExtSIOp::create(b, l, vi32, raw);
      Value bits = arith::AndIOp::create(
          b, l, arith::ShLIOp::create(b, l, wide, bfShift), bfMask);
      return {arith::MulFOp::create(
          b, l, vector::BitCastOp::create(b, l, vf32, bits), bfFactor)};
    }
    case WeightDecode::Fp6:
      break; // decode6
    }
    llvm_unreachable("unknown weight decode");
  }

  /// The factor the decoded values are short of (folded into the scale).
  float scaleFactor() const {
    if (key.decode == WeightDecode::Fp6 ||
        (key.decode == WeightDecode::ByteFloat && key.byteFloatViaF16()))
      return std::ldexp(1.0f, 15 - key.bias);
    return 1.0f;
  }
};

/// The f32 scales of the R rows of a tile over one group, row `tg` of
/// [N/R * G, R] storage (one row per tile and group, in the order of the
/// weights: GenerateKernels' kernelConstant): one vector load and
/// widening, or for 8-bit codes a gather from the table.
Value tileScales(Emit &e, ScaleStorage storage, Value s, Value table,
                 Value tg, int64_t R) {
  auto vf = VectorType::get({R}, e.b.getF32Type());
  if (storage != ScaleStorage::Table8)
    return toF32(e.b, e.loc,
                 e.read(s, {tg, e.idx(0)},
                        VectorType::get(
                            {R}, scaleElementType(e.b.getContext(), storage))));
  Value codes = e.read(s, {tg, e.idx(0)},
                       VectorType::get({R}, e.b.getI8Type()));
  Value at = arith::ExtUIOp::create(
      e.b, e.loc, VectorType::get({R}, e.b.getI32Type()), codes);
  Value allTrue = e.splat(VectorType::get({R}, e.b.getI1Type()),
                          e.b.getBoolAttr(true));
  return vector::GatherOp::create(e.b, e.loc, vf, table,
                                  ValueRange{e.idx(0)}, at, allTrue,
                                  e.splat(vf, e.b.getF32FloatAttr(0.0f)));
}

/// -(offset + zp) for tile-group row `tg`: what multiplies a group's
/// activation sum to correct a dot product of stored codes (zero points,
/// if `zp`, [N/R * G, R] as the scales and widened as the reference reads
/// them).
Value tileCorrection(Emit &e, float offset, Value zp, Type zpType, Value tg,
                     int64_t R) {
  auto vf = VectorType::get({R}, e.b.getF32Type());
  Value o = e.splat(vf, e.b.getF32FloatAttr(offset));
  if (zp)
    o = arith::AddFOp::create(
        e.b, e.loc, o,
        toF32(e.b, e.loc,
              e.read(zp, {tg, e.idx(0)}, VectorType::get({R}, zpType))));
  return arith::NegFOp::create(e.b, e.loc, o);
}

/// One pass of a row-tiled kernel over a tile, as its group bodies see it.
struct TilePass {
  Value t;        ///< the tile: output rows [t * R, t * R + R)
  /// The tile's group 0 in (tile, group) order, the order of the weights'
  /// groups (panel by panel) and of the scales' rows: group g of the tile
  /// is tileGroup + g.
  Value tileGroup;
  Value m0;       ///< the pass's first activation row
  int64_t T;      ///< activation rows in the pass
  bool first;     ///< the pass at m0 = 0 (the one that prefetches)
  /// Activation row m0 + mi.
  Value row(Emit &x, int64_t mi) const { return x.add(m0, x.idx(mi)); }
  /// Group g of the tile in (tile, group) order.
  Value group(Emit &x, Value g) const { return x.add(tileGroup, g); }
};

/// The end of group g of pass p of a row-tiled kernel, per activation row
/// mi < p.T: the row's C dot-product chains (dots[c * p.T + mi], i32 for
/// `integer`, converted to f32 after the sum) added, the correction `o`
/// times the group's activation sum xsum[m, g] added where `o` is set,
/// then scaled by the tile's scales `sv` into the row's accumulator
/// out[mi].
void finishGroup(Emit &e, ArrayRef<Value> dots, const TilePass &p, int64_t C,
                 bool integer, Value sv, Value o, Value xsum, Value g,
                 SmallVector<Value> &out) {
  auto vf = cast<VectorType>(sv.getType());
  const int64_t T = p.T;
  for (int64_t mi = 0; mi < T; ++mi) {
    Value dot = dots[size_t(mi)];
    for (int64_t c = 1; c < C; ++c) {
      Value next = dots[size_t(c * T + mi)];
      dot = integer ? arith::AddIOp::create(e.b, e.loc, dot, next).getResult()
                    : arith::AddFOp::create(e.b, e.loc, dot, next).getResult();
    }
    if (integer)
      dot = arith::SIToFPOp::create(e.b, e.loc, vf, dot);
    if (o) {
      // dot - (offset + zp) * sum of x over the group (exact integers
      // below 2^24 on the integer path).
      Value xsg = tensor::ExtractOp::create(e.b, e.loc, xsum,
                                            ValueRange{p.row(e, mi), g});
      dot = vector::FMAOp::create(
          e.b, e.loc, o, vector::BroadcastOp::create(e.b, e.loc, vf, xsg),
          dot);
    }
    out[size_t(mi)] =
        vector::FMAOp::create(e.b, e.loc, dot, sv, out[size_t(mi)]);
  }
}

/// Stores the R outputs of row tile t for activation row m.
SmallVector<Value> storeTile(Emit &e, const OutputStore &outputs, Value sum,
                             Value m, Value t, int64_t R,
                             SmallVector<Value> outs) {
  Value n = e.affine(t, R, nullptr);
  for (int64_t j = 0; j < R; ++j) {
    Value v = vector::ExtractOp::create(e.b, e.loc, sum, ArrayRef<int64_t>{j});
    outs = outputs.store(e.b, e.loc, v, m, e.add(n, e.idx(j)), outs);
  }
  return outs;
}

/// Row ranges of a row-tiled kernel cover whole tiles (and the output
/// quantization's groups).
void alignRowsToTiles(func::FuncOp fn, int64_t R) {
  auto quantAlign = fn->getAttrOfType<IntegerAttr>("nibble.row_align");
  const int64_t align = std::lcm(R, quantAlign ? quantAlign.getInt() : 1);
  fn->setAttr("nibble.row_align",
              IntegerAttr::get(IntegerType::get(fn.getContext(), 64), align));
}

/// One pass of a row-tiled kernel over a tile: activation rows [m0, m0 + T)
/// (`first`: the pass at m0 = 0, the one that prefetches the weights),
/// returning the updated outputs.
using RowPass = function_ref<SmallVector<Value>(
    OpBuilder &, Location, Value m0, int64_t T, bool first, ValueRange outs)>;

/// The passes of a row-tiled kernel over one tile of weights, `tile`
/// activation rows each: the first on its own (it alone prefetches: later
/// passes re-read the tile from cache), the remaining full passes as one
/// scf.for, and a shorter last pass on its own: one copy of the pass body
/// per kind of pass, not per pass. (Unrolled, with straight-code groups in
/// every pass, the synthetic 4-layer model took 44 s to compile at int4 g32
/// and 40 s as W4A8, prefill chunk 16, against 18 and 20 s like this.)
SmallVector<Value> rowPasses(OpBuilder &b, Location loc, int64_t M,
                             int64_t tile, ValueRange outs, RowPass pass) {
  Emit e{b, loc};
  SmallVector<Value> cur(outs.begin(), outs.end());
  const int64_t first = std::min(tile, M);
  cur = pass(b, loc, e.idx(0), first, /*first=*/true, cur);
  const int64_t full = M / tile;
  if (full > 2) {
    scf::ForOp rest = loop(b, loc, e.idx(1), e.idx(full), cur,
                           [&](OpBuilder &pb, Location pl, Value p,
                               ValueRange it) {
      Emit pe{pb, pl};
      return pass(pb, pl, pe.affine(p, tile, nullptr), tile, false, it);
    });
    cur.assign(rest.getResults().begin(), rest.getResults().end());
  } else if (full == 2) {
    cur = pass(b, loc, e.idx(tile), tile, false, cur);
  }
  if (M > tile && M % tile)
    cur = pass(b, loc, e.idx(full * tile), M % tile, false, cur);
  return cur;
}

/// Builds group g of a pass: adds its contribution to out (T vectors of R
/// f32, one per activation row).
using TileGroup = function_ref<void(Emit &, const TilePass &, Value g,
                                    SmallVector<Value> &out)>;
/// A pass's sum for activation row m before it is stored.
using TileRowSum = function_ref<Value(Emit &, Value sum, Value m)>;

/// scf.if with an else branch, each branch returning its yield.
SmallVector<Value> ifElse(OpBuilder &b, Location loc, Value cond,
                          function_ref<SmallVector<Value>(OpBuilder &,
                                                          Location)>
                              then,
                          function_ref<SmallVector<Value>(OpBuilder &,
                                                          Location)>
                              otherwise) {
  auto branch = [](auto fn) {
    return [fn](OpBuilder &bb, Location l) {
      scf::YieldOp::create(bb, l, fn(bb, l));
    };
  };
  auto op = scf::IfOp::create(b, loc, cond, branch(then), branch(otherwise));
  return SmallVector<Value>(op.getResults().begin(), op.getResults().end());
}

/// The loop nest shared by the row-tiled kernels, in kf: tiles of R output
/// rows over the row range, passes of up to four activation rows over each
/// tile (rowPasses; later passes re-read the tile from L1 / L2), and per
/// pass a loop over the tile's groups, `groupBytes` weight bytes each,
/// whose body `group` builds; each row's sum goes through `rowSum` (if
/// given) and is stored. With `panelGroups` (0 < panelGroups < groups), an
/// outer loop over K panels of that many groups (repackRowTiled's panel
/// layout) runs the tiles over each panel in turn: a row's sum enters a
/// panel from y (zero in the first) and leaves it into y (through rowSum
/// and the store after the last), so the sums are added in the same order
/// as in one panel. Returns kf.fn with its rows aligned to tiles.
func::FuncOp buildRowTiledNest(OpBuilder &b, KernelFunc &kf, int64_t M,
                               int64_t N, int64_t R, int64_t groups,
                               int64_t groupBytes, int64_t panelGroups,
                               TileGroup group, TileRowSum rowSum = nullptr) {
  Location loc = kf.fn.getLoc();
  Emit e{b, loc};
  auto vf = VectorType::get({R}, b.getF32Type());
  Value zeroF = e.splat(vf, b.getF32FloatAttr(0.0f));
  const int64_t tile = std::min<int64_t>(M, 4);
  const int64_t PG =
      panelGroups > 0 && panelGroups < groups ? panelGroups : groups;
  const int64_t panels = (groups + PG - 1) / PG;
  // The row range [n0, n1) is a multiple of R (nibble.row_align).
  Value t0 = arith::DivUIOp::create(b, loc, kf.n0, e.idx(R));
  Value t1 = arith::DivUIOp::create(b, loc, kf.n1, e.idx(R));
  // Panel `pi` (null: the only one) over the tiles of the range.
  auto panel = [&](OpBuilder &kb, Location kl, Value pi,
                   ValueRange panelIter) {
    Emit k{kb, kl};
    Value g0 = k.idx(0), len = k.idx(groups), firstPanel, lastPanel;
    if (pi) {
      g0 = k.affine(pi, PG, nullptr);
      len = arith::MinUIOp::create(
          kb, kl, k.idx(PG),
          arith::SubIOp::create(kb, kl, k.idx(groups), g0));
      firstPanel = arith::CmpIOp::create(kb, kl, arith::CmpIPredicate::eq,
                                         pi, k.idx(0));
      lastPanel = arith::CmpIOp::create(kb, kl, arith::CmpIPredicate::eq,
                                        pi, k.idx(panels - 1));
    }
    return loop(kb, kl, t0, t1, panelIter,
                [&](OpBuilder &rb, Location l, Value t,
                    ValueRange rowIter) {
      Emit te{rb, l};
      // Group g of tile t is (tile, group) g0 * N/R + t * len + g - g0:
      // the panels before, the panel's tiles before, the group within
      // the tile.
      Value tileGroup = te.add(te.affine(g0, N / R - 1, nullptr),
                               arith::MulIOp::create(rb, l, t, len));
      Value n = te.affine(t, R, nullptr);
      auto pass = [&](OpBuilder &pb, Location pl, Value m0, int64_t T,
                      bool first, ValueRange passOuts) {
        Emit r{pb, pl};
        const TilePass p{t, tileGroup, m0, T, first};
        SmallVector<Value> outs(passOuts.begin(), passOuts.end());
        SmallVector<Value> init(size_t(T), zeroF);
        if (pi)
          init = ifElse(
              pb, pl, firstPanel,
              [&](OpBuilder &, Location) { return init; },
              [&](OpBuilder &ib, Location il) {
                Emit ie{ib, il};
                SmallVector<Value> partial;
                for (int64_t mi = 0; mi < T; ++mi)
                  partial.push_back(ie.read(outs[0], {p.row(ie, mi), n}, vf));
                return partial;
              });
        auto grp = loop(pb, pl, g0, r.add(g0, len), init,
                        [&](OpBuilder &gb, Location gl, Value g,
                            ValueRange it) {
          Emit ge{gb, gl};
          SmallVector<Value> out(it.begin(), it.end());
          group(ge, p, g, out);
          return out;
        });
        auto store = [&](OpBuilder &sb, Location sl) {
          Emit se{sb, sl};
          SmallVector<Value> stored = outs;
          for (int64_t mi = 0; mi < T; ++mi) {
            Value sum = grp.getResult(unsigned(mi)), m = p.row(se, mi);
            if (rowSum)
              sum = rowSum(se, sum, m);
            stored = storeTile(se, kf.outputs, sum, m, t, R, stored);
          }
          return stored;
        };
        if (!pi)
          return store(pb, pl);
        return ifElse(pb, pl, lastPanel, store,
                      [&](OpBuilder &ib, Location il) {
                        Emit ie{ib, il};
                        SmallVector<Value> kept = outs;
                        for (int64_t mi = 0; mi < T; ++mi)
                          kept[0] = ie.write(grp.getResult(unsigned(mi)),
                                             kept[0], {p.row(ie, mi), n});
                        return kept;
                      });
      };
      return rowPasses(rb, l, M, tile, rowIter, pass);
    });
  };
  SmallVector<Value> init = kf.outputs.init(kf.y0, kf.trailing);
  scf::ForOp nest =
      panels == 1
          ? panel(b, loc, Value(), init)
          : loop(b, loc, e.idx(0), e.idx(panels), init,
                 [&](OpBuilder &kb, Location kl, Value pi, ValueRange it) {
                   auto inner = panel(kb, kl, pi, it);
                   return SmallVector<Value>(inner.getResults().begin(),
                                             inner.getResults().end());
                 });
  func::ReturnOp::create(b, loc, nest.getResults());
  alignRowsToTiles(kf.fn, R);
  return kf.fn;
}

/// Per activation row and group, the sum of x over the group (for the
/// zero-point term): tensor<M x groups x f32>.
Value groupSums(OpBuilder &b, Location loc, Value x, int64_t m, int64_t k,
                int64_t group) {
  Emit e{b, loc};
  const int64_t groups = k / group;
  auto vf = VectorType::get({kF32Lanes}, b.getF32Type());
  Value zero = e.splat(vf, b.getF32FloatAttr(0.0f));
  Value init = tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{m, groups},
                                       b.getF32Type());
  return loop(b, loc, e.idx(0), e.idx(m), {init}, [&](OpBuilder &rb,
                                                      Location l, Value mi,
                                                      ValueRange it) {
    Emit r{rb, l};
    auto g = loop(rb, l, r.idx(0), r.idx(groups), {it[0]},
                  [&](OpBuilder &gb, Location gl, Value gi, ValueRange git) {
      Emit ge{gb, gl};
      auto sum = loop(gb, gl, ge.idx(0), ge.idx(group / kF32Lanes), {zero},
                      [&](OpBuilder &sb, Location sl, Value st,
                          ValueRange acc) {
        Emit se{sb, sl};
        Value col = se.add(se.affine(gi, group, nullptr),
                           se.affine(st, kF32Lanes, nullptr));
        return SmallVector<Value>{arith::AddFOp::create(
            sb, sl, acc[0], se.read(x, {mi, col}, vf))};
      });
      Value red = vector::ReductionOp::create(
          gb, gl, vector::CombiningKind::ADD, sum.getResult(0),
          arith::FastMathFlags::reassoc);
      return SmallVector<Value>{
          tensor::InsertOp::create(gb, gl, red, git[0], ValueRange{mi, gi})};
    });
    return SmallVector<Value>{g.getResult(0)};
  }).getResult(0);
}

/// The body of a row-tiled weight-only kernel (WeightOnlyKernel::rowTile)
/// in `kf`, R rows a tile. Nibbles (AVX-512): per 64-byte word of 16 rows
/// and 8 columns, code field j (the word shifted right by 4j) looks up its
/// f32 value in the 16-entry table with one vpermps, which reads only the
/// low 4 bits of each lane. Bytes: per word of R rows and one column, the
/// codes widened (sign- or zero-extended) and converted. Either way the
/// values multiply the column's activation, broadcast: one FMA per R codes
/// and activation row, every product exact as in the reference, into four
/// chains for one row (an FMA's latency would otherwise bound the loop),
/// two for two, one for more. Per group the chains are summed, corrected
/// for the zero points (if any) with the group's activation sum, and
/// scaled by the tile's vector of group scales. The weights are
/// prefetched kPrefetchBytes ahead, a 64-byte line at a time.
func::FuncOp buildWeightOnlyTiled(OpBuilder &b, const WeightOnlyKernel &key,
                                  KernelFunc kf, Value x, Value w, Value s,
                                  Value scaleTable, Value zp) {
  Location loc = kf.fn.getLoc();
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type(), i8 = b.getI8Type(), i32 = b.getI32Type();
  const int64_t R = key.rowTile, M = key.m, K = key.k;
  const int64_t groups = K / key.group;
  const bool nibbles = key.storeBits == 4;
  const int64_t P = key.chunkCodes();       // columns of a word
  const int64_t wordBytes = R * P * key.storeBits / 8;
  const int64_t wordsPerGroup = key.group / P;
  const int64_t groupBytes = wordsPerGroup * wordBytes;
  const int64_t bytes = key.n * K * key.storeBits / 8;
  const bool corrected = key.zeroPoints;
  Emit e{b, loc};
  auto vf = VectorType::get({R}, f32);
  auto vi = VectorType::get({R}, i32);
  Value zeroF = e.splat(vf, b.getF32FloatAttr(0.0f));
  Value table, shifts[8];
  if (nibbles) {
    table = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vf, ArrayRef<float>(key.table)));
    for (int64_t j = 1; j < P; ++j)
      shifts[j] = e.splat(vi, b.getI32IntegerAttr(int32_t(4 * j)));
  }
  // Field j of a nibble word holds column fieldColumn(j) of its chunk
  // (repackRowTiled: byte i of a row's word holds columns i and i + 4).
  auto fieldColumn = [&](int64_t j) { return (j % 2) * 4 + j / 2; };
  Value xsum = corrected ? groupSums(b, loc, x, M, K, key.group) : Value();
  Value wBuf = bufferization::ToBufferOp::create(
      b, loc, MemRefType::get({bytes}, i8), w, /*readOnly=*/true);
  Value lastByte = e.idx(bytes - 1);
  auto group = [&](Emit &ge, const TilePass &p, Value g,
                   SmallVector<Value> &out) {
    const int64_t T = p.T;
    // FMA chains per activation row: four for one row (an FMA's latency
    // would otherwise bound the group), two for two, one for more.
    const int64_t C = T == 1 ? 4 : T == 2 ? 2 : 1;
    Value tg = p.group(ge, g);
    Value groupBase = ge.affine(tg, groupBytes, nullptr);
    Value groupCol = ge.affine(g, key.group, nullptr);
    // One step: a nibble word (its 8 fields into chains j % C), or C
    // byte words (word u into chain u).
    const int64_t wordsPerStep = nibbles ? 1 : C;
    const int64_t stepBytes = wordsPerStep * wordBytes;
    auto step = [&](OpBuilder &sb, Location sl, Value st,
                    ValueRange acc) {
      Emit se{sb, sl};
      SmallVector<Value> next(acc.begin(), acc.end());
      // One prefetch per 64-byte line, as the step reaches it (a burst
      // at the group's start streamed slower cold: 14.5 against 15.9
      // GB/s, int4 4096 x 4096, one thread).
      std::optional<int64_t> fixed = getConstantIntValue(st);
      if (p.first &&
          (stepBytes >= 64 || !fixed || (*fixed * stepBytes) % 64 == 0))
        memref::PrefetchOp::create(
            sb, sl, wBuf,
            ValueRange{arith::MinUIOp::create(
                sb, sl,
                se.add(groupBase,
                       se.affine(st, stepBytes, se.idx(kPrefetchBytes))),
                lastByte)},
            /*isWrite=*/false, /*localityHint=*/0, /*isDataCache=*/true);
      auto fma = [&](Value vals, Value col, int64_t chain) {
        for (int64_t mi = 0; mi < T; ++mi) {
          Value xs = tensor::ExtractOp::create(
              sb, sl, x, ValueRange{p.row(se, mi), col});
          size_t a = size_t(chain * T + mi);
          next[a] = vector::FMAOp::create(
              sb, sl, vals, vector::BroadcastOp::create(sb, sl, vf, xs),
              next[a]);
        }
      };
      for (int64_t u = 0; u < wordsPerStep; ++u) {
        Value wi = se.affine(st, wordsPerStep, se.idx(u));
        Value at = se.add(groupBase, se.affine(wi, wordBytes, nullptr));
        Value col = se.add(groupCol, se.affine(wi, P, nullptr));
        if (nibbles) {
          Value word = vector::BitCastOp::create(
              sb, sl, vi,
              se.read(w, {at}, VectorType::get({wordBytes}, i8)));
          for (int64_t j = 0; j < P; ++j) {
            Value idx = j == 0 ? word
                               : arith::ShRUIOp::create(sb, sl, word,
                                                        shifts[j])
                                     .getResult();
            // vpermps: table[idx & 15] per lane.
            Value vals = LLVM::CallIntrinsicOp::create(
                             sb, sl, vf,
                             StringAttr::get(
                                 ctx, "llvm.x86.avx512.permvar.sf.512"),
                             ValueRange{table, idx})
                             .getResult(0);
            fma(vals, se.add(col, se.idx(fieldColumn(j))), j % C);
          }
        } else {
          Value raw = se.read(w, {at}, VectorType::get({R}, i8));
          Value wide =
              key.decode == WeightDecode::SignedInt
                  ? arith::ExtSIOp::create(sb, sl, vi, raw).getResult()
                  : arith::ExtUIOp::create(sb, sl, vi, raw).getResult();
          fma(arith::SIToFPOp::create(sb, sl, vf, wide), col, u);
        }
      }
      return next;
    };
    // Up to 32 steps (int4 g256, int8 g32) as straight code for one
    // or two rows, as the row-tiled integer kernel: the cold stream
    // pays for a loop's counter and branch. Three or more rows do
    // enough arithmetic a step to hide them, and straight code there
    // only multiplied the code to compile.
    const int64_t steps = wordsPerGroup / wordsPerStep;
    SmallVector<Value> dots(size_t(C * T), zeroF);
    if (steps <= 32 && T <= 2) {
      for (int64_t st = 0; st < steps; ++st)
        dots = step(ge.b, ge.loc, ge.idx(st), dots);
    } else {
      scf::ForOp loopOp =
          loop(ge.b, ge.loc, ge.idx(0), ge.idx(steps), dots, step);
      dots.assign(loopOp.getResults().begin(), loopOp.getResults().end());
    }
    Value sv = tileScales(ge, key.scales, s, scaleTable, tg, R);
    Value o = corrected ? tileCorrection(ge, 0.0f, zp, key.zeroPointType,
                                         tg, R)
                        : Value();
    finishGroup(ge, dots, p, C, /*integer=*/false, sv, o, xsum, g, out);
  };
  return buildRowTiledNest(b, kf, M, key.n, R, groups, groupBytes, 0, group);
}

} // namespace

func::FuncOp cpu::buildWeightOnly(ModuleOp module, const WeightOnlyKernel &key,
                                  const Epilogue *epilogue,
                                  const QuantizeOutput *quantize,
                                  StringRef name) {
  OpBuilder b(module.getContext());
  Location loc = module.getLoc();
  Type f32 = b.getF32Type(), i8 = b.getI8Type();
  const int64_t groups = key.k / key.group;
  const int64_t bytes = key.n * key.k * key.storeBits / 8;
  auto xT = RankedTensorType::get({key.m, key.k}, f32);
  auto wT = RankedTensorType::get({bytes}, i8);
  const bool table = key.scales == ScaleStorage::Table8;
  // Scales and zero points: [N, K/G], or tiled as the weights.
  SmallVector<int64_t> perScale = {key.n, groups};
  if (key.tiled())
    perScale = {key.n / key.rowTile * groups, key.rowTile};
  SmallVector<Type> inputs = {
      xT, wT,
      RankedTensorType::get(perScale,
                            scaleElementType(b.getContext(), key.scales))};
  if (table)
    inputs.push_back(RankedTensorType::get({256}, f32));
  const Type zElem = key.zeroPoints ? key.zeroPointType : f32;
  if (key.zeroPoints)
    inputs.push_back(RankedTensorType::get(perScale, zElem));
  KernelFunc kf = makeKernelFunc(module, b, name, "weight-only", inputs,
                                 key.m, key.n, key.k, epilogue, quantize);
  Value x = kf.inputs[0], w = kf.inputs[1], s = kf.inputs[2];
  Value scaleTable = table ? kf.inputs[3] : Value();
  Value zp = key.zeroPoints ? kf.inputs.back() : Value();
  if (key.tiled())
    return buildWeightOnlyTiled(b, key, kf, x, w, s, scaleTable, zp);
  const OutputStore &outputs = kf.outputs;
  // The f32 zero point of (row n, group g): floats widened, integers
  // sign-extended (as the reference lowering reads them).
  auto groupZeroPoint = [&](OpBuilder &gb, Location gl, Value n, Value g) {
    return toF32(gb, gl,
                 tensor::ExtractOp::create(gb, gl, zp, ValueRange{n, g}));
  };
  Emit e{b, loc};
  WeightDecoder dec(b, loc, key);
  auto vf32 = dec.vf32;
  Value zeroV = e.splat(vf32, b.getF32FloatAttr(0.0f));
  Value zeroS = e.f32(0.0f);
  const int64_t codesPerStep = key.codesPerStep();
  // The loop below runs over blocks of whole groups and whole steps: one
  // group of one or more steps, or (groups narrower than a step, e.g.
  // NVFP4's 16) one step of `groupsPerStep` groups, each 16-code run of the
  // step accumulated apart and scaled by its own group's scale.
  const int64_t groupsPerStep = key.groupsPerStep();
  const int64_t blockCodes = key.group * groupsPerStep;
  const int64_t blocks = key.k / blockCodes;
  const int64_t stepsPerGroup = blockCodes / codesPerStep;
  // Byte codes give one 16-code run a step: for one or two activation
  // rows a single FMA chain a row (4 cycles a step on Zen 4) bounds the
  // loop, so two steps go per iteration, each with its own accumulator
  // (measured: int8 one thread cold +15%; nibbles, with two runs a step
  // already, gained nothing from four: docs/performance.md). Otherwise two
  // accumulators a row take alternate 16-code runs.
  const int64_t runsPerStep = codesPerStep / kF32Lanes;
  const int64_t unroll = groupsPerStep == 1 && runsPerStep == 1 &&
                                 stepsPerGroup % 2 == 0 && key.m <= 2
                             ? 2
                             : 1;
  const int64_t accPerRow = groupsPerStep > 1 ? groupsPerStep : 2;
  const int64_t rowBytes = key.k * key.storeBits / 8;
  const int64_t M = key.m;
  const float factor = dec.scaleFactor();
  Value xsum = key.zeroPoints ? groupSums(b, loc, x, M, key.k, key.group)
                              : Value();
  // Software prefetch of the weight stream, kPrefetchBytes ahead, one per
  // 64-byte line, issued once per group (clamped to the buffer: a prefetch
  // never faults, but an out-of-bounds address is not valid IR).
  // Measured on this 2-core Zen 4 VM (docs/performance.md): +10% int4 and
  // +30% int8 at one thread, +30-50% at two; the integer-dot kernels
  // showed no gain and take none.
  const int64_t groupBytes = blockCodes * key.storeBits / 8;
  Value wBuf = bufferization::ToBufferOp::create(
      b, loc, MemRefType::get({bytes}, i8), w, /*readOnly=*/true);
  Value lastByte = e.idx(bytes - 1);

  auto rows = loop(b, loc, kf.n0, kf.n1, outputs.init(kf.y0, kf.trailing),
                   [&](OpBuilder &rb, Location l, Value n,
                       ValueRange rowIter) {
    Emit r{rb, l};
    Value rowBase = r.affine(n, rowBytes, nullptr);
    // iter: M vector accumulators (groupsPerStep per row when groups are
    // narrower than a step: one FMA chain per group of the step, not one
    // chain twice as long), then (zero points) M scalar terms.
    const int64_t rowAccs = groupsPerStep;
    SmallVector<Value> accInit(size_t(M * rowAccs), zeroV);
    if (key.zeroPoints)
      accInit.append(size_t(M), zeroS);
    auto grp = loop(rb, l, r.idx(0), r.idx(blocks), accInit,
                    [&](OpBuilder &gb, Location gl, Value g, ValueRange acc) {
      Emit ge{gb, gl};
      Value groupBase = ge.add(rowBase, ge.affine(g, groupBytes, nullptr));
      for (int64_t line = 0; line < std::max<int64_t>(1, groupBytes / 64);
           ++line) {
        Value at = arith::MinUIOp::create(
            gb, gl, ge.add(groupBase, ge.idx(line * 64 + kPrefetchBytes)),
            lastByte);
        memref::PrefetchOp::create(gb, gl, wBuf, ValueRange{at},
                                   /*isWrite=*/false, /*localityHint=*/0,
                                   /*isDataCache=*/true);
      }
      // Two accumulators per activation row (alternating runs), or one per
      // group of the step.
      SmallVector<Value> gInit(size_t(accPerRow * M), zeroV);
      auto steps = loop(gb, gl, ge.idx(0), ge.idx(stepsPerGroup / unroll),
                        gInit, [&](OpBuilder &sb, Location sl, Value stu,
                                   ValueRange ga) {
        Emit se{sb, sl};
        SmallVector<Value> next(ga.begin(), ga.end());
        for (int64_t u = 0; u < unroll; ++u) {
        Value st = unroll == 1 ? stu : se.affine(stu, unroll, se.idx(u));
        auto [col, byteOff] = se.column(rowBase, g, blockCodes, st,
                                        codesPerStep, int64_t(key.storeBits));
        SmallVector<Value> vals;
        if (key.storeBits == 6)
          vals = dec.decode6(
              sb, sl,
              {se.read(w, {byteOff}, dec.vi8),
               se.read(w, {se.add(byteOff, se.idx(16))}, dec.vi8),
               se.read(w, {se.add(byteOff, se.idx(32))}, dec.vi8)});
        else
          vals = dec.decode(sb, sl, se.read(w, {byteOff}, dec.vi8));
        for (size_t h = 0; h < vals.size(); ++h) {
          Value xc = se.add(col, se.idx(int64_t(h) * kF32Lanes));
          const size_t run =
              groupsPerStep > 1
                  ? h * kF32Lanes / size_t(key.group)
                  : (size_t(u) * vals.size() + h) % size_t(accPerRow);
          for (int64_t mi = 0; mi < M; ++mi) {
            Value xv = se.read(x, {se.idx(mi), xc}, vf32);
            size_t a = size_t(accPerRow * mi) + run;
            next[a] = vector::FMAOp::create(sb, sl, vals[h], xv, next[a]);
          }
        }
        }
        return next;
      });
      auto scaleVector = [&](Value scale) {
        return vector::BroadcastOp::create(
                   gb, gl, vf32,
                   factor == 1.0f
                       ? scale
                       : arith::MulFOp::create(gb, gl, scale, ge.f32(factor))
                             .getResult())
            .getResult();
      };
      SmallVector<Value> out;
      // The block's groups and their scales (for the zero points).
      SmallVector<Value> blockGroups, blockScales;
      if (groupsPerStep == 1) {
        Value scale = groupScale(gb, gl, key.scales, s, scaleTable, n, g);
        blockGroups.push_back(g);
        blockScales.push_back(scale);
        Value sv = scaleVector(scale);
        for (int64_t mi = 0; mi < M; ++mi) {
          Value sum = arith::AddFOp::create(
              gb, gl, steps.getResult(unsigned(2 * mi)),
              steps.getResult(unsigned(2 * mi + 1)));
          out.push_back(
              vector::FMAOp::create(gb, gl, sv, sum, acc[size_t(mi)]));
        }
      } else {
        out.assign(acc.begin(), acc.begin() + M * rowAccs);
        for (int64_t j = 0; j < groupsPerStep; ++j) {
          Value gj = ge.affine(g, groupsPerStep, ge.idx(j));
          Value scale = groupScale(gb, gl, key.scales, s, scaleTable, n, gj);
          blockGroups.push_back(gj);
          blockScales.push_back(scale);
          Value sv = scaleVector(scale);
          for (int64_t mi = 0; mi < M; ++mi) {
            size_t a = size_t(mi * rowAccs + j);
            out[a] = vector::FMAOp::create(
                gb, gl, sv, steps.getResult(unsigned(accPerRow * mi + j)),
                out[a]);
          }
        }
      }
      if (key.zeroPoints) {
        // sum_g s * zp * sum(x over g), subtracted at the row's end.
        for (int64_t mi = 0; mi < M; ++mi)
          out.push_back(acc[size_t(M * rowAccs + mi)]);
        for (auto [gj, scale] : llvm::zip_equal(blockGroups, blockScales)) {
          Value sz = arith::MulFOp::create(gb, gl, scale,
                                           groupZeroPoint(gb, gl, n, gj));
          for (int64_t mi = 0; mi < M; ++mi) {
            Value xs = tensor::ExtractOp::create(gb, gl, xsum,
                                                 ValueRange{ge.idx(mi), gj});
            Value &term = out[size_t(M * rowAccs + mi)];
            term = math::FmaOp::create(gb, gl, sz, xs, term);
          }
        }
      }
      return out;
    });
    SmallVector<Value> outs(rowIter.begin(), rowIter.end());
    for (int64_t mi = 0; mi < M; ++mi) {
      Value sum = grp.getResult(unsigned(mi * rowAccs));
      for (int64_t j = 1; j < rowAccs; ++j)
        sum = arith::AddFOp::create(rb, l, sum,
                                    grp.getResult(unsigned(mi * rowAccs + j)));
      Value red = vector::ReductionOp::create(
          rb, l, vector::CombiningKind::ADD, sum,
          arith::FastMathFlags::reassoc);
      if (key.zeroPoints)
        red = arith::SubFOp::create(
            rb, l, red, grp.getResult(unsigned(M * rowAccs + mi)));
      outs = outputs.store(rb, l, red, r.idx(mi), n, outs);
    }
    return outs;
  });
  func::ReturnOp::create(b, loc, rows.getResults());
  return kf.fn;
}

namespace {

/// The arguments of an integer-dot kernel (IntDotKernel's signature).
struct IntDotArgs {
  Value xq, xs, xsum, w, s;
  Value table; ///< ScaleStorage::Table8 only
  Value zp;    ///< with zero points only
  IntDotArgs(const IntDotKernel &key, const KernelFunc &kf)
      : xq(kf.inputs[0]), xs(kf.inputs[1]), xsum(kf.inputs[2]),
        w(kf.inputs[3]), s(kf.inputs[4]) {
    if (key.scales == ScaleStorage::Table8)
      table = kf.inputs[5];
    if (key.zeroPoints)
      zp = kf.inputs.back();
  }
};

/// The body of a row-tiled integer-dot kernel (IntDotKernel::rowTile) in
/// `kf`: per tile of R = rowTile rows and group g, one i32 vector of R
/// dot products per activation row (two chains for one row: the low and
/// high nibbles, or alternate words), corrected for the stored offset and
/// zero points in f32 and scaled by the tile's vector of group scales.
func::FuncOp buildIntDotTiled(OpBuilder &b, const IntDotKernel &key,
                              KernelFunc kf) {
  MLIRContext *ctx = b.getContext();
  Location loc = kf.fn.getLoc();
  Type f32 = b.getF32Type(), i8 = b.getI8Type(), i32 = b.getI32Type();
  const int64_t R = key.rowTile, groups = key.k / key.group;
  const IntDotArgs args(key, kf);
  Value xq = args.xq, xs = args.xs, xsum = args.xsum, w = args.w, s = args.s,
        scaleTable = args.table, zp = args.zp;
  Emit e{b, loc};
  auto vAcc = VectorType::get({R}, i32);
  auto vf = VectorType::get({R}, f32);
  auto vb = VectorType::get({4 * R}, i8);
  auto v4 = VectorType::get({4}, i8);
  Value zeroAcc = e.splat(vAcc, b.getI32IntegerAttr(0));
  Value mask4 = e.splat(vb, b.getI8IntegerAttr(0x0F));
  Value sh4 = e.splat(vb, b.getI8IntegerAttr(4));
  const int64_t chunk = key.chunkCodes();
  const int64_t wordsPerGroup = key.group / chunk;
  const int64_t groupBytes = R * key.group * key.bits / 8;
  const float offset = key.offset();
  const bool corrected = offset != 0.0f || key.zeroPoints;
  auto intrinsic = StringAttr::get(ctx, key.intrinsic);
  // Four activation codes broadcast to every lane, as the dot product's
  // byte operand.
  auto broadcastWord = [&](Emit &x, Value m, Value col) {
    Value word = vector::BitCastOp::create(
        x.b, x.loc, VectorType::get({1}, i32), x.read(xq, {m, col}, v4));
    Value lane = vector::ExtractOp::create(x.b, x.loc, word,
                                           ArrayRef<int64_t>{0});
    Value all = vector::BroadcastOp::create(x.b, x.loc, vAcc, lane);
    return vector::BitCastOp::create(x.b, x.loc, vb, all).getResult();
  };

  auto group = [&](Emit &ge, const TilePass &p, Value g,
                   SmallVector<Value> &out) {
    const int64_t T = p.T;
    // Dot-product chains per activation row: two for one row (its
    // latency would otherwise bound the group), one when T rows already
    // give T independent chains. One group per iteration of the nest's
    // group loop. (Two groups an iteration into alternate accumulators,
    // as the one-row kernel does, streamed 10% slower cold here:
    // 24.6-25.1 against 25.6-27.6 GB/s, int4 4096 x 4096, one thread.)
    const int64_t C = T == 1 ? 2 : 1;
    Value tg = p.group(ge, g);
    Value groupBase = ge.affine(tg, groupBytes, nullptr);
    // Two words per step: one load each, 2 x chunk columns.
    SmallVector<Value> accInit(size_t(C * T), zeroAcc);
    auto step = [&](OpBuilder &sb, Location sl, Value st,
                    ValueRange acc) {
      Emit se{sb, sl};
      SmallVector<Value> next(acc.begin(), acc.end());
      for (int64_t half = 0; half < 2; ++half) {
        Value wi = se.affine(st, 2, se.idx(half));
        Value raw =
            se.read(w, {se.add(groupBase, se.affine(wi, 4 * R, nullptr))},
                    vb);
        SmallVector<Value> codes;
        if (key.bits == 8)
          codes = {raw};
        else if (key.unsignedNibbles())
          codes = {arith::AndIOp::create(sb, sl, raw, mask4),
                   arith::ShRUIOp::create(sb, sl, raw, sh4)};
        else
          codes = {arith::ShRSIOp::create(
                       sb, sl, arith::ShLIOp::create(sb, sl, raw, sh4),
                       sh4),
                   arith::ShRSIOp::create(sb, sl, raw, sh4)};
        Value col = se.add(ge.affine(g, key.group, nullptr),
                           se.affine(wi, chunk, nullptr));
        for (size_t h = 0; h < codes.size(); ++h) {
          Value c = se.add(col, se.idx(int64_t(h) * 4));
          // Chain: nibble half for int4, word parity for int8.
          const int64_t chain =
              C == 1 ? 0 : (key.bits == 4 ? int64_t(h) : half);
          for (int64_t mi = 0; mi < T; ++mi) {
            Value xv = broadcastWord(se, p.row(se, mi), c);
            size_t a = size_t(chain * T + mi);
            next[a] = LLVM::CallIntrinsicOp::create(
                          sb, sl, vAcc, intrinsic,
                          ValueRange{next[a], codes[h], xv})
                          .getResult(0);
          }
        }
      }
      return next;
    };
    // A group of up to 32 words (int4 g128, int8 g128) as straight
    // code for one or two rows: no loop counter and branch per two
    // weight vectors, which measurably slows the cold stream at one
    // thread. (More rows hide them in arithmetic; straight code there
    // only multiplied the code to compile.)
    SmallVector<Value> dots;
    if (wordsPerGroup <= 32 && T <= 2) {
      dots = accInit;
      for (int64_t st = 0; st < wordsPerGroup / 2; ++st)
        dots = step(ge.b, ge.loc, ge.idx(st), dots);
    } else {
      scf::ForOp steps = loop(ge.b, ge.loc, ge.idx(0),
                              ge.idx(wordsPerGroup / 2), accInit, step);
      dots.assign(steps.getResults().begin(), steps.getResults().end());
    }
    Value sv = tileScales(ge, key.scales, s, scaleTable, tg, R);
    Value o = corrected ? tileCorrection(ge, offset, zp,
                                         key.zeroPointType, tg, R)
                        : Value();
    finishGroup(ge, dots, p, C, /*integer=*/true, sv, o, xsum, g, out);
  };
  // Per activation row, the sum scaled by the row's activation scale.
  auto rowSum = [&](Emit &r, Value sum, Value m) -> Value {
    Value xsm = tensor::ExtractOp::create(r.b, r.loc, xs, ValueRange{m});
    return arith::MulFOp::create(
        r.b, r.loc, sum, vector::BroadcastOp::create(r.b, r.loc, vf, xsm));
  };
  return buildRowTiledNest(b, kf, key.m, key.n, R, groups, groupBytes,
                           key.panelGroups, group, rowSum);
}

} // namespace

func::FuncOp cpu::buildIntDot(ModuleOp module, const IntDotKernel &key,
                              const Epilogue *epilogue,
                              const QuantizeOutput *quantize, StringRef name) {
  MLIRContext *ctx = module.getContext();
  OpBuilder b(ctx);
  Location loc = module.getLoc();
  Type f32 = b.getF32Type(), i8 = b.getI8Type(), i32 = b.getI32Type();
  const int64_t groups = key.k / key.group;
  const int64_t bytes = key.n * key.k * key.bits / 8;
  auto xqT = RankedTensorType::get({key.m, key.k}, i8);
  auto xsT = RankedTensorType::get({key.m}, f32);
  auto xsumT = RankedTensorType::get({key.m, groups}, f32);
  auto wT = RankedTensorType::get({bytes}, i8);
  const bool table = key.scales == ScaleStorage::Table8;
  Type sElem = scaleElementType(ctx, key.scales);
  // Scales and zero points: [N, K/G], or tiled as the weights.
  SmallVector<int64_t> perScale = {key.n, groups};
  if (key.tiled())
    perScale = {key.n / key.rowTile * groups, key.rowTile};
  SmallVector<Type> inputs = {xqT, xsT, xsumT, wT,
                              RankedTensorType::get(perScale, sElem)};
  if (table)
    inputs.push_back(RankedTensorType::get({256}, f32));
  if (key.zeroPoints)
    inputs.push_back(RankedTensorType::get(perScale, key.zeroPointType));
  KernelFunc kf =
      makeKernelFunc(module, b, name, key.bits == 4 ? "w4a8" : "w8a8", inputs,
                     key.m, key.n, key.k, epilogue, quantize);
  if (key.tiled())
    return buildIntDotTiled(b, key, kf);
  const IntDotArgs args(key, kf);
  Value xq = args.xq, xs = args.xs, xsum = args.xsum, w = args.w, s = args.s,
        scaleTable = args.table, zp = args.zp;
  const OutputStore &outputs = kf.outputs;
  Emit e{b, loc};
  const int64_t L = key.lanes, VB = key.vectorBytes();
  auto vAcc = VectorType::get({L}, i32);
  auto vf = VectorType::get({L}, f32);
  auto vb = VectorType::get({VB}, i8);
  Value zeroAcc = e.splat(vAcc, b.getI32IntegerAttr(0));
  Value zeroF = e.splat(vf, b.getF32FloatAttr(0.0f));
  Value zeroS = e.f32(0.0f);
  Value mask4 = e.splat(vb, b.getI8IntegerAttr(0x0F));
  Value sh4 = e.splat(vb, b.getI8IntegerAttr(4));
  const int64_t block = key.blockCodes();
  const int64_t stepsPerGroup = key.group / block;
  const int64_t rowBytes = key.k * key.bits / 8;
  // The correction sum_g s_g (offset + zp_g) xsum_g, subtracted per row.
  const float offset = key.offset();
  const bool corrected = offset != 0.0f || key.zeroPoints;
  // (8-bit scale codes would need a gather: they take the per-group one.)
  const bool rowCorrection = corrected && groups <= 256 && !table;
  auto intrinsic = StringAttr::get(ctx, key.intrinsic);
  // Activation rows per pass over a weight row: enough independent
  // accumulators to hide the dot-product latency, few enough to stay in
  // registers (two vectors per row). Later passes re-read the row from L1.
  const int64_t tile = std::min<int64_t>(key.m, 4);

  auto rows = loop(b, loc, kf.n0, kf.n1, outputs.init(kf.y0, kf.trailing),
                   [&](OpBuilder &rb, Location l, Value n,
                       ValueRange rowIter) {
    Emit r{rb, l};
    Value rowBase = r.affine(n, rowBytes, nullptr);
    SmallVector<Value> outs(rowIter.begin(), rowIter.end());
    for (int64_t m0 = 0; m0 < key.m; m0 += tile) {
      const int64_t T = std::min(tile, key.m - m0);
      // iter: U x T f32 vector accumulators, then U x T scalar
      // corrections; U groups per iteration so that consecutive groups
      // feed different accumulators (no FMA latency chain across groups).
      const int64_t U = groups % 2 == 0 ? 2 : 1;
      const size_t nAcc = size_t(U * T);
      SmallVector<Value> init(nAcc, zeroF);
      init.append(nAcc, zeroS);
      auto grp = loop(rb, l, r.idx(0), r.idx(groups / U), init,
                      [&](OpBuilder &gb, Location gl, Value gi,
                          ValueRange it) {
        Emit ge{gb, gl};
        SmallVector<Value> out(it.begin(), it.end());
        for (int64_t u = 0; u < U; ++u) {
        Value g = ge.affine(gi, U, ge.idx(u));
        SmallVector<Value> accInit(size_t(T), zeroAcc);
        auto steps = loop(gb, gl, ge.idx(0), ge.idx(stepsPerGroup), accInit,
                          [&](OpBuilder &sb, Location sl, Value st,
                              ValueRange acc) {
          Emit se{sb, sl};
          auto [col, byteOff] =
              se.column(rowBase, g, key.group, st, block, key.bits);
          Value raw = se.read(w, {byteOff}, vb);
          SmallVector<Value> codes;
          if (key.bits == 8) {
            codes = {raw};
          } else if (key.unsignedNibbles()) {
            // Unsigned nibbles: a mask and a logical shift.
            codes = {arith::AndIOp::create(sb, sl, raw, mask4),
                     arith::ShRUIOp::create(sb, sl, raw, sh4)};
          } else {
            // Signed nibbles: shift the low one up, then arithmetic shifts.
            codes = {arith::ShRSIOp::create(
                         sb, sl, arith::ShLIOp::create(sb, sl, raw, sh4), sh4),
                     arith::ShRSIOp::create(sb, sl, raw, sh4)};
          }
          SmallVector<Value> next(acc.begin(), acc.end());
          for (size_t h = 0; h < codes.size(); ++h) {
            Value xc = se.add(col, se.idx(int64_t(h) * VB));
            for (int64_t mi = 0; mi < T; ++mi) {
              Value xv = se.read(xq, {se.idx(m0 + mi), xc}, vb);
              // (acc, unsigned-or-signed weights, signed activations).
              next[size_t(mi)] =
                  LLVM::CallIntrinsicOp::create(
                      sb, sl, vAcc, intrinsic,
                      ValueRange{next[size_t(mi)], codes[h], xv})
                      .getResult(0);
            }
          }
          return next;
        });
        Value scale = groupScale(gb, gl, key.scales, s, scaleTable, n, g);
        Value sv = vector::BroadcastOp::create(gb, gl, vf, scale);
        for (int64_t mi = 0; mi < T; ++mi) {
          size_t a = size_t(u * T + mi);
          Value f = arith::SIToFPOp::create(gb, gl, vf,
                                            steps.getResult(unsigned(mi)));
          out[a] = vector::FMAOp::create(gb, gl, f, sv, out[a]);
          if (corrected && !rowCorrection) {
            Value xsg = tensor::ExtractOp::create(
                gb, gl, xsum, ValueRange{ge.idx(m0 + mi), g});
            Value o = ge.f32(offset);
            if (key.zeroPoints)
              o = arith::AddFOp::create(
                  gb, gl, o,
                  toF32(gb, gl,
                        tensor::ExtractOp::create(gb, gl, zp,
                                                  ValueRange{n, g})));
            out[nAcc + a] = math::FmaOp::create(
                gb, gl, arith::MulFOp::create(gb, gl, scale, o), xsg,
                out[nAcc + a]);
          }
        }
        }
        return out;
      });
      // The correction sum_g s[n, g] (offset + zp[n, g]) xsum[m, g] as one
      // vector dot per row: fewer instructions in the group loop than a
      // scalar FMA each.
      Value sRow;
      auto vg = VectorType::get({groups}, f32);
      if (rowCorrection) {
        sRow = toF32(rb, l,
                     r.read(s, {n, r.idx(0)},
                            VectorType::get({groups}, sElem)));
        Value o = r.splat(vg, rb.getF32FloatAttr(offset));
        if (key.zeroPoints)
          o = arith::AddFOp::create(
              rb, l, o,
              toF32(rb, l,
                    r.read(zp, {n, r.idx(0)},
                           VectorType::get({groups}, key.zeroPointType))));
        sRow = arith::MulFOp::create(rb, l, sRow, o);
      }
      for (int64_t mi = 0; mi < T; ++mi) {
        Value sum = grp.getResult(unsigned(mi));
        Value corr = grp.getResult(unsigned(nAcc + size_t(mi)));
        if (rowCorrection) {
          Value xsRow = r.read(xsum, {r.idx(m0 + mi), r.idx(0)}, vg);
          corr = vector::ReductionOp::create(
              rb, l, vector::CombiningKind::ADD,
              arith::MulFOp::create(rb, l, sRow, xsRow),
              arith::FastMathFlags::reassoc);
        }
        for (int64_t u = 1; u < U; ++u) {
          sum = arith::AddFOp::create(rb, l, sum,
                                      grp.getResult(unsigned(u * T + mi)));
          corr = arith::AddFOp::create(
              rb, l, corr, grp.getResult(unsigned(nAcc + size_t(u * T + mi))));
        }
        Value red = vector::ReductionOp::create(
            rb, l, vector::CombiningKind::ADD, sum,
            arith::FastMathFlags::reassoc);
        if (corrected)
          red = arith::SubFOp::create(rb, l, red, corr);
        Value xsm = tensor::ExtractOp::create(rb, l, xs,
                                              ValueRange{r.idx(m0 + mi)});
        red = arith::MulFOp::create(rb, l, red, xsm);
        outs = outputs.store(rb, l, red, r.idx(m0 + mi), n, outs);
      }
    }
    return outs;
  });
  func::ReturnOp::create(b, loc, rows.getResults());
  return kf.fn;
}

func::FuncOp cpu::buildActQuantizer(ModuleOp module, const ActQuantizer &key) {
  OpBuilder b(module.getContext());
  Location loc = module.getLoc();
  Type f32 = b.getF32Type(), i8 = b.getI8Type(), i32 = b.getI32Type();
  const int64_t groups = key.k / key.group;
  auto xT = RankedTensorType::get({key.m, key.k}, f32);
  auto xqT = RankedTensorType::get({key.m, key.k}, i8);
  auto xsumT = RankedTensorType::get({key.m, groups}, f32);
  auto xsT = RankedTensorType::get({key.m}, f32);
  func::FuncOp fn = makeFunc(module, b, key.name(),
                             {xT, f32, xqT, xsumT, xsT}, {xqT, xsumT, xsT},
                             "quantize-rows", {2, 3, 4});
  Block *entry = &fn.getBody().front();
  Value x = entry->getArgument(0), fixed = entry->getArgument(1);
  Emit e{b, loc};
  auto vf = VectorType::get({kF32Lanes}, f32);
  auto vi32 = VectorType::get({kF32Lanes}, i32);
  auto vi8 = VectorType::get({kF32Lanes}, i8);
  Value zeroF = e.splat(vf, b.getF32FloatAttr(0.0f));
  Value zeroI = e.splat(vi32, b.getI32IntegerAttr(0));
  Value lo = e.splat(vf, b.getF32FloatAttr(-128.0f));
  Value hi = e.splat(vf, b.getF32FloatAttr(127.0f));

  auto rows = loop(
      b, loc, e.idx(0), e.idx(key.m),
      {entry->getArgument(2), entry->getArgument(3), entry->getArgument(4)},
      [&](OpBuilder &rb, Location l, Value m, ValueRange it) {
        Emit r{rb, l};
        auto amaxLoop = loop(rb, l, r.idx(0), r.idx(key.k / kF32Lanes),
                             {zeroF}, [&](OpBuilder &ab, Location al, Value c,
                                          ValueRange acc) {
          Emit ae{ab, al};
          Value v = ae.read(x, {m, ae.affine(c, kF32Lanes, nullptr)}, vf);
          Value a = math::AbsFOp::create(ab, al, v);
          return SmallVector<Value>{
              arith::MaximumFOp::create(ab, al, acc[0], a).getResult()};
        });
        Value amax = vector::ReductionOp::create(
            rb, l, vector::CombiningKind::MAXIMUMF, amaxLoop.getResult(0));
        Value dyn = arith::DivFOp::create(rb, l, amax, r.f32(127.0f));
        Value isZero = arith::CmpFOp::create(
            rb, l, arith::CmpFPredicate::OEQ, dyn, r.f32(0.0f));
        dyn = arith::SelectOp::create(rb, l, isZero, r.f32(1.0f), dyn);
        Value isStatic = arith::CmpFOp::create(
            rb, l, arith::CmpFPredicate::OGT, fixed, r.f32(0.0f));
        Value sc = arith::SelectOp::create(rb, l, isStatic, fixed, dyn);
        Value xsNew = tensor::InsertOp::create(rb, l, sc, it[2], ValueRange{m});
        Value sv = vector::BroadcastOp::create(rb, l, vf, sc);
        auto grp = loop(rb, l, r.idx(0), r.idx(groups), {it[0], it[1]},
                        [&](OpBuilder &gb, Location gl, Value g,
                            ValueRange git) {
          Emit ge{gb, gl};
          auto steps = loop(ge.b, ge.loc, ge.idx(0),
                            ge.idx(key.group / kF32Lanes), {git[0], zeroI},
                            [&](OpBuilder &sb, Location sl, Value st,
                                ValueRange sit) {
            Emit se{sb, sl};
            Value col = se.add(se.affine(g, key.group, nullptr),
                               se.affine(st, kF32Lanes, nullptr));
            // Same arithmetic as the reference: x / s, nearest even,
            // saturate.
            Value v = arith::DivFOp::create(sb, sl, se.read(x, {m, col}, vf),
                                            sv);
            Value q = math::RoundEvenOp::create(sb, sl, v);
            q = arith::MinimumFOp::create(
                sb, sl, arith::MaximumFOp::create(sb, sl, q, lo), hi);
            Value qi = arith::FPToSIOp::create(sb, sl, vi32, q);
            Value q8 = arith::TruncIOp::create(sb, sl, vi8, qi);
            Value xq = se.write(q8, sit[0], {m, col});
            return SmallVector<Value>{
                xq, arith::AddIOp::create(sb, sl, sit[1], qi).getResult()};
          });
          Value sum = vector::ReductionOp::create(
              gb, gl, vector::CombiningKind::ADD, steps.getResult(1));
          Value sumF = arith::SIToFPOp::create(gb, gl, f32, sum);
          Value xsum =
              tensor::InsertOp::create(gb, gl, sumF, git[1], ValueRange{m, g});
          return SmallVector<Value>{steps.getResult(0), xsum};
        });
        return SmallVector<Value>{grp.getResult(0), grp.getResult(1), xsNew};
      });
  func::ReturnOp::create(b, loc, rows.getResults());
  return fn;
}
