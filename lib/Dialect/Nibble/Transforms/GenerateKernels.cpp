//===- GenerateKernels.cpp - Vector-dialect CPU kernels for nibble.matmul -===//
//
// Rewrites eligible nibble.matmul ops into calls of generated kernel
// functions written in the vector dialect (then lowered by LLVM's backend
// for the chosen target): the dequantize is never materialized; codes are
// widened in registers and multiplied into f32 accumulators.
//
// Eligible (this first path, weight-only, fp32 accumulate): constant
// weights in a symmetric signed int4 or int8 format, scales f32 constants,
// one scale per group of G input columns (group<1, G>) or per output row
// (per_channel<0>), G a multiple of 32, no activation quantization, an f32
// input [M, K] with M <= 32. Everything else stays for the reference
// lowering.
//
// Layout: int4 weights are repacked at compile time so that the 16 bytes
// of each 32-code block hold codes j (low nibble) and j + 16 (high nibble):
// one 16-byte load, a shift pair and a shift give 16 + 16 codes that line
// up with two contiguous 16-float slices of x. int8 weights keep one code
// per byte. The layout is recorded on the byte constant as `nibble.layout`.
//
// Kernel shape: for each output row n in [n0, n1) (threads take disjoint
// row ranges), for each group: two independent vector<16xf32> accumulators
// per activation row take code * x by fma; at the group end the group sum
// is scaled and added into the row's accumulator; the row ends in a tree
// reduction (reassociation allowed on that reduction only).
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Target/TargetSpec.h"

#include "mlir/IR/DialectResourceBlobManager.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEGENERATEKERNELS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;

namespace {

constexpr int64_t kLanes = 16;

struct KernelKey {
  int64_t m, n, k, group, bits;
  std::string name() const {
    return "nibble_gemv_w" + std::to_string(bits) + "g" +
           std::to_string(group) + "_m" + std::to_string(m) + "_n" +
           std::to_string(n) + "_k" + std::to_string(k);
  }
};

/// Whether the packed bytes of a nibble.constant are in the IR (not an
/// unbound resource or an external file).
bool hasPayload(ConstantOp c) {
  if (auto r = dyn_cast<DenseResourceElementsAttr>(c.getValue()))
    return r.getRawHandle().getBlob() != nullptr;
  return isa<DenseElementsAttr>(c.getValue());
}

/// Packed bytes of a nibble.constant (splats expanded); the payload must be
/// present (hasPayload).
std::vector<char> constantBytes(ConstantOp c) {
  if (auto r = dyn_cast<DenseResourceElementsAttr>(c.getValue()))
    if (AsmResourceBlob *blob = r.getRawHandle().getBlob())
      return std::vector<char>(blob->getData().begin(), blob->getData().end());
  if (auto d = dyn_cast<DenseElementsAttr>(c.getValue())) {
    ArrayRef<char> raw = d.getRawData();
    if (d.isSplat())
      return std::vector<char>(size_t(d.getNumElements()), raw.front());
    return std::vector<char>(raw.begin(), raw.end());
  }
  return {};
}

/// Repacks canonical int4 codes [n, k] into the interleaved-32 layout.
std::vector<char> interleave32(ArrayRef<char> canonical, int64_t n,
                               int64_t k) {
  std::vector<uint8_t> codes(size_t(n * k));
  ::nibble::formats::unpackCodes(
      reinterpret_cast<const uint8_t *>(canonical.data()), codes.size(), 4,
      codes.data());
  std::vector<char> out(size_t(n * k / 2));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < k / 32; ++b)
      for (int64_t j = 0; j < 16; ++j) {
        uint8_t lo = codes[size_t(r * k + b * 32 + j)] & 0xF;
        uint8_t hi = codes[size_t(r * k + b * 32 + j + 16)] & 0xF;
        out[size_t(r * k / 2 + b * 16 + j)] = char(lo | (hi << 4));
      }
  return out;
}

struct GenerateKernelsPass
    : public mlir::nibble::impl::NibbleGenerateKernelsBase<GenerateKernelsPass> {
  using NibbleGenerateKernelsBase::NibbleGenerateKernelsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::string error;
    auto spec = ::nibble::target::TargetSpec::parse(target, error);
    if (!spec) {
      module.emitError(error);
      return signalPassFailure();
    }
    // The weight-only path needs vector FMA; AVX2+FMA, AVX-512 and NEON
    // all have it. Anything else keeps the reference lowering.
    bool vectorFMA = spec->isAArch64()
                         ? spec->has("neon")
                         : spec->has("fma") && spec->has("avx2");
    if (!vectorFMA) {
      module.emitRemark("target ")
          << spec->describe()
          << " has no vector FMA: nibble.matmul keeps the reference lowering";
      return;
    }
    module->setAttr("nibble.target", StringAttr::get(module.getContext(),
                                                     spec->describe()));
    SmallVector<MatmulOp> ops;
    module.walk([&](MatmulOp op) { ops.push_back(op); });
    llvm::StringMap<func::FuncOp> kernels;
    for (MatmulOp op : ops) {
      std::optional<KernelKey> key = eligible(op);
      if (!key)
        continue;
      func::FuncOp &fn = kernels[key->name()];
      if (!fn)
        fn = buildKernel(module, *key);
      rewrite(op, *key, fn);
    }
  }

  std::optional<KernelKey> eligible(MatmulOp op) {
    QTensorType wType = op.getWeight().getType();
    SchemeAttr scheme = wType.getScheme();
    auto fmt = scheme.getFormatAttr().getFormat();
    auto xType = op.getInput().getType();
    if (op.getActFormatAttr() || scheme.hasZeroPoints() ||
        scheme.getScaleSchemeAttr() || scheme.getLayout() ||
        fmt.kind() != ::nibble::formats::Kind::Int ||
        !fmt.isSigned() || (fmt.bits() != 4 && fmt.bits() != 8) ||
        !xType.getElementType().isF32() ||
        !op.getResult().getType().getElementType().isF32() ||
        !op.getWeight().getDefiningOp<ConstantOp>() ||
        !op.getScales().getDefiningOp<arith::ConstantOp>())
      return std::nullopt;
    const int64_t m = xType.getDimSize(0), n = wType.getShape()[0],
                  k = wType.getShape()[1];
    int64_t group;
    if (scheme.getGranularity() == GranularityKind::Group &&
        scheme.getAxis() == 1)
      group = scheme.getBlockShape()[0];
    else if (scheme.getGranularity() == GranularityKind::PerChannel &&
             scheme.getAxis() == 0)
      group = k;
    else
      return std::nullopt;
    auto sType = dyn_cast<RankedTensorType>(op.getScales().getType());
    if (!sType || !sType.getElementType().isF32() || group % 32 != 0 ||
        m > 32 || m < 1 ||
        !hasPayload(op.getWeight().getDefiningOp<ConstantOp>()))
      return std::nullopt;
    return KernelKey{m, n, k, group, fmt.bits()};
  }

  /// func @name(%x: [M,K]f32, %w: [B]i8, %s: [N,K/G]f32, %y: [M,N]f32,
  ///            %n0: index, %n1: index) -> [M,N]f32
  func::FuncOp buildKernel(ModuleOp module, const KernelKey &key) {
    MLIRContext *ctx = module.getContext();
    OpBuilder b(ctx);
    b.setInsertionPointToEnd(module.getBody());
    Location loc = module.getLoc();
    Type f32 = b.getF32Type(), i8 = b.getI8Type();
    const int64_t groups = key.k / key.group;
    const int64_t bytes = key.n * key.k * key.bits / 8;
    auto xT = RankedTensorType::get({key.m, key.k}, f32);
    auto wT = RankedTensorType::get({bytes}, i8);
    auto sT = RankedTensorType::get({key.n, groups}, f32);
    auto yT = RankedTensorType::get({key.m, key.n}, f32);
    auto fn = func::FuncOp::create(
        b, loc, key.name(),
        b.getFunctionType({xT, wT, sT, yT, b.getIndexType(), b.getIndexType()},
                          {yT}));
    fn.setArgAttr(3, "bufferization.writable", b.getBoolAttr(true));
    fn->setAttr("llvm.emit_c_interface", b.getUnitAttr());
    fn->setAttr("nibble.kernel", b.getStringAttr("weight-only"));
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    Value x = entry->getArgument(0), w = entry->getArgument(1),
          s = entry->getArgument(2), y0 = entry->getArgument(3),
          n0 = entry->getArgument(4), n1 = entry->getArgument(5);

    auto cIdx = [&](int64_t v) {
      return arith::ConstantIndexOp::create(b, loc, v).getResult();
    };
    auto vf32 = VectorType::get({kLanes}, f32);
    auto vi8 = VectorType::get({kLanes}, i8);
    Value zeroV = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vf32, b.getF32FloatAttr(0.0f)));
    Value padF = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
    Value padI = arith::ConstantOp::create(b, loc, b.getI8IntegerAttr(0));
    auto vi32 = VectorType::get({kLanes}, b.getI32Type());
    Value c4 = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vi32, b.getI32IntegerAttr(4)));
    Value c28 = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(vi32, b.getI32IntegerAttr(28)));
    const int64_t codesPerStep = key.bits == 4 ? 32 : 16;
    const int64_t stepsPerGroup = key.group / codesPerStep;
    const int64_t rowBytes = key.k * key.bits / 8;
    const int64_t M = key.m;

    auto read = [&](OpBuilder &ob, Location l, Value t, ValueRange idx,
                    VectorType vt, Value pad) {
      return vector::TransferReadOp::create(
                 ob, l, vt, t, idx, pad, ArrayRef<bool>{true})
          .getResult();
    };

    auto rows = scf::ForOp::create(
        b, loc, n0, n1, cIdx(1), ValueRange{y0},
        [&](OpBuilder &rb, Location l, Value n, ValueRange rowIter) {
          Value rowBase = arith::MulIOp::create(
              rb, l, n, arith::ConstantIndexOp::create(rb, l, rowBytes));
          SmallVector<Value> accInit(size_t(M), zeroV);
          auto grp = scf::ForOp::create(
              rb, l, arith::ConstantIndexOp::create(rb, l, 0),
              arith::ConstantIndexOp::create(rb, l, groups),
              arith::ConstantIndexOp::create(rb, l, 1), accInit,
              [&](OpBuilder &gb, Location gl, Value g, ValueRange acc) {
                // Two accumulators per activation row.
                SmallVector<Value> gInit(size_t(2 * M), zeroV);
                auto steps = scf::ForOp::create(
                    gb, gl, arith::ConstantIndexOp::create(gb, gl, 0),
                    arith::ConstantIndexOp::create(gb, gl, stepsPerGroup),
                    arith::ConstantIndexOp::create(gb, gl, 1), gInit,
                    [&](OpBuilder &sb, Location sl, Value st, ValueRange ga) {
                      // Column of the step's first code.
                      Value col = arith::AddIOp::create(
                          sb, sl,
                          arith::MulIOp::create(
                              sb, sl, g,
                              arith::ConstantIndexOp::create(sb, sl,
                                                             key.group)),
                          arith::MulIOp::create(
                              sb, sl, st,
                              arith::ConstantIndexOp::create(sb, sl,
                                                             codesPerStep)));
                      Value byteOff = arith::AddIOp::create(
                          sb, sl, rowBase,
                          key.bits == 4
                              ? arith::DivUIOp::create(
                                    sb, sl, col,
                                    arith::ConstantIndexOp::create(sb, sl, 2))
                                    .getResult()
                              : col);
                      Value raw = read(sb, sl, w, {byteOff}, vi8, padI);
                      // Widen bytes to i32 first: x86 has no byte shifts,
                      // and i32 shifts are one instruction each.
                      Value wide = arith::ExtSIOp::create(sb, sl, vi32, raw);
                      SmallVector<Value> codeVecs;
                      if (key.bits == 4) {
                        // low nibble: (v << 28) >> 28; high: v >> 4 (v is
                        // the sign-extended byte, so its high nibble's sign
                        // is already in place).
                        Value lo = arith::ShRSIOp::create(
                            sb, sl,
                            arith::ShLIOp::create(sb, sl, wide, c28), c28);
                        Value hi = arith::ShRSIOp::create(sb, sl, wide, c4);
                        codeVecs = {lo, hi};
                      } else {
                        codeVecs = {wide};
                      }
                      SmallVector<Value> next(ga.begin(), ga.end());
                      for (size_t h = 0; h < codeVecs.size(); ++h) {
                        Value cf =
                            arith::SIToFPOp::create(sb, sl, vf32, codeVecs[h]);
                        Value xc = arith::AddIOp::create(
                            sb, sl, col,
                            arith::ConstantIndexOp::create(sb, sl,
                                                           int64_t(h) * kLanes));
                        for (int64_t mi = 0; mi < M; ++mi) {
                          Value xv = read(
                              sb, sl, x,
                              {arith::ConstantIndexOp::create(sb, sl, mi), xc},
                              vf32, padF);
                          size_t a = size_t(2 * mi) + h % 2;
                          next[a] = vector::FMAOp::create(sb, sl, cf, xv,
                                                          next[a]);
                        }
                      }
                      scf::YieldOp::create(sb, sl, next);
                    });
                Value scale =
                    tensor::ExtractOp::create(gb, gl, s, ValueRange{n, g});
                Value sv = vector::BroadcastOp::create(gb, gl, vf32, scale);
                SmallVector<Value> out;
                for (int64_t mi = 0; mi < M; ++mi) {
                  Value sum = arith::AddFOp::create(
                      gb, gl, steps.getResult(unsigned(2 * mi)),
                      steps.getResult(unsigned(2 * mi + 1)));
                  out.push_back(
                      vector::FMAOp::create(gb, gl, sv, sum, acc[size_t(mi)]));
                }
                scf::YieldOp::create(gb, gl, out);
              });
          Value yt = rowIter[0];
          for (int64_t mi = 0; mi < M; ++mi) {
            Value r = vector::ReductionOp::create(
                rb, l, vector::CombiningKind::ADD, grp.getResult(unsigned(mi)),
                arith::FastMathFlags::reassoc);
            yt = tensor::InsertOp::create(
                rb, l, r, yt,
                ValueRange{arith::ConstantIndexOp::create(rb, l, mi), n});
          }
          scf::YieldOp::create(rb, l, yt);
        });
    func::ReturnOp::create(b, loc, rows.getResult(0));
    return fn;
  }

  void rewrite(MatmulOp op, const KernelKey &key, func::FuncOp fn) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto cst = op.getWeight().getDefiningOp<ConstantOp>();
    std::vector<char> canonical = constantBytes(cst);
    std::vector<char> bytes =
        key.bits == 4 ? interleave32(canonical, key.n, key.k) : canonical;
    std::string name = "weights";
    if (auto lin = op->getAttrOfType<StringAttr>("nibble.linear"))
      name = lin.getValue().str();
    auto wT = RankedTensorType::get({int64_t(bytes.size())}, b.getI8Type());
    auto wc = arith::ConstantOp::create(
        b, loc,
        DenseResourceElementsAttr::get(
            wT, name + ".packed",
            HeapAsmResourceBlob::allocateAndCopyWithAlign(bytes, 64)));
    wc->setAttr("nibble.layout",
                b.getStringAttr(key.bits == 4 ? "int4-interleave32"
                                              : "int8-dense"));
    Value yInit = tensor::EmptyOp::create(b, loc,
                                          ArrayRef<int64_t>{key.m, key.n},
                                          b.getF32Type());
    auto call = func::CallOp::create(
        b, loc, fn,
        ValueRange{op.getInput(), wc, op.getScales(), yInit,
                   arith::ConstantIndexOp::create(b, loc, 0),
                   arith::ConstantIndexOp::create(b, loc, key.n)});
    op.getResult().replaceAllUsesWith(call.getResult(0));
    op.erase();
    if (cst->use_empty())
      cst.erase();
  }
};

} // namespace
