//===- FloatModel.cpp - Float IR of a whole Llama decoder -----------------===//
//
// Every op here mirrors one line of lib/Reference/LlamaReference.cpp, in the
// same operation order, so that the lowered IR reproduces the oracle's
// floats. Keep the two in step.
//
//===----------------------------------------------------------------------===//

#include "nibble/Import/FloatModel.h"
#include "nibble/Dialect/Nibble/IR/FormatCodegen.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Verifier.h"

#include <cmath>
#include <map>

using namespace mlir;
using ::nibble::model::DType;
using ::nibble::model::LlamaConfig;
using ::nibble::model::RopePairing;

namespace nibble::import {

void registerFloatModelDialects(DialectRegistry &registry) {
  registry.insert<arith::ArithDialect, func::FuncDialect,
                  linalg::LinalgDialect, math::MathDialect,
                  tensor::TensorDialect>();
}

namespace {

using Body = function_ref<SmallVector<Value>(OpBuilder &, Location,
                                             ValueRange)>;
using IT = utils::IteratorType;

std::optional<Type> elementTypeOf(MLIRContext *ctx, DType t) {
  switch (t) {
  case DType::F32:
    return Float32Type::get(ctx);
  case DType::F16:
    return Float16Type::get(ctx);
  case DType::BF16:
    return BFloat16Type::get(ctx);
  default:
    return std::nullopt;
  }
}

class DecoderBuilder {
public:
  DecoderBuilder(OpBuilder &b, Location loc, const model::Model &m,
                 int64_t seqLen)
      : b(b), loc(loc), m(m), c(m.config()), T(seqLen),
        f32(b.getF32Type()) {}

  Value build(Value tokens);

  /// Step mode: positions start at `pos` and keys/values go through the
  /// caches [L, S, KVH, HD] (see FloatModelOptions::kvCache); `logitsInit`
  /// is the destination of the lm_head. The caches after the last layer
  /// are in kCache/vCache once build() returns.
  void setKVCache(Value pos, Value kCache, Value vCache, Value logitsInit) {
    pos_ = pos;
    kCache_ = kCache;
    vCache_ = vCache;
    logitsInit_ = logitsInit;
  }
  Value kCache() const { return kCache_; }
  Value vCache() const { return vCache_; }

  /// Quantized caches (FloatModelOptions::kvFormat): the code caches were
  /// given to setKVCache; these are their scales [L, S, KVH]. Materializes
  /// the format's tables at the current insertion point.
  void setKVQuantization(const formats::Format &format, Value kScales,
                         Value vScales) {
    kvCodec_ = mlir::nibble::codegen::materializeTables(b, loc, format);
    kvMax_ = format.maxValue();
    kScales_ = kScales;
    vScales_ = vScales;
  }
  Value kScales() const { return kScales_; }
  Value vScales() const { return vScales_; }

private:
  // --- small helpers --------------------------------------------------------
  RankedTensorType tensorTy(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, f32);
  }
  Value cst(OpBuilder &ob, Location l, float v) {
    return arith::ConstantOp::create(ob, l, ob.getF32FloatAttr(v));
  }
  Value empty(ArrayRef<int64_t> shape) {
    return tensor::EmptyOp::create(b, loc, shape, f32);
  }
  Value filled(ArrayRef<int64_t> shape, float v) {
    return fill(empty(shape), v);
  }
  Value fill(Value init, float v) {
    return linalg::FillOp::create(b, loc, ValueRange{cst(b, loc, v)},
                                  ValueRange{init})
        .getResult(0);
  }
  /// Shapes with dynamic extents (the attended length in step mode).
  Value emptyMixed(ArrayRef<OpFoldResult> shape) {
    return tensor::EmptyOp::create(b, loc, shape, f32);
  }
  static Value widen(OpBuilder &ob, Location l, Value v) {
    if (v.getType().isF32())
      return v;
    return arith::ExtFOp::create(ob, l, ob.getF32Type(), v);
  }
  AffineMap map(unsigned dims, ArrayRef<AffineExpr> results) {
    return AffineMap::get(dims, 0, results, b.getContext());
  }
  AffineExpr d(unsigned i) { return b.getAffineDimExpr(i); }

  /// One linalg.generic; `inits` are its outputs, maps cover ins then outs.
  SmallVector<Value> generic(ValueRange ins, ValueRange inits,
                             ArrayRef<AffineMap> maps, ArrayRef<IT> iters,
                             Body body) {
    SmallVector<Type> types;
    for (Value v : inits)
      types.push_back(v.getType());
    auto op = linalg::GenericOp::create(
        b, loc, types, ins, inits, maps, iters,
        [&](OpBuilder &ob, Location l, ValueRange args) {
          linalg::YieldOp::create(ob, l, body(ob, l, args));
        });
    return SmallVector<Value>(op.getResults());
  }

  /// The checkpoint tensor `name` as a dense_resource constant of its own
  /// element type (one constant per tensor).
  Value weight(const std::string &name) {
    auto it = weights_.find(name);
    if (it != weights_.end())
      return it->second;
    const model::TensorView &t = m.get(name);
    auto type = RankedTensorType::get(
        t.shape, *elementTypeOf(b.getContext(), t.dtype));
    // A second function of the module (prefill next to decode) refers to
    // the resources the first one created; a fresh insert would rename.
    auto known = resources.find(name);
    auto handle = known != resources.end()
                      ? known->second
                      : DenseResourceElementsHandle::getManagerInterface(
                            b.getContext())
                            .insert(name);
    resources.emplace(name, handle);
    Value v = arith::ConstantOp::create(
        b, loc, DenseResourceElementsAttr::get(type, handle));
    weights_[name] = v;
    return v;
  }
  Value layerWeight(int64_t l, const char *suffix) {
    return weight(model::layerTensorName(l, suffix));
  }

  // --- the decoder's pieces (see LlamaReference.cpp) --------------------
  Value embed(Value tokens);
  Value rmsNorm(Value x, Value w, const std::string &name);
  /// `producer`: the linear whose output rows this one's input channels
  /// are linear in (see nibble.input_producer), with query heads per
  /// key/value head `repeat`.
  Value linear(Value x, Value w, int64_t out, const std::string &name,
               const std::string &producer = "", int64_t repeat = 1);
  std::pair<Value, Value> ropeTables();
  Value rope(Value x, int64_t heads, Value cosT, Value sinT);
  Value attention(Value q, Value k, Value v, int64_t layer);
  /// Softmax(q k^T / sqrt(hd)) v over n keys, causal; q4 [T, KV, G, HD],
  /// k3 and v3 [n, KV, HD].
  Value attend(Value q4, Value k3, Value v3, OpFoldResult n);
  Value add(Value a, Value x);
  Value swiglu(Value gate, Value up);

  OpBuilder &b;
  Location loc;
  const model::Model &m;
  const LlamaConfig &c;
  const int64_t T;
  Type f32;
  std::map<std::string, Value> weights_;
  Value pos_, kCache_, vCache_, logitsInit_;
  std::optional<mlir::nibble::codegen::FormatTableValues> kvCodec_;
  float kvMax_ = 0.0f;
  Value kScales_, vScales_;

  /// x [T, KV, HD] into the quantized cache at (layer, pos_): codes and
  /// per-(position, head) scales.
  void putQuantized(Value &codes, Value &scales, Value x, int64_t layer);
  /// Positions [0, len) of the quantized cache, dequantized: [len, KV, HD].
  Value takeQuantized(Value codes, Value scales, Value len, int64_t layer);

public:
  /// Resources already in the module, by tensor name.
  std::map<std::string, DenseResourceElementsHandle> resources;
};

Value DecoderBuilder::embed(Value tokens) {
  Value table = weight("model.embed_tokens.weight");
  const int64_t V = c.vocabSize;
  return generic(
      tokens, empty({T, c.dim}), {map(2, {d(0)}), map(2, {d(0), d(1)})},
      {IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        // Ids outside the vocabulary are clamped so the IR never reads out
        // of bounds; callers validate ids first (the reference rejects them).
        Value id = arith::IndexCastOp::create(ob, l, ob.getIndexType(), a[0]);
        id = arith::MaxSIOp::create(
            ob, l, id, arith::ConstantIndexOp::create(ob, l, 0));
        id = arith::MinSIOp::create(
            ob, l, id, arith::ConstantIndexOp::create(ob, l, V - 1));
        Value col = linalg::IndexOp::create(ob, l, 1);
        Value e = tensor::ExtractOp::create(ob, l, table, ValueRange{id, col});
        return {widen(ob, l, e)};
      })[0];
}

Value DecoderBuilder::rmsNorm(Value x, Value w, const std::string &name) {
  const int64_t D = c.dim;
  Value ss = generic(x, filled({T}, 0.0f), {map(2, {d(0), d(1)}), map(2, {d(0)})},
                     {IT::parallel, IT::reduction},
                     [&](OpBuilder &ob, Location l, ValueRange a)
                         -> SmallVector<Value> {
                       Value sq = arith::MulFOp::create(ob, l, a[0], a[0]);
                       return {arith::AddFOp::create(ob, l, a[1], sq)};
                     })[0];
  const float eps = float(c.normEps);
  auto out = generic(
      ValueRange{x, ss, w}, empty({T, D}),
      {map(2, {d(0), d(1)}), map(2, {d(0)}), map(2, {d(1)}),
       map(2, {d(0), d(1)})},
      {IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        // scale = 1 / sqrt(ss / n + eps); out = (x * scale) * w
        Value mean = arith::DivFOp::create(ob, l, a[1], cst(ob, l, float(D)));
        Value var = arith::AddFOp::create(ob, l, mean, cst(ob, l, eps));
        Value root = math::SqrtOp::create(ob, l, var);
        Value scale = arith::DivFOp::create(ob, l, cst(ob, l, 1.0f), root);
        Value xs = arith::MulFOp::create(ob, l, a[0], scale);
        return {arith::MulFOp::create(ob, l, xs, widen(ob, l, a[2]))};
      })[0];
  // Operand 2 (the weight) multiplies output channel j: passes that scale
  // the input channels of the linears reading this norm fold into it.
  out.getDefiningOp()->setAttr("nibble.norm", b.getStringAttr(name));
  return out;
}

Value DecoderBuilder::linear(Value x, Value w, int64_t out,
                             const std::string &name,
                             const std::string &producer, int64_t repeat) {
  auto mm = linalg::MatmulTransposeBOp::create(
      b, loc, TypeRange{tensorTy({T, out})}, ValueRange{x, w},
      ValueRange{filled({T, out}, 0.0f)});
  mm->setAttr("nibble.linear", b.getStringAttr(name));
  if (!producer.empty()) {
    // Input channel c of this linear is linear in output row
    // (c / (repeat * block)) * block + c % block of `producer` and in
    // nothing else (attention is linear in V; SwiGLU is linear in up), so
    // a per-channel input scale with equal values over each such class
    // folds into that linear's rows.
    NamedAttrList fold;
    fold.append("linear", b.getStringAttr(producer));
    fold.append("repeat", b.getI64IntegerAttr(repeat));
    fold.append("block", b.getI64IntegerAttr(repeat == 1 ? 1 : c.headDim));
    mm->setAttr("nibble.input_producer", fold.getDictionary(b.getContext()));
  }
  return mm->getResult(0);
}

std::pair<Value, Value> DecoderBuilder::ropeTables() {
  const int64_t half = c.headDim / 2;
  std::vector<float> inv = c.ropeInverseFrequencies();
  Value invFreq = arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(tensorTy({half}), ArrayRef<float>(inv)));
  auto tables = generic(
      invFreq, ValueRange{empty({T, half}), empty({T, half})},
      {map(2, {d(1)}), map(2, {d(0), d(1)}), map(2, {d(0), d(1)})},
      {IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        // angle = float(pos) * inv_freq[i]
        Value pos = linalg::IndexOp::create(ob, l, 0);
        if (pos_)
          pos = arith::AddIOp::create(ob, l, pos, pos_);
        pos = arith::IndexCastOp::create(ob, l, ob.getI64Type(), pos);
        Value posF = arith::SIToFPOp::create(ob, l, ob.getF32Type(), pos);
        Value angle = arith::MulFOp::create(ob, l, posF, a[0]);
        return {math::CosOp::create(ob, l, angle),
                math::SinOp::create(ob, l, angle)};
      });
  return {tables[0], tables[1]};
}

Value DecoderBuilder::rope(Value x, int64_t heads, Value cosT, Value sinT) {
  // View each head as [half, 2] (interleaved pairs) or [2, half]
  // (rotate_half); `p` is the position within the pair.
  const int64_t half = c.headDim / 2;
  const bool interleaved = c.ropePairing == RopePairing::Interleaved;
  SmallVector<int64_t> shape =
      interleaved ? SmallVector<int64_t>{T, heads, half, 2}
                  : SmallVector<int64_t>{T, heads, 2, half};
  const unsigned pDim = interleaved ? 3 : 2, iDim = interleaved ? 2 : 3;
  SmallVector<ReassociationIndices> reassoc = {{0}, {1, 2, 3}};
  Value xs = tensor::ExpandShapeOp::create(b, loc, tensorTy(shape), x, reassoc);
  SmallVector<AffineExpr> own = {d(0), d(1), d(2), d(3)};
  SmallVector<AffineExpr> partner = own;
  partner[pDim] = 1 - d(pDim);
  Value rotated = generic(
      ValueRange{xs, xs, cosT, sinT}, empty(shape),
      {map(4, own), map(4, partner), map(4, {d(0), d(iDim)}),
       map(4, {d(0), d(iDim)}), map(4, own)},
      {IT::parallel, IT::parallel, IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        // first:  x0 * c - x1 * s      second: x1 * c + x0 * s
        Value p = linalg::IndexOp::create(ob, l, pDim);
        Value isFirst = arith::CmpIOp::create(
            ob, l, arith::CmpIPredicate::eq, p,
            arith::ConstantIndexOp::create(ob, l, 0));
        Value oc = arith::MulFOp::create(ob, l, a[0], a[2]);
        Value ps = arith::MulFOp::create(ob, l, a[1], a[3]);
        Value first = arith::SubFOp::create(ob, l, oc, ps);
        Value second = arith::AddFOp::create(ob, l, oc, ps);
        return {arith::SelectOp::create(ob, l, isFirst, first, second)};
      })[0];
  return tensor::CollapseShapeOp::create(b, loc, tensorTy({T, heads * c.headDim}),
                                         rotated, reassoc);
}

void DecoderBuilder::putQuantized(Value &codes, Value &scales, Value x,
                                  int64_t layer) {
  const int64_t KV = c.numKVHeads, hd = c.headDim;
  AffineMap all3 = map(3, {d(0), d(1), d(2)});
  AffineMap row3 = map(3, {d(0), d(1)});
  // s[t, h] = max_d |x[t, h, d]| / maxValue (1 where the row is zero).
  Value absMax = generic(
      x, filled({T, KV}, 0.0f), {all3, row3},
      {IT::parallel, IT::parallel, IT::reduction},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        return {arith::MaximumFOp::create(ob, l, a[1],
                                          math::AbsFOp::create(ob, l, a[0]))};
      })[0];
  AffineMap id2 = map(2, {d(0), d(1)});
  Value s = generic(
      absMax, empty({T, KV}), {id2, id2}, {IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        Value q = arith::DivFOp::create(ob, l, a[0], cst(ob, l, kvMax_));
        Value zero = arith::CmpFOp::create(ob, l, arith::CmpFPredicate::OEQ,
                                           q, cst(ob, l, 0.0f));
        return {arith::SelectOp::create(ob, l, zero, cst(ob, l, 1.0f), q)};
      })[0];
  // codes[t, h, d] = encode(x / s)
  Value q = generic(
      ValueRange{x, s},
      ValueRange{tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{T, KV, hd},
                                         b.getI8Type())
                     .getResult()},
      {all3, row3, all3}, {IT::parallel, IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        Value y = arith::DivFOp::create(ob, l, a[0], a[1]);
        return {mlir::nibble::codegen::emitEncode(ob, l, y, *kvCodec_)};
      })[0];
  auto idx = [&](int64_t v) -> OpFoldResult { return b.getIndexAttr(v); };
  codes = tensor::InsertSliceOp::create(
      b, loc, q, codes, {idx(layer), pos_, idx(0), idx(0)},
      {idx(1), idx(T), idx(KV), idx(hd)}, {idx(1), idx(1), idx(1), idx(1)});
  scales = tensor::InsertSliceOp::create(b, loc, s, scales,
                                         {idx(layer), pos_, idx(0)},
                                         {idx(1), idx(T), idx(KV)},
                                         {idx(1), idx(1), idx(1)});
}

Value DecoderBuilder::takeQuantized(Value codes, Value scales, Value len,
                                    int64_t layer) {
  const int64_t KV = c.numKVHeads, hd = c.headDim;
  auto idx = [&](int64_t v) -> OpFoldResult { return b.getIndexAttr(v); };
  const int64_t dyn = ShapedType::kDynamic;
  Value q = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({dyn, KV, hd}, b.getI8Type()), codes,
      {idx(layer), idx(0), idx(0), idx(0)}, {idx(1), len, idx(KV), idx(hd)},
      {idx(1), idx(1), idx(1), idx(1)});
  Value s = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({dyn, KV}, f32), scales,
      {idx(layer), idx(0), idx(0)}, {idx(1), len, idx(KV)},
      {idx(1), idx(1), idx(1)});
  AffineMap all3 = map(3, {d(0), d(1), d(2)});
  AffineMap row3 = map(3, {d(0), d(1)});
  return generic(
      ValueRange{q, s}, emptyMixed({len, idx(KV), idx(hd)}),
      {all3, row3, all3}, {IT::parallel, IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        Value v = mlir::nibble::codegen::emitDecode(ob, l, a[0], *kvCodec_);
        return {arith::MulFOp::create(ob, l, v, a[1])};
      })[0];
}

Value DecoderBuilder::attention(Value q, Value k, Value v, int64_t layer) {
  const int64_t KV = c.numKVHeads, G = c.numHeads / c.numKVHeads,
                hd = c.headDim;
  // Query head h = kv * G + g reads key/value head kv.
  Value q4 = tensor::ExpandShapeOp::create(
      b, loc, tensorTy({T, KV, G, hd}), q,
      SmallVector<ReassociationIndices>{{0}, {1, 2, 3}});
  SmallVector<ReassociationIndices> kvAssoc = {{0}, {1, 2}};
  Value k3 = tensor::ExpandShapeOp::create(b, loc, tensorTy({T, KV, hd}), k,
                                           kvAssoc);
  Value v3 = tensor::ExpandShapeOp::create(b, loc, tensorTy({T, KV, hd}), v,
                                           kvAssoc);
  // Keys are attended at positions 0 .. n-1: the chunk itself (n = T), or,
  // in step mode, the cache after this chunk is written (n = pos + T).
  OpFoldResult n = b.getIndexAttr(T);
  if (pos_) {
    auto put = [&](Value cache, Value x) {
      SmallVector<OpFoldResult> offsets = {b.getIndexAttr(layer), pos_,
                                           b.getIndexAttr(0),
                                           b.getIndexAttr(0)};
      SmallVector<OpFoldResult> sizes = {b.getIndexAttr(1), b.getIndexAttr(T),
                                         b.getIndexAttr(KV),
                                         b.getIndexAttr(hd)};
      SmallVector<OpFoldResult> ones(4, b.getIndexAttr(1));
      return tensor::InsertSliceOp::create(b, loc, x, cache, offsets, sizes,
                                           ones)
          .getResult();
    };
    Value len = arith::AddIOp::create(
        b, loc, pos_, arith::ConstantIndexOp::create(b, loc, T));
    n = len;
    if (kvCodec_) {
      putQuantized(kCache_, kScales_, k3, layer);
      putQuantized(vCache_, vScales_, v3, layer);
      k3 = takeQuantized(kCache_, kScales_, len, layer);
      v3 = takeQuantized(vCache_, vScales_, len, layer);
      return attend(q4, k3, v3, n);
    }
    kCache_ = put(kCache_, k3);
    vCache_ = put(vCache_, v3);
    auto take = [&](Value cache) {
      SmallVector<OpFoldResult> offsets = {b.getIndexAttr(layer),
                                           b.getIndexAttr(0),
                                           b.getIndexAttr(0),
                                           b.getIndexAttr(0)};
      SmallVector<OpFoldResult> sizes = {b.getIndexAttr(1), len,
                                         b.getIndexAttr(KV),
                                         b.getIndexAttr(hd)};
      SmallVector<OpFoldResult> ones(4, b.getIndexAttr(1));
      auto type = RankedTensorType::get({ShapedType::kDynamic, KV, hd}, f32);
      return tensor::ExtractSliceOp::create(b, loc, type, cache, offsets,
                                            sizes, ones)
          .getResult();
    };
    k3 = take(kCache_);
    v3 = take(vCache_);
  }
  return attend(q4, k3, v3, n);
}

Value DecoderBuilder::attend(Value q4, Value k3, Value v3, OpFoldResult n) {
  const int64_t KV = c.numKVHeads, G = c.numHeads / c.numKVHeads,
                hd = c.headDim;
  const float invSqrtD = 1.0f / std::sqrt(float(hd));
  const SmallVector<OpFoldResult> scoreShape = {
      b.getIndexAttr(KV), b.getIndexAttr(G), b.getIndexAttr(T), n};
  auto macc = [](OpBuilder &ob, Location l,
                 ValueRange a) -> SmallVector<Value> {
    Value prod = arith::MulFOp::create(ob, l, a[0], a[1]);
    return {arith::AddFOp::create(ob, l, a[2], prod)};
  };
  auto masked = [&](OpBuilder &ob, Location l) {
    Value i = linalg::IndexOp::create(ob, l, 2);
    if (pos_)
      i = arith::AddIOp::create(ob, l, i, pos_);
    Value j = linalg::IndexOp::create(ob, l, 3);
    return arith::CmpIOp::create(ob, l, arith::CmpIPredicate::ugt, j, i);
  };
  const std::vector<IT> par4 = {IT::parallel, IT::parallel, IT::parallel,
                                IT::parallel};
  const std::vector<IT> par3red = {IT::parallel, IT::parallel, IT::parallel,
                                   IT::reduction};
  // dot[kv, g, i, j] = sum_d q[i, kv, g, d] * k[j, kv, d]
  Value dots = generic(
      ValueRange{q4, k3}, fill(emptyMixed(scoreShape), 0.0f),
      {map(5, {d(2), d(0), d(1), d(4)}), map(5, {d(3), d(0), d(4)}),
       map(5, {d(0), d(1), d(2), d(3)})},
      {IT::parallel, IT::parallel, IT::parallel, IT::parallel, IT::reduction},
      macc)[0];
  AffineMap all4 = map(4, {d(0), d(1), d(2), d(3)});
  AffineMap row4 = map(4, {d(0), d(1), d(2)});
  // max over unmasked j of dot * invSqrtD
  Value rowMax = generic(
      dots, filled({KV, G, T}, -INFINITY), {all4, row4}, par3red,
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        Value s = arith::MulFOp::create(ob, l, a[0], cst(ob, l, invSqrtD));
        Value sm = arith::SelectOp::create(ob, l, masked(ob, l),
                                           cst(ob, l, -INFINITY), s);
        return {arith::MaximumFOp::create(ob, l, a[1], sm)};
      })[0];
  // e = exp(dot * invSqrtD - max), 0 where masked
  Value e = generic(
      ValueRange{dots, rowMax}, emptyMixed(scoreShape), {all4, row4, all4},
      par4,
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        Value s = arith::MulFOp::create(ob, l, a[0], cst(ob, l, invSqrtD));
        Value ex = math::ExpOp::create(ob, l,
                                       arith::SubFOp::create(ob, l, s, a[1]));
        return {arith::SelectOp::create(ob, l, masked(ob, l),
                                        cst(ob, l, 0.0f), ex)};
      })[0];
  Value sum = generic(
      e, filled({KV, G, T}, 0.0f), {all4, row4}, par3red,
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        return {arith::AddFOp::create(ob, l, a[1], a[0])};
      })[0];
  Value probs = generic(
      ValueRange{e, sum}, emptyMixed(scoreShape), {all4, row4, all4}, par4,
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        return {arith::DivFOp::create(ob, l, a[0], a[1])};
      })[0];
  // out[i, kv, g, d] = sum_j p[kv, g, i, j] * v[j, kv, d]
  Value out = generic(
      ValueRange{probs, v3}, filled({T, KV, G, hd}, 0.0f),
      {map(5, {d(1), d(2), d(0), d(4)}), map(5, {d(4), d(1), d(3)}),
       map(5, {d(0), d(1), d(2), d(3)})},
      {IT::parallel, IT::parallel, IT::parallel, IT::parallel, IT::reduction},
      macc)[0];
  return tensor::CollapseShapeOp::create(
      b, loc, tensorTy({T, c.qDim()}), out,
      SmallVector<ReassociationIndices>{{0}, {1, 2, 3}});
}

Value DecoderBuilder::add(Value a, Value x) {
  AffineMap id = map(2, {d(0), d(1)});
  auto shape = cast<RankedTensorType>(a.getType()).getShape();
  return generic(ValueRange{a, x}, empty(shape), {id, id, id},
                 {IT::parallel, IT::parallel},
                 [&](OpBuilder &ob, Location l, ValueRange v)
                     -> SmallVector<Value> {
                   return {arith::AddFOp::create(ob, l, v[0], v[1])};
                 })[0];
}

Value DecoderBuilder::swiglu(Value gate, Value up) {
  AffineMap id = map(2, {d(0), d(1)});
  return generic(
      ValueRange{gate, up}, empty({T, c.hiddenDim}), {id, id, id},
      {IT::parallel, IT::parallel},
      [&](OpBuilder &ob, Location l, ValueRange a) -> SmallVector<Value> {
        // g / (1 + exp(-g)) * u
        Value ex = math::ExpOp::create(ob, l, arith::NegFOp::create(ob, l, a[0]));
        Value den = arith::AddFOp::create(ob, l, cst(ob, l, 1.0f), ex);
        Value silu = arith::DivFOp::create(ob, l, a[0], den);
        return {arith::MulFOp::create(ob, l, silu, a[1])};
      })[0];
}

Value DecoderBuilder::build(Value tokens) {
  Value x = embed(tokens);
  auto [cosT, sinT] = ropeTables();
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    Value h = rmsNorm(x, layerWeight(l, "input_layernorm.weight"),
                      p + "input_layernorm");
    Value q = linear(h, layerWeight(l, "self_attn.q_proj.weight"), c.qDim(),
                     p + "self_attn.q_proj");
    Value k = linear(h, layerWeight(l, "self_attn.k_proj.weight"), c.kvDim(),
                     p + "self_attn.k_proj");
    Value v = linear(h, layerWeight(l, "self_attn.v_proj.weight"), c.kvDim(),
                     p + "self_attn.v_proj");
    q = rope(q, c.numHeads, cosT, sinT);
    k = rope(k, c.numKVHeads, cosT, sinT);
    Value att = attention(q, k, v, l);
    x = add(x, linear(att, layerWeight(l, "self_attn.o_proj.weight"), c.dim,
                      p + "self_attn.o_proj", p + "self_attn.v_proj",
                      c.numHeads / c.numKVHeads));
    h = rmsNorm(x, layerWeight(l, "post_attention_layernorm.weight"),
                p + "post_attention_layernorm");
    Value gate = linear(h, layerWeight(l, "mlp.gate_proj.weight"), c.hiddenDim,
                        p + "mlp.gate_proj");
    Value up = linear(h, layerWeight(l, "mlp.up_proj.weight"), c.hiddenDim,
                      p + "mlp.up_proj");
    x = add(x, linear(swiglu(gate, up), layerWeight(l, "mlp.down_proj.weight"),
                      c.dim, p + "mlp.down_proj", p + "mlp.up_proj", 1));
  }
  x = rmsNorm(x, weight("model.norm.weight"), "model.norm");
  Value logits = linear(x, weight(m.lmHead().name), c.vocabSize, "lm_head");
  if (!logitsInit_)
    return logits;
  // Into the caller's buffer: a copy of T x V floats, whichever op (a float
  // matmul, a generated kernel) produced them.
  return linalg::CopyOp::create(b, loc, logits, logitsInit_).getResult(0);
}

} // namespace

bool appendFloatFunction(ModuleOp module, const model::Model &model,
                         const FloatModelOptions &options, std::string &error) {
  const LlamaConfig &c = model.config();
  const int64_t S = options.contextLen > 0 ? options.contextLen : c.maxSeqLen;
  if (options.seqLen <= 0 || options.seqLen > c.maxSeqLen) {
    error = "sequence length " + std::to_string(options.seqLen) +
            " must be in [1, " + std::to_string(c.maxSeqLen) +
            "] (the model's maximum)";
    return false;
  }
  if (options.kvCache && (S > c.maxSeqLen || options.seqLen > S)) {
    error = "context length " + std::to_string(S) + " must be in [" +
            std::to_string(options.seqLen) + ", " +
            std::to_string(c.maxSeqLen) +
            "] (the chunk length .. the model's maximum)";
    return false;
  }
  if (module.lookupSymbol(options.funcName)) {
    error = "the module already has a function @" + options.funcName;
    return false;
  }
  MLIRContext *ctx = module.getContext();
  OpBuilder b(ctx);
  Location loc = module.getLoc();
  b.setInsertionPointToEnd(module.getBody());
  const int64_t T = options.seqLen;
  auto tokensTy = RankedTensorType::get({T}, b.getI32Type());
  auto logitsTy = RankedTensorType::get({T, c.vocabSize}, b.getF32Type());
  const bool quantKV = options.kvCache && options.kvFormat.has_value();
  if (options.kvFormat && options.kvFormat->bits() > 8) {
    error = "KV-cache format " + options.kvFormat->name() +
            " has more than 8 bits per code (one code per byte is stored)";
    return false;
  }
  auto cacheTy = RankedTensorType::get(
      {c.numLayers, S, c.numKVHeads, c.headDim},
      quantKV ? Type(b.getI8Type()) : Type(b.getF32Type()));
  auto scalesTy = RankedTensorType::get({c.numLayers, S, c.numKVHeads},
                                        b.getF32Type());
  SmallVector<Type> args = {tokensTy}, results = {logitsTy};
  std::vector<const char *> names = {"tokens"};
  if (options.kvCache) {
    args.append({b.getIndexType(), cacheTy, cacheTy});
    results.append({cacheTy, cacheTy});
    names.insert(names.end(), {"pos", "k_cache", "v_cache"});
    if (quantKV) {
      args.append({scalesTy, scalesTy});
      results.append({scalesTy, scalesTy});
      names.insert(names.end(), {"k_scales", "v_scales"});
    }
    args.push_back(logitsTy);
    names.push_back("logits");
  }
  auto func = func::FuncOp::create(b, loc, options.funcName,
                                   b.getFunctionType(args, results));
  for (unsigned i = 0; i < args.size(); ++i)
    func.setArgAttr(i, "nibble.name", b.getStringAttr(names[i]));
  if (options.kvCache)
    func->setAttr("nibble.in_place_results", b.getUnitAttr());
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  DecoderBuilder builder(b, loc, model, T);
  module.walk([&](arith::ConstantOp op) {
    if (auto attr = dyn_cast<DenseResourceElementsAttr>(op.getValue()))
      builder.resources.emplace(attr.getRawHandle().getKey().str(),
                                attr.getRawHandle());
  });
  if (options.kvCache)
    builder.setKVCache(entry->getArgument(1), entry->getArgument(2),
                       entry->getArgument(3), entry->getArguments().back());
  if (quantKV)
    builder.setKVQuantization(*options.kvFormat, entry->getArgument(4),
                              entry->getArgument(5));
  Value logits = builder.build(entry->getArgument(0));
  SmallVector<Value> outs = {logits};
  if (options.kvCache)
    outs.append({builder.kCache(), builder.vCache()});
  if (quantKV)
    outs.append({builder.kScales(), builder.vScales()});
  func::ReturnOp::create(b, loc, outs);
  if (failed(verify(func))) {
    error = "internal error: the generated float IR does not verify";
    return false;
  }
  return true;
}

OwningOpRef<ModuleOp> buildFloatModel(MLIRContext &ctx,
                                      const model::Model &model,
                                      const FloatModelOptions &options,
                                      std::string &error) {
  DialectRegistry registry;
  registerFloatModelDialects(registry);
  ctx.appendDialectRegistry(registry);
  ctx.loadAllAvailableDialects();

  OpBuilder b(&ctx);
  Location loc = FileLineColLoc::get(&ctx, model.source(), 0, 0);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  const LlamaConfig &c = model.config();
  // Architecture facts, for tools and passes that read the module.
  NamedAttrList info;
  info.append("source", b.getStringAttr(model.source()));
  info.append("format", b.getStringAttr(model.format()));
  info.append("dim", b.getI64IntegerAttr(c.dim));
  info.append("hidden_dim", b.getI64IntegerAttr(c.hiddenDim));
  info.append("layers", b.getI64IntegerAttr(c.numLayers));
  info.append("heads", b.getI64IntegerAttr(c.numHeads));
  info.append("kv_heads", b.getI64IntegerAttr(c.numKVHeads));
  info.append("head_dim", b.getI64IntegerAttr(c.headDim));
  info.append("vocab", b.getI64IntegerAttr(c.vocabSize));
  info.append("max_seq_len", b.getI64IntegerAttr(c.maxSeqLen));
  info.append("rope_pairing",
              b.getStringAttr(c.ropePairing == RopePairing::Interleaved
                                  ? "interleaved"
                                  : "rotate_half"));
  info.append("rope_theta", b.getF64FloatAttr(c.ropeTheta));
  info.append("norm_eps", b.getF64FloatAttr(c.normEps));
  info.append("tied_embeddings", b.getBoolAttr(c.tiedEmbeddings));
  (*module)->setAttr("nibble.model", info.getDictionary(&ctx));
  if (!appendFloatFunction(*module, model, options, error))
    return nullptr;
  return module;
}

bool bindWeights(ModuleOp module, const model::Model &model, bool copy,
                 std::string &error) {
  bool ok = true;
  module.walk([&](arith::ConstantOp op) {
    auto attr = dyn_cast<DenseResourceElementsAttr>(op.getValue());
    if (!attr || !ok)
      return;
    DenseResourceElementsHandle handle = attr.getRawHandle();
    std::string key = handle.getKey().str();
    const model::TensorView *t = model.find(key);
    if (!t) {
      error = "dense_resource<" + key + ">: no tensor of that name in " +
              model.source();
      ok = false;
      return;
    }
    auto type = cast<ShapedType>(attr.getType());
    std::optional<Type> elem = elementTypeOf(op.getContext(), t->dtype);
    if (!elem || *elem != type.getElementType() ||
        type.getShape() != ArrayRef<int64_t>(t->shape)) {
      std::string ts;
      llvm::raw_string_ostream os(ts);
      os << type;
      error = "dense_resource<" + key + ">: the IR expects " + ts +
              " but " + t->file + " holds " + model::shapeString(t->shape) +
              " " + std::string(model::dtypeName(t->dtype));
      ok = false;
      return;
    }
    ArrayRef<char> bytes(reinterpret_cast<const char *>(t->data), t->nbytes);
    const size_t align = model::dtypeSize(t->dtype);
    bool aligned = reinterpret_cast<uintptr_t>(t->data) % align == 0;
    AsmResourceBlob blob =
        !copy && aligned
            ? UnmanagedAsmResourceBlob::allocateWithAlign(bytes, align)
            : HeapAsmResourceBlob::allocateAndCopyWithAlign(bytes, 64);
    handle.getResource()->setBlob(std::move(blob));
  });
  return ok;
}

} // namespace nibble::import
