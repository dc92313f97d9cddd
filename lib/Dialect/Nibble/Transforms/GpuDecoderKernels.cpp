//===- GpuDecoderKernels.cpp - The non-matmul kernels of a GPU decode step ===//
//
// Embedding, RMSNorm, RoPE with the KV-cache write, attention over the
// cache (online softmax), SwiGLU and the residual add as gpu.func kernels
// for one token, specialised for a model shape (GpuDecoder.h). The matmuls
// are GpuKernels.cpp's GEMVs. Math in f32 with the same operation order as
// the CPU reference (LlamaReference.cpp) except where noted: exp is
// exp2(x * log2 e) (ex2.approx.f32) and the attention's 1/sqrt(head_dim)
// multiplies q once instead of every score.
//
//===----------------------------------------------------------------------===//

#include "GpuCommon.h"
#include "nibble/Dialect/Nibble/Transforms/GpuDecoder.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/SymbolTable.h"

#include <cmath>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEGENERATEGPUDECODERKERNELS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;

namespace {

/// Shorthands for building a kernel body.
struct KB {
  OpBuilder &b;
  Location loc;

  Value idx(int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v).getResult();
  }
  Value i32(int64_t v) {
    return arith::ConstantIntOp::create(b, loc, b.getI32Type(), v)
        .getResult();
  }
  Value f32(double v) {
    return arith::ConstantFloatOp::create(b, loc, b.getF32Type(),
                                          APFloat(float(v)))
        .getResult();
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return arith::DivUIOp::create(b, loc, x, y); }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, loc, x, y); }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value fdiv(Value x, Value y) { return arith::DivFOp::create(b, loc, x, y); }
  /// llvm.intr.fma (math.fma would become a libdevice call).
  Value fma(Value x, Value y, Value z) {
    return LLVM::FMAOp::create(b, loc, x, y, z);
  }
  /// An NVVM intrinsic of one f32. (math.exp / math.sqrt would become
  /// libdevice calls, and convert-gpu-to-nvvm rewrites llvm.intr.exp2 /
  /// llvm.intr.sqrt into them too; ISA output cannot resolve those.)
  Value intrinsic(StringRef name, Value x) {
    return LLVM::CallIntrinsicOp::create(b, loc, b.getF32Type(),
                                         b.getStringAttr(name), ValueRange{x})
        .getResult(0);
  }
  /// e^x as 2^(x log2 e) (ex2.approx.f32).
  Value exp(Value x) {
    return intrinsic("llvm.nvvm.ex2.approx.f32", fmul(x, f32(M_LOG2E)));
  }
  Value sqrt(Value x) { return intrinsic("llvm.nvvm.sqrt.rn.f", x); }
  Value load(Value m, Value i) {
    return memref::LoadOp::create(b, loc, m, ValueRange{i});
  }
  void store(Value v, Value m, Value i) {
    memref::StoreOp::create(b, loc, v, m, ValueRange{i});
  }
  Value index(Value i32Value) {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), i32Value);
  }
  Value tid() { return gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x); }
  Value bid() { return gpu::BlockIdOp::create(b, loc, gpu::Dimension::x); }
  /// The sum over the warp, in every lane (butterfly).
  Value warpSum(Value v) {
    for (int64_t off = 16; off >= 1; off /= 2) {
      auto sh = gpu::ShuffleOp::create(b, loc, v, i32(off), i32(32),
                                       gpu::ShuffleMode::XOR);
      v = fadd(v, sh.getShuffleResult());
    }
    return v;
  }
  /// Sets the insertion point inside `if (cond)` (no else).
  void beginIf(Value cond) {
    auto op = scf::IfOp::create(b, loc, cond, /*withElse=*/false);
    b.setInsertionPointToStart(op.thenBlock());
  }
};

MemRefType vec(OpBuilder &b, int64_t n) {
  return MemRefType::get({n}, b.getF32Type());
}

/// A kernel `name(args)` launched as `grid` blocks of `block` threads;
/// `body` builds it with the builder at the start of its entry block.
void addKernel(gpu::GPUModuleOp gm, Location loc, StringRef name,
               ArrayRef<Type> args, int64_t grid, int32_t block,
               llvm::function_ref<void(KB &, Block &)> body) {
  if (SymbolTable::lookupSymbolIn(gm, name))
    return;
  MLIRContext *ctx = gm.getContext();
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(gm.getBody());
  auto fn =
      gpu::GPUFuncOp::create(b, loc, name, b.getFunctionType(args, {}));
  fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  fn.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr({block, 1, 1}));
  fn->setAttr("nibble.grid", b.getDenseI64ArrayAttr({grid, 1, 1}));
  Block &entry = fn.getBody().front();
  b.setInsertionPointToStart(&entry);
  KB k{b, loc};
  body(k, entry);
  b.setInsertionPointToEnd(&entry);
  gpu::ReturnOp::create(b, loc);
}

/// One thread per element: `body(k, i)` for i < n, blocks of 256.
void elementwise(gpu::GPUModuleOp gm, Location loc, StringRef name,
                 ArrayRef<Type> args, int64_t n,
                 llvm::function_ref<void(KB &, Block &, Value)> body) {
  addKernel(gm, loc, name, args, (n + 255) / 256, 256,
            [&](KB &k, Block &entry) {
              Value i = k.add(k.mul(k.bid(), k.idx(256)), k.tid());
              k.beginIf(k.ult(i, k.idx(n)));
              body(k, entry, i);
            });
}

std::string shapeError(const GpuDecoderShape &s) {
  if (s.vocab < 1 || s.dim < 1 || s.hidden < 1 || s.heads < 1 ||
      s.kvHeads < 1 || s.headDim < 2 || s.context < 1 || s.layers < 1)
    return "every dimension must be positive (head_dim at least 2)";
  if (s.heads % s.kvHeads != 0)
    return "heads (" + std::to_string(s.heads) +
           ") must be a multiple of kv_heads (" + std::to_string(s.kvHeads) +
           ")";
  if (s.headDim % 2 != 0)
    return "head_dim " + std::to_string(s.headDim) +
           " must be even (RoPE rotates pairs)";
  if (!(s.normEps > 0))
    return "the RMSNorm epsilon must be positive";
  const int64_t cache = s.layers * s.context * s.kvHeads * s.headDim;
  if (s.vocab * s.dim >= (int64_t(1) << 31) || cache >= (int64_t(1) << 31))
    return "the embedding table and each KV cache must have fewer than "
           "2^31 elements (32-bit token and position arguments)";
  return "";
}

} // namespace

GpuDecoderKernelNames
mlir::nibble::gpuDecoderKernelNames(const GpuDecoderShape &s) {
  auto n = [](int64_t v) { return std::to_string(v); };
  GpuDecoderKernelNames k;
  k.embed = "nibble_embed_v" + n(s.vocab) + "_d" + n(s.dim);
  k.rmsnorm = "nibble_rmsnorm_d" + n(s.dim);
  k.ropeKV = "nibble_rope_kv_h" + n(s.heads) + "_kv" + n(s.kvHeads) + "_hd" +
             n(s.headDim) + "_s" + n(s.context) + "_l" + n(s.layers) +
             (s.interleavedRope ? "_interleaved" : "_half");
  k.attention = "nibble_attention_h" + n(s.heads) + "_kv" + n(s.kvHeads) +
                "_hd" + n(s.headDim) + "_s" + n(s.context) + "_l" +
                n(s.layers);
  k.swiglu = "nibble_swiglu_f" + n(s.hidden);
  k.add = "nibble_add_d" + n(s.dim);
  return k;
}

LogicalResult mlir::nibble::addGpuDecoderKernels(ModuleOp module,
                                                 StringRef chip,
                                                 const GpuDecoderShape &s) {
  Location loc = module.getLoc();
  if (!detail::smVersion(loc, chip))
    return failure();
  if (std::string why = shapeError(s); !why.empty())
    return emitError(loc, "GPU decoder kernels: ") << why, failure();
  gpu::GPUModuleOp gm = detail::getOrCreateGpuModule(module, chip);
  OpBuilder tb(module.getContext());
  Type i32 = tb.getI32Type();
  const GpuDecoderKernelNames names = gpuDecoderKernelNames(s);
  const int64_t D = s.dim, F = s.hidden, H = s.heads, KVH = s.kvHeads,
                hd = s.headDim, half = hd / 2, S = s.context;
  const int64_t cache = s.layers * S * KVH * hd;

  // x[i] = table[token * D + i].
  elementwise(gm, loc, names.embed, {vec(tb, s.vocab * D), vec(tb, D), i32},
              D, [&](KB &k, Block &e, Value i) {
                Value row = k.mul(k.index(e.getArgument(2)), k.idx(D));
                k.store(k.load(e.getArgument(0), k.add(row, i)),
                        e.getArgument(1), i);
              });

  // y = x / sqrt(mean(x^2) + eps) * w: one warp.
  addKernel(gm, loc, names.rmsnorm, {vec(tb, D), vec(tb, D), vec(tb, D)}, 1,
            32, [&](KB &k, Block &e) {
              Value x = e.getArgument(0), w = e.getArgument(1),
                    y = e.getArgument(2);
              Value lane = k.tid();
              auto sumLoop = scf::ForOp::create(k.b, loc, lane, k.idx(D),
                                                k.idx(32),
                                                ValueRange{k.f32(0)});
              {
                OpBuilder::InsertionGuard g(k.b);
                k.b.setInsertionPointToStart(sumLoop.getBody());
                Value v = k.load(x, sumLoop.getInductionVar());
                scf::YieldOp::create(
                    k.b, loc, k.fma(v, v, sumLoop.getRegionIterArgs()[0]));
              }
              Value ss = k.warpSum(sumLoop.getResult(0));
              Value scale = k.fdiv(
                  k.f32(1.0), k.sqrt(k.fadd(k.fdiv(ss, k.f32(double(D))),
                                            k.f32(s.normEps))));
              auto out = scf::ForOp::create(k.b, loc, lane, k.idx(D),
                                            k.idx(32));
              OpBuilder::InsertionGuard g(k.b);
              k.b.setInsertionPointToStart(out.getBody());
              Value i = out.getInductionVar();
              k.store(k.fmul(k.fmul(k.load(x, i), scale), k.load(w, i)), y,
                      i);
            });

  // RoPE at `pos` on q (in place) and k, which goes to the cache with v.
  // One thread per rotated pair; cos/sin tables [context][head_dim / 2].
  addKernel(
      gm, loc, names.ropeKV,
      {vec(tb, H * hd), vec(tb, KVH * hd), vec(tb, KVH * hd),
       vec(tb, S * half), vec(tb, S * half), vec(tb, cache), vec(tb, cache),
       i32, i32},
      ((H + KVH) * half + 127) / 128, 128, [&](KB &k, Block &e) {
        Value q = e.getArgument(0), kv = e.getArgument(1),
              v = e.getArgument(2), cosT = e.getArgument(3),
              sinT = e.getArgument(4), kc = e.getArgument(5),
              vc = e.getArgument(6);
        Value pos = k.index(e.getArgument(7)),
              layer = k.index(e.getArgument(8));
        Value i = k.add(k.mul(k.bid(), k.idx(128)), k.tid());
        k.beginIf(k.ult(i, k.idx((H + KVH) * half)));
        Value isQ = k.ult(i, k.idx(H * half));
        // Pair j of head `head` of q or k; which of the two is `rel`.
        Value rel = arith::SelectOp::create(k.b, loc, isQ, i,
                                            k.sub(i, k.idx(H * half)));
        Value head = k.div(rel, k.idx(half)), j = k.rem(rel, k.idx(half));
        Value t = k.add(k.mul(pos, k.idx(half)), j);
        Value c = k.load(cosT, t), sn = k.load(sinT, t);
        Value a = s.interleavedRope ? k.mul(j, k.idx(2)) : j;
        Value bIdx = s.interleavedRope ? k.add(a, k.idx(1))
                                       : k.add(j, k.idx(half));
        Value base = k.mul(head, k.idx(hd));
        Value ia = k.add(base, a), ib = k.add(base, bIdx);
        auto ifQ = scf::IfOp::create(k.b, loc, isQ, /*withElse=*/true);
        auto rotate = [&](Value src, Value dst, Value da, Value db) {
          Value x0 = k.load(src, ia), x1 = k.load(src, ib);
          k.store(k.fsub(k.fmul(x0, c), k.fmul(x1, sn)), dst, da);
          k.store(k.fadd(k.fmul(x1, c), k.fmul(x0, sn)), dst, db);
        };
        k.b.setInsertionPointToStart(ifQ.thenBlock());
        rotate(q, q, ia, ib);
        k.b.setInsertionPointToStart(ifQ.elseBlock());
        // cache[layer][pos][head][:]
        Value row = k.mul(
            k.add(k.mul(k.add(k.mul(layer, k.idx(S)), pos), k.idx(KVH)),
                  head),
            k.idx(hd));
        Value ca = k.add(row, a), cb = k.add(row, bIdx);
        rotate(kv, kc, ca, cb);
        k.store(k.load(v, ia), vc, ca);
        k.store(k.load(v, ib), vc, cb);
      });

  // One warp per query head over positions 0..pos of its kv head, with a
  // running max and sum (online softmax); lane l holds dims l, l+32, ...
  addKernel(
      gm, loc, names.attention,
      {vec(tb, H * hd), vec(tb, cache), vec(tb, cache), vec(tb, H * hd), i32,
       i32},
      H, 32, [&](KB &k, Block &e) {
        Value q = e.getArgument(0), kc = e.getArgument(1),
              vc = e.getArgument(2), out = e.getArgument(3);
        Value pos = k.index(e.getArgument(4)),
              layer = k.index(e.getArgument(5));
        Value h = k.bid(), lane = k.tid();
        Value g = k.div(h, k.idx(H / KVH));
        const int64_t per = (hd + 31) / 32;
        const bool ragged = hd % 32 != 0;
        Value invSqrt = k.f32(1.0 / std::sqrt(double(hd)));
        SmallVector<Value> dims, valid, qs;
        for (int64_t j = 0; j < per; ++j) {
          Value d = k.add(lane, k.idx(32 * j));
          Value ok = ragged ? k.ult(d, k.idx(hd)) : Value();
          if (ragged) // a lane past head_dim reads the last dim, weight 0
            d = arith::MinUIOp::create(k.b, loc, d, k.idx(hd - 1));
          Value qv = k.fmul(k.load(q, k.add(k.mul(h, k.idx(hd)), d)), invSqrt);
          if (ragged)
            qv = arith::SelectOp::create(k.b, loc, ok, qv, k.f32(0));
          dims.push_back(d);
          valid.push_back(ok);
          qs.push_back(qv);
        }
        SmallVector<Value> init{k.f32(-INFINITY), k.f32(0)};
        for (int64_t j = 0; j < per; ++j)
          init.push_back(k.f32(0));
        auto loop = scf::ForOp::create(k.b, loc, k.idx(0),
                                       k.add(pos, k.idx(1)), k.idx(1), init);
        {
          OpBuilder::InsertionGuard guard(k.b);
          k.b.setInsertionPointToStart(loop.getBody());
          Value t = loop.getInductionVar();
          auto carried = loop.getRegionIterArgs();
          Value row = k.mul(
              k.add(k.mul(k.add(k.mul(layer, k.idx(S)), t), k.idx(KVH)), g),
              k.idx(hd));
          Value partial = k.f32(0);
          for (int64_t j = 0; j < per; ++j)
            partial = k.fma(qs[size_t(j)], k.load(kc, k.add(row, dims[j])),
                            partial);
          Value score = k.warpSum(partial);
          Value m = carried[0], l = carried[1];
          // select, not arith.maxnumf (a libdevice call after the NVVM
          // lowering).
          Value mNew = arith::SelectOp::create(
              k.b, loc,
              arith::CmpFOp::create(k.b, loc, arith::CmpFPredicate::OGT,
                                    score, m),
              score, m);
          Value corr = k.exp(k.fsub(m, mNew)); // 0 on the first position
          Value p = k.exp(k.fsub(score, mNew));
          SmallVector<Value> next{mNew, k.fma(l, corr, p)};
          for (int64_t j = 0; j < per; ++j)
            next.push_back(k.fma(p, k.load(vc, k.add(row, dims[j])),
                                 k.fmul(carried[size_t(2 + j)], corr)));
          scf::YieldOp::create(k.b, loc, next);
        }
        Value l = loop.getResult(1);
        for (int64_t j = 0; j < per; ++j) {
          OpBuilder::InsertionGuard guard(k.b);
          if (ragged)
            k.beginIf(valid[size_t(j)]);
          k.store(k.fdiv(loop.getResult(unsigned(2 + j)), l), out,
                  k.add(k.mul(h, k.idx(hd)), dims[size_t(j)]));
        }
      });

  // h = g / (1 + e^-g) * u.
  elementwise(gm, loc, names.swiglu, {vec(tb, F), vec(tb, F), vec(tb, F)}, F,
              [&](KB &k, Block &e, Value i) {
                Value gv = k.load(e.getArgument(0), i);
                Value sig = k.fdiv(
                    gv, k.fadd(k.f32(1.0), k.exp(k.fsub(k.f32(0), gv))));
                k.store(k.fmul(sig, k.load(e.getArgument(1), i)),
                        e.getArgument(2), i);
              });

  // x += y (the residual stream).
  elementwise(gm, loc, names.add, {vec(tb, D), vec(tb, D)}, D,
              [&](KB &k, Block &e, Value i) {
                Value x = e.getArgument(0);
                k.store(k.fadd(k.load(x, i), k.load(e.getArgument(1), i)), x,
                        i);
              });
  return success();
}

namespace {

struct GenerateGpuDecoderKernelsPass
    : public mlir::nibble::impl::NibbleGenerateGpuDecoderKernelsBase<
          GenerateGpuDecoderKernelsPass> {
  using NibbleGenerateGpuDecoderKernelsBase::
      NibbleGenerateGpuDecoderKernelsBase;

  void runOnOperation() override {
    GpuDecoderShape s;
    s.vocab = vocab;
    s.dim = dim;
    s.hidden = hidden;
    s.heads = heads;
    s.kvHeads = kvHeads;
    s.headDim = headDim;
    s.context = context;
    s.layers = layers;
    s.normEps = eps;
    if (rope != "interleaved" && rope != "rotate-half") {
      emitError(getOperation().getLoc(), "rope '")
          << rope << "': expected interleaved or rotate-half";
      return signalPassFailure();
    }
    s.interleavedRope = rope == "interleaved";
    if (failed(addGpuDecoderKernels(getOperation(), chip, s)))
      signalPassFailure();
  }
};

} // namespace
