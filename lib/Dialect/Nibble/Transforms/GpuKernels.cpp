//===- GpuKernels.cpp - NVIDIA GEMV kernels in the gpu dialect -------------===//
//
// nibble-generate-gpu-kernels: weight-only int4 / int8 GEMV (M <= 32
// activation rows) as gpu.func kernels, one warp per output row, 128-bit
// code loads, magic-number dequantization, f32 FMAs and a shuffle
// reduction. nibble-gpu-to-ptx: the upstream NVVM lowering and LLVM's NVPTX
// backend, PTX written to a file. Passes.td documents the ABI and layout.
//
//===----------------------------------------------------------------------===//

#include "GpuCommon.h"
#include "nibble/Dialect/Nibble/Transforms/GpuDecoder.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Support/File.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringSwitch.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEGENERATEGPUKERNELS
#define GEN_PASS_DEF_NIBBLEGPUTOPTX
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;

namespace {

/// How a kernel turns stored codes into f32.
enum class Decode {
  Int,  ///< offset-binary int4 / int8, magic-number conversion
  E4M3, ///< fp8 e4m3fn bytes
  E5M2, ///< fp8 e5m2 bytes
  F16,  ///< IEEE halves (float weights of a CUDA bundle)
};

/// What one kernel is specialised for.
struct GemvShape {
  int64_t m, n, k, group;
  unsigned bits;
  Decode decode;
  Type act; ///< f16, bf16 or f32
  bool hwFp8; ///< fp8 through cvt.rn.f16x2.{e4m3,e5m2}x2 (sm_89+)
  std::string name() const {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << "nibble_w";
    if (decode == Decode::Int)
      os << bits;
    else if (decode == Decode::F16)
      os << "f16";
    else
      os << (decode == Decode::E4M3 ? "e4m3" : "e5m2");
    os << "a" << (act.isBF16() ? "bf16" : std::to_string(
                                               act.getIntOrFloatBitWidth()))
       << "_m" << m << "_n" << n << "_k" << k << "_g" << group;
    return s;
  }
};

} // namespace

std::optional<int> mlir::nibble::detail::smVersion(Location loc,
                                                   StringRef chip) {
  int v = 0;
  StringRef rest = chip;
  if (!rest.consume_front("sm_") || rest.consumeInteger(10, v) ||
      !(rest.empty() || rest == "a" || rest == "f")) {
    emitError(loc, "chip '")
        << chip << "': expected sm_XY (e.g. sm_80, sm_90, sm_90a)";
    return std::nullopt;
  }
  return v;
}

gpu::GPUModuleOp mlir::nibble::detail::getOrCreateGpuModule(ModuleOp module,
                                                           StringRef chip) {
  if (auto gm = module.lookupSymbol<gpu::GPUModuleOp>("nibble_gpu"))
    return gm;
  MLIRContext *ctx = module.getContext();
  OpBuilder b(ctx);
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  UnitAttr::get(ctx));
  b.setInsertionPointToEnd(module.getBody());
  auto gm = gpu::GPUModuleOp::create(b, module.getLoc(), "nibble_gpu");
  gm->setAttr("nibble.chip", b.getStringAttr(chip));
  return gm;
}

namespace {
using mlir::nibble::detail::smVersion;

/// The kernel shape for weights in `format` (a gpuGemvCodeBits name).
GemvShape shapeFor(StringRef format, int64_t m, int64_t n, int64_t k,
                   int64_t group, Type act, int sm) {
  GemvShape s{m, n, k, group, gpuGemvCodeBits(format), Decode::Int, act,
              false};
  if (format == "e4m3fn")
    s.decode = Decode::E4M3;
  else if (format == "e5m2")
    s.decode = Decode::E5M2;
  else if (format == "f16")
    s.decode = Decode::F16;
  s.hwFp8 = (s.decode == Decode::E4M3 || s.decode == Decode::E5M2) &&
            sm >= 89;
  return s;
}

/// The shape of a matmul the kernels serve, or a reason it is not served.
FailureOr<GemvShape> gemvShape(MatmulOp op, int sm, std::string &why) {
  QTensorType wType = op.getWeight().getType();
  SchemeAttr scheme = wType.getScheme();
  auto xType = cast<RankedTensorType>(op.getInput().getType());
  const std::string format =
      gpuGemvFormat(scheme.getFormatAttr().getFormat());
  if (format.empty()) {
    why = "weights are not int4 / int8 signed or fp8 e4m3fn / e5m2";
    return failure();
  }
  GemvShape s = shapeFor(format, xType.getDimSize(0), wType.getShape()[0],
                         wType.getShape()[1], 0, xType.getElementType(), sm);
  if (scheme.hasZeroPoints() || scheme.getScaleSchemeAttr() ||
      !scheme.getScaleType().isF32() || scheme.getLayout())
    why = "scales are not plain f32 without zero points";
  else if (!(s.act.isF16() || s.act.isBF16() || s.act.isF32()) ||
           !op.getResult().getType().getElementType().isF32())
    why = "activations are not f16/bf16/f32 with an f32 result";
  else if (op.getActFormat())
    why = "activation quantization has no GPU kernel yet";
  else if (s.m < 1 || s.m > 32 || ShapedType::isDynamic(s.m))
    why = "more than 32 (or a dynamic number of) activation rows";
  if (!why.empty())
    return failure();
  std::optional<int64_t> group = scheme.getColumnsPerScale(s.k);
  if (!group) {
    why = "scales are not per output channel or groups along the input";
    return failure();
  }
  s.group = *group;
  const int64_t chunk = 128 / s.bits; // codes per 128-bit load
  if (s.group % chunk != 0 || s.k % chunk != 0) {
    why = "group and K must be multiples of " + std::to_string(chunk) +
          " (one 128-bit load of codes)";
    return failure();
  }
  return s;
}

/// The f32 values of the codes in one 32-bit word, in code order, each
/// equal to the stored value divided by `scaleFactor(s)`.
SmallVector<Value> decodeWord(OpBuilder &b, Location loc, const GemvShape &s,
                              Value e) {
  Type f32 = b.getF32Type(), i32 = b.getI32Type(), f16 = b.getF16Type();
  auto cI32 = [&](uint32_t v) {
    return arith::ConstantIntOp::create(b, loc, i32, int64_t(int32_t(v)))
        .getResult();
  };
  auto halves = [&](Value pair) { // vector<2xf16> -> two f32
    return std::array<Value, 2>{
        Value(arith::ExtFOp::create(
            b, loc, f32, Value(vector::ExtractOp::create(b, loc, pair, 0)))),
        Value(arith::ExtFOp::create(
            b, loc, f32, Value(vector::ExtractOp::create(b, loc, pair, 1))))};
  };
  auto f16x2 = VectorType::get({2}, f16);
  SmallVector<Value> vals;
  if (s.decode == Decode::Int) {
    const int64_t codesPerWord = 32 / s.bits;
    const uint32_t mask = (1u << s.bits) - 1;
    // bitcast(0x4B000000 | u) = 2^23 + u; minus 2^23 + 2^(bits-1) undoes
    // the offset binary of the stored code.
    Value magic = cI32(0x4B000000);
    Value bias = arith::ConstantFloatOp::create(
        b, loc, cast<FloatType>(f32),
        APFloat(float(8388608.0 + double(1u << (s.bits - 1)))));
    for (int64_t j = 0; j < codesPerWord; ++j) {
      Value code = j == 0 ? e
                          : arith::ShRUIOp::create(b, loc, e,
                                                   cI32(uint32_t(j * s.bits)));
      if (j != codesPerWord - 1)
        code = arith::AndIOp::create(b, loc, code, cI32(mask));
      Value f = arith::BitcastOp::create(
          b, loc, f32, arith::OrIOp::create(b, loc, code, magic));
      vals.push_back(arith::SubFOp::create(b, loc, f, bias));
    }
    return vals;
  }
  if (s.decode == Decode::F16) {
    auto [lo, hi] = halves(LLVM::BitcastOp::create(b, loc, f16x2, e));
    return SmallVector<Value>{lo, hi};
  }
  vals.resize(4);
  if (s.hwFp8) {
    // cvt.rn.f16x2.{e4m3,e5m2}x2 converts bytes (0, 1) and (2, 3); the low
    // byte becomes the low half.
    Type src = s.decode == Decode::E4M3 ? Type(b.getType<Float8E4M3FNType>())
                                        : Type(b.getType<Float8E5M2Type>());
    for (int pair = 0; pair < 2; ++pair) {
      Value w = pair == 0 ? e : arith::ShRUIOp::create(b, loc, e, cI32(16));
      // llvm.bitcast: arith.bitcast keeps shapes, this packs a scalar.
      Value bytes = LLVM::BitcastOp::create(
          b, loc, VectorType::get({2}, b.getI8Type()),
          arith::TruncIOp::create(b, loc, b.getI16Type(), w));
      Value h = NVVM::ConvertF8x2ToF16x2Op::create(b, loc, f16x2, bytes,
                                                   /*relu=*/false, src);
      auto [lo, hi] = halves(h);
      vals[size_t(2 * pair)] = lo;
      vals[size_t(2 * pair + 1)] = hi;
    }
    return vals;
  }
  // Software decode (sm_80): each byte becomes an f16 bit pattern, two at a
  // time. e5m2 is the top byte of an f16. e4m3fn's sign goes to bit 15 and
  // its exponent and mantissa to bits 7..13, which reads as the value times
  // 2^-8 (f16's bias 15 against e4m3's 7), subnormals included; the kernel
  // multiplies the scale by 2^8 instead. (NaN codes, which quantization
  // never produces, read as 480.)
  Value even, odd; // bytes (0, 2) and (1, 3)
  if (s.decode == Decode::E5M2) {
    even = arith::AndIOp::create(
        b, loc, arith::ShLIOp::create(b, loc, e, cI32(8)), cI32(0xFF00FF00));
    odd = arith::AndIOp::create(b, loc, e, cI32(0xFF00FF00));
  } else {
    auto bits = [&](Value signSrc, Value magSrc) {
      return arith::OrIOp::create(
          b, loc, arith::AndIOp::create(b, loc, signSrc, cI32(0x80008000)),
          arith::AndIOp::create(b, loc, magSrc, cI32(0x3F803F80)));
    };
    even = bits(arith::ShLIOp::create(b, loc, e, cI32(8)),
                arith::ShLIOp::create(b, loc, e, cI32(7)));
    odd = bits(e, arith::ShRUIOp::create(b, loc, e, cI32(1)));
  }
  auto [c0, c2] = halves(LLVM::BitcastOp::create(b, loc, f16x2, even));
  auto [c1, c3] = halves(LLVM::BitcastOp::create(b, loc, f16x2, odd));
  return SmallVector<Value>{c0, c1, c2, c3};
}

/// What the decoded values are multiplied by (besides the group scale).
double scaleFactor(const GemvShape &s) {
  return s.decode == Decode::E4M3 && !s.hwFp8 ? 256.0 : 1.0;
}

/// Emits the kernel body. Index arithmetic in `index`; the NVVM lowering
/// gives it 64 bits.
void buildKernel(OpBuilder &b, Location loc, gpu::GPUFuncOp fn,
                 const GemvShape &s, int64_t rowsPerBlock) {
  Block &entry = fn.getBody().front();
  b.setInsertionPointToStart(&entry);
  Value x = entry.getArgument(0), w = entry.getArgument(1),
        scales = entry.getArgument(2), y = entry.getArgument(3);
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto cIdx = [&](int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v).getResult();
  };
  auto cI32 = [&](int64_t v) {
    return arith::ConstantIntOp::create(b, loc, i32, v).getResult();
  };
  auto cF32 = [&](double v) {
    return arith::ConstantFloatOp::create(b, loc, cast<FloatType>(f32),
                                          APFloat(float(v)))
        .getResult();
  };
  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  Value bid = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value c32 = cIdx(32);
  Value lane = arith::RemUIOp::create(b, loc, tid, c32);
  Value warp = arith::DivUIOp::create(b, loc, tid, c32);
  Value row = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, bid, cIdx(rowsPerBlock)), warp);
  Value inRange = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                        row, cIdx(s.n));
  auto ifRow = scf::IfOp::create(b, loc, inRange, /*withElse=*/false);
  b.setInsertionPointToStart(ifRow.thenBlock());

  const int64_t chunkCodes = 128 / s.bits;
  const int64_t chunks = s.k / chunkCodes;
  const int64_t actBits = s.act.getIntOrFloatBitWidth();
  // Activations of the chunk's codes, in 128-bit loads.
  const int64_t actPerLoad = std::min<int64_t>(chunkCodes, 128 / actBits);
  auto actVec = VectorType::get({actPerLoad}, s.act);
  auto wordVec = VectorType::get({4}, i32);
  Value zero = cF32(0.0);

  SmallVector<Value> init(size_t(s.m), zero);
  auto loop = scf::ForOp::create(b, loc, lane, cIdx(chunks), c32, init);
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(loop.getBody());
    Value c = loop.getInductionVar();
    Value word0 = arith::MulIOp::create(b, loc, c, cIdx(4));
    auto wv = vector::LoadOp::create(b, loc, wordVec, w,
                                     ValueRange{row, word0});
    wv.setAlignment(16);
    Value firstCode = arith::MulIOp::create(b, loc, c, cIdx(chunkCodes));
    Value groupIdx =
        arith::DivUIOp::create(b, loc, firstCode, cIdx(s.group));
    Value scale = memref::LoadOp::create(b, loc, scales,
                                         ValueRange{row, groupIdx});
    if (double f = scaleFactor(s); f != 1.0)
      scale = arith::MulFOp::create(b, loc, scale, cF32(f));
    // Dequantize the chunk once (without the scale) ...
    SmallVector<Value> vals;
    for (int64_t word = 0; word < 4; ++word)
      llvm::append_range(
          vals, decodeWord(b, loc, s, vector::ExtractOp::create(b, loc, wv,
                                                                word)));
    // ... then one dot product per activation row, scaled once.
    SmallVector<Value> next;
    for (int64_t m = 0; m < s.m; ++m) {
      Value partial = zero;
      Value mIdx = cIdx(m);
      for (int64_t off = 0; off < chunkCodes; off += actPerLoad) {
        Value col = arith::AddIOp::create(b, loc, firstCode, cIdx(off));
        auto xv = vector::LoadOp::create(b, loc, actVec, x,
                                         ValueRange{mIdx, col});
        xv.setAlignment(std::min<int64_t>(16, actPerLoad * actBits / 8));
        for (int64_t j = 0; j < actPerLoad; ++j) {
          Value xj = vector::ExtractOp::create(b, loc, xv, j);
          if (!s.act.isF32())
            xj = arith::ExtFOp::create(b, loc, f32, xj);
          // llvm.intr.fma, not math.fma: the NVVM lowering turns the
          // latter into a libdevice call (__nv_fmaf) that ISA output
          // cannot resolve.
          partial = LLVM::FMAOp::create(b, loc, vals[size_t(off + j)], xj,
                                        partial);
        }
      }
      next.push_back(LLVM::FMAOp::create(b, loc, partial, scale,
                                         loop.getRegionIterArgs()[m]));
    }
    scf::YieldOp::create(b, loc, next);
  }
  // Butterfly reduction over the warp; lane 0 writes.
  Value width = cI32(32);
  Value isLane0 = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                        lane, cIdx(0));
  SmallVector<Value> sums;
  for (int64_t m = 0; m < s.m; ++m) {
    Value v = loop.getResult(m);
    for (int64_t off = 16; off >= 1; off /= 2) {
      auto sh = gpu::ShuffleOp::create(b, loc, v, cI32(off), width,
                                       gpu::ShuffleMode::XOR);
      v = arith::AddFOp::create(b, loc, v, sh.getShuffleResult());
    }
    sums.push_back(v);
  }
  auto ifLane0 = scf::IfOp::create(b, loc, isLane0, /*withElse=*/false);
  b.setInsertionPointToStart(ifLane0.thenBlock());
  for (int64_t m = 0; m < s.m; ++m)
    memref::StoreOp::create(b, loc, sums[size_t(m)], y,
                            ValueRange{cIdx(m), row});
  b.setInsertionPointToEnd(&entry);
  gpu::ReturnOp::create(b, loc);
}

/// Adds the kernel for `s` to `gm` unless it is there; returns its name.
std::string emitGemvKernel(gpu::GPUModuleOp gm, Location loc,
                           const GemvShape &s, int64_t rowsPerBlock) {
  std::string name = s.name();
  if (SymbolTable::lookupSymbolIn(gm, name))
    return name;
  MLIRContext *ctx = gm.getContext();
  OpBuilder b(ctx);
  const int64_t words = s.k * s.bits / 32;
  const int64_t groups = s.k / s.group;
  auto fnType = b.getFunctionType(
      {MemRefType::get({s.m, s.k}, s.act),
       MemRefType::get({s.n, words}, b.getI32Type()),
       MemRefType::get({s.n, groups}, b.getF32Type()),
       MemRefType::get({s.m, s.n}, b.getF32Type())},
      {});
  b.setInsertionPointToEnd(gm.getBody());
  auto fn = gpu::GPUFuncOp::create(b, loc, name, fnType);
  fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), UnitAttr::get(ctx));
  fn.setKnownBlockSizeAttr(
      b.getDenseI32ArrayAttr({int32_t(32 * rowsPerBlock), 1, 1}));
  fn->setAttr("nibble.weight_layout",
              b.getStringAttr(s.decode == Decode::Int
                                  ? "nvptx.offset-binary.lsb-first.i32"
                              : s.decode == Decode::F16
                                  ? "nvptx.f16.i32"
                                  : "nvptx.bytes.lsb-first.i32"));
  fn->setAttr("nibble.grid",
              b.getDenseI64ArrayAttr(
                  {(s.n + rowsPerBlock - 1) / rowsPerBlock, 1, 1}));
  if (s.hwFp8)
    fn->setAttr("nibble.fp8_cvt", UnitAttr::get(ctx));
  buildKernel(b, loc, fn, s, rowsPerBlock);
  return name;
}

struct GenerateGpuKernelsPass
    : public mlir::nibble::impl::NibbleGenerateGpuKernelsBase<GenerateGpuKernelsPass> {
  using NibbleGenerateGpuKernelsBase::NibbleGenerateGpuKernelsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (rowsPerBlock < 1 || rowsPerBlock > 32) {
      emitError(module.getLoc(), "rows-per-block must be in [1, 32]");
      return signalPassFailure();
    }
    std::optional<int> sm = smVersion(module.getLoc(), chip);
    if (!sm)
      return signalPassFailure();
    MLIRContext *ctx = module.getContext();
    gpu::GPUModuleOp gpuModule;
    module.walk([&](MatmulOp op) {
      std::string why;
      FailureOr<GemvShape> s = gemvShape(op, *sm, why);
      if (failed(s)) {
        op.emitRemark("no GPU kernel: ") << why;
        return;
      }
      if (!gpuModule)
        gpuModule = mlir::nibble::detail::getOrCreateGpuModule(module, chip);
      std::string name =
          emitGemvKernel(gpuModule, op.getLoc(), *s, rowsPerBlock);
      op->setAttr("nibble.gpu_kernel",
                  SymbolRefAttr::get(ctx, "nibble_gpu",
                                     {FlatSymbolRefAttr::get(ctx, name)}));
    });
  }
};

struct GpuToPtxPass : public mlir::nibble::impl::NibbleGpuToPtxBase<GpuToPtxPass> {
  using NibbleGpuToPtxBase::NibbleGpuToPtxBase;

  std::string pipeline() const {
    return "gpu.module(convert-scf-to-cf,convert-vector-to-llvm,"
           "convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=true},"
           "reconcile-unrealized-casts),nvvm-attach-target{chip=" +
           chip + " features=" + features +
           "},gpu-module-to-binary{format=isa}";
  }

  /// The dialects the nested pipeline creates (NVVM, LLVM, cf) must be
  /// loaded before the pass manager goes multi-threaded.
  void getDependentDialects(DialectRegistry &registry) const override {
    OpPassManager pm("builtin.module");
    if (succeeded(parsePassPipeline(pipeline(), pm)))
      pm.getDependentDialects(registry);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (output.empty()) {
      emitError(module.getLoc(), "nibble-gpu-to-ptx needs output=FILE");
      return signalPassFailure();
    }
    std::optional<int> sm = smVersion(module.getLoc(), chip);
    if (!sm)
      return signalPassFailure();
    // Kernels are specialised for the chip they were generated for (fp8
    // decoding differs below sm_89): lowering them for another is refused.
    WalkResult chipCheck = module.walk([&](gpu::GPUModuleOp gm) {
      auto made = gm->getAttrOfType<StringAttr>("nibble.chip");
      if (made && made.getValue() != chip) {
        emitError(gm.getLoc(), "kernels were generated for ")
            << made.getValue() << " but are being lowered for " << chip
            << " (run nibble-generate-gpu-kernels with chip=" << chip << ")";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (chipCheck.wasInterrupted())
      return signalPassFailure();
    // cvt.rn.f16x2.e4m3x2 needs PTX 7.8 on sm_90 and 8.1 on sm_89; LLVM's
    // NVPTX backend aborts on it otherwise, so say so first.
    const int needPtx = *sm >= 90 ? 78 : 81;
    int ptxVersion = 0;
    StringRef feat(features);
    size_t at = feat.find("+ptx");
    if (at != StringRef::npos)
      (void)feat.substr(at + 4).consumeInteger(10, ptxVersion);
    WalkResult ptxCheck = module.walk([&](gpu::GPUFuncOp fn) {
      if (fn->hasAttr("nibble.fp8_cvt") && ptxVersion < needPtx) {
        emitError(fn.getLoc(), "kernel ")
            << fn.getName() << " converts fp8 with cvt.rn.f16x2, which needs "
            << "PTX " << needPtx / 10 << "." << needPtx % 10 << " on " << chip
            << " (features=+ptx" << needPtx << " or later; got '" << features
            << "')";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (ptxCheck.wasInterrupted())
      return signalPassFailure();
    OpPassManager pm("builtin.module");
    if (failed(parsePassPipeline(pipeline(), pm))) {
      emitError(module.getLoc(), "bad chip or features: ") << pipeline();
      return signalPassFailure();
    }
    if (failed(runPipeline(pm, module)))
      return signalPassFailure();
    std::string ptx;
    module.walk([&](gpu::BinaryOp bin) {
      for (Attribute a : bin.getObjects())
        if (auto obj = dyn_cast<gpu::ObjectAttr>(a))
          ptx += obj.getObject().getValue().str();
    });
    if (ptx.empty()) {
      emitError(module.getLoc(), "no gpu.module to lower (run "
                       "nibble-generate-gpu-kernels first)");
      return signalPassFailure();
    }
    std::string error;
    if (!::nibble::support::writeFileAtomic(output, ptx.data(), ptx.size(),
                                            error)) {
      emitError(module.getLoc(), error);
      return signalPassFailure();
    }
  }
};

} // namespace

std::string
mlir::nibble::gpuGemvFormat(const ::nibble::formats::Format &f) {
  using ::nibble::formats::Format;
  if (f.kind() == ::nibble::formats::Kind::Int && f.isSigned() &&
      (f.bits() == 4 || f.bits() == 8))
    return "int" + std::to_string(f.bits());
  if (f == Format::e4m3fn() || f == Format::e5m2())
    return f.name();
  return "";
}

unsigned mlir::nibble::gpuGemvCodeBits(StringRef format) {
  return llvm::StringSwitch<unsigned>(format)
      .Case("int4", 4)
      .Case("int8", 8)
      .Case("e4m3fn", 8)
      .Case("e5m2", 8)
      .Case("f16", 16)
      .Default(0);
}

FailureOr<std::string>
mlir::nibble::addGpuGemvKernel(ModuleOp module, StringRef chip,
                               const GpuGemvSpec &spec, int64_t rowsPerBlock,
                               std::string &why) {
  std::optional<int> sm = smVersion(module.getLoc(), chip);
  if (!sm) {
    why = "bad chip name '" + chip.str() + "'";
    return failure();
  }
  const unsigned bits = gpuGemvCodeBits(spec.format);
  if (bits == 0) {
    why = "format " + spec.format +
          " has no GPU kernel (int4, int8, e4m3fn, e5m2, f16)";
    return failure();
  }
  GemvShape s = shapeFor(spec.format, 1, spec.n, spec.k, spec.group,
                         Float32Type::get(module.getContext()), *sm);
  const int64_t chunk = 128 / bits;
  if (spec.n < 1 || spec.k < chunk || spec.group < 1 ||
      spec.k % spec.group != 0 || spec.group % chunk != 0) {
    why = "K = " + std::to_string(spec.k) + " with groups of " +
          std::to_string(spec.group) +
          ": the group must divide K and be a multiple of " +
          std::to_string(chunk) + " " + spec.format +
          " codes (one 128-bit load)";
    return failure();
  }
  return emitGemvKernel(detail::getOrCreateGpuModule(module, chip),
                        module.getLoc(), s, rowsPerBlock);
}
