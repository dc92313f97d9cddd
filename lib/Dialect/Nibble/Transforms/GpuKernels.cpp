//===- GpuKernels.cpp - NVIDIA GEMV kernels in the gpu dialect -------------===//
//
// nibble-generate-gpu-kernels: weight-only int4 / int8 GEMV (M <= 32
// activation rows) as gpu.func kernels, one warp per output row, 128-bit
// code loads, magic-number dequantization, f32 FMAs and a shuffle
// reduction. nibble-gpu-to-ptx: the upstream NVVM lowering and LLVM's NVPTX
// backend, PTX written to a file. Passes.td documents the ABI and layout.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Support/File.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEGENERATEGPUKERNELS
#define GEN_PASS_DEF_NIBBLEGPUTOPTX
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;

namespace {

/// What one kernel is specialised for.
struct GemvShape {
  int64_t m, n, k, group;
  unsigned bits;
  Type act; ///< f16 or f32
  std::string name() const {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << "nibble_w" << bits << "a" << act.getIntOrFloatBitWidth() << "_m"
       << m << "_n" << n << "_k" << k << "_g" << group;
    return s;
  }
};

/// The shape of a matmul the kernels serve, or a reason it is not served.
FailureOr<GemvShape> gemvShape(MatmulOp op, std::string &why) {
  QTensorType wType = op.getWeight().getType();
  SchemeAttr scheme = wType.getScheme();
  auto xType = cast<RankedTensorType>(op.getInput().getType());
  auto intFormat = dyn_cast<IntFormatAttr>(scheme.getFormat());
  GemvShape s{xType.getDimSize(0), wType.getShape()[0], wType.getShape()[1],
              0, 0, xType.getElementType()};
  if (!intFormat || !intFormat.getIsSigned() ||
      (intFormat.getWidth() != 4 && intFormat.getWidth() != 8))
    why = "weights are not int4 or int8 signed";
  else if (scheme.hasZeroPoints() || scheme.getScaleSchemeAttr() ||
           !scheme.getScaleType().isF32() || scheme.getLayout())
    why = "scales are not plain f32 without zero points";
  else if (!(s.act.isF16() || s.act.isF32()) ||
           !op.getResult().getType().getElementType().isF32())
    why = "activations are not f16/f32 with an f32 result";
  else if (op.getActFormat())
    why = "activation quantization has no GPU kernel yet";
  else if (s.m < 1 || s.m > 32 || ShapedType::isDynamic(s.m))
    why = "more than 32 (or a dynamic number of) activation rows";
  if (!why.empty())
    return failure();
  s.bits = intFormat.getWidth();
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

  const int64_t codesPerWord = 32 / s.bits, chunkCodes = 128 / s.bits;
  const int64_t chunks = s.k / chunkCodes;
  const int64_t actBits = s.act.getIntOrFloatBitWidth();
  // Activations of one word's codes, in loads of at most 128 bits.
  const int64_t actPerLoad = std::min<int64_t>(codesPerWord, 128 / actBits);
  auto actVec = VectorType::get({actPerLoad}, s.act);
  auto wordVec = VectorType::get({4}, i32);
  const uint32_t mask = (1u << s.bits) - 1;
  Value magic = cI32(0x4B000000);
  // bitcast(0x4B000000 | u) = 2^23 + u; minus 2^23 + 2^(bits-1) undoes
  // the offset binary of the stored code.
  Value bias = cF32(8388608.0 + double(1u << (s.bits - 1)));
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
    // Dequantize the chunk once (without the scale) ...
    SmallVector<Value> vals;
    for (int64_t word = 0; word < 4; ++word) {
      Value e = vector::ExtractOp::create(b, loc, wv, word);
      for (int64_t j = 0; j < codesPerWord; ++j) {
        Value code = j == 0 ? e
                            : arith::ShRUIOp::create(
                                  b, loc, e, cI32(int64_t(j * s.bits)));
        if (j != codesPerWord - 1)
          code = arith::AndIOp::create(b, loc, code, cI32(mask));
        Value f = arith::BitcastOp::create(
            b, loc, f32, arith::OrIOp::create(b, loc, code, magic));
        vals.push_back(arith::SubFOp::create(b, loc, f, bias));
      }
    }
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

struct GenerateGpuKernelsPass
    : public mlir::nibble::impl::NibbleGenerateGpuKernelsBase<GenerateGpuKernelsPass> {
  using NibbleGenerateGpuKernelsBase::NibbleGenerateGpuKernelsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (rowsPerBlock < 1 || rowsPerBlock > 32) {
      module.emitError("rows-per-block must be in [1, 32]");
      return signalPassFailure();
    }
    MLIRContext *ctx = module.getContext();
    OpBuilder b(ctx);
    gpu::GPUModuleOp gpuModule;
    SymbolTable top(module);
    module.walk([&](MatmulOp op) {
      std::string why;
      FailureOr<GemvShape> s = gemvShape(op, why);
      if (failed(s)) {
        op.emitRemark("no GPU kernel: ") << why;
        return;
      }
      if (!gpuModule) {
        module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                        UnitAttr::get(ctx));
        b.setInsertionPointToEnd(module.getBody());
        gpuModule = gpu::GPUModuleOp::create(b, module.getLoc(), "nibble_gpu");
      }
      std::string name = s->name();
      if (!SymbolTable::lookupSymbolIn(gpuModule, name)) {
        const int64_t words = s->k * s->bits / 32;
        const int64_t groups = s->k / s->group;
        auto fnType = b.getFunctionType(
            {MemRefType::get({s->m, s->k}, s->act),
             MemRefType::get({s->n, words}, b.getI32Type()),
             MemRefType::get({s->n, groups}, b.getF32Type()),
             MemRefType::get({s->m, s->n}, b.getF32Type())},
            {});
        b.setInsertionPointToEnd(gpuModule.getBody());
        auto fn = gpu::GPUFuncOp::create(b, op.getLoc(), name, fnType);
        fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                    UnitAttr::get(ctx));
        fn.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr(
            {int32_t(32 * rowsPerBlock), 1, 1}));
        fn->setAttr("nibble.weight_layout",
                    b.getStringAttr("nvptx.offset-binary.lsb-first.i32"));
        fn->setAttr("nibble.grid",
                    b.getDenseI64ArrayAttr(
                        {(s->n + rowsPerBlock - 1) / rowsPerBlock, 1, 1}));
        buildKernel(b, op.getLoc(), fn, *s, rowsPerBlock);
      }
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
      module.emitError("nibble-gpu-to-ptx needs output=FILE");
      return signalPassFailure();
    }
    OpPassManager pm("builtin.module");
    if (failed(parsePassPipeline(pipeline(), pm))) {
      module.emitError("bad chip or features: ") << pipeline();
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
      module.emitError("no gpu.module to lower (run "
                       "nibble-generate-gpu-kernels first)");
      return signalPassFailure();
    }
    std::string error;
    if (!::nibble::support::writeFileAtomic(output, ptx.data(), ptx.size(),
                                            error)) {
      module.emitError(error);
      return signalPassFailure();
    }
  }
};

} // namespace
