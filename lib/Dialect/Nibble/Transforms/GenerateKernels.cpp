//===- GenerateKernels.cpp - Vector-dialect CPU kernels for nibble.matmul -===//
//
// Rewrites eligible nibble.matmul ops into calls of generated kernel
// functions (CpuKernels.cpp) written in the vector dialect, then lowered by
// LLVM's backend for the chosen target. The pass checks the target's
// features before choosing a path, and repacks the weights at compile time
// into the layout the chosen kernel reads, recorded in the scheme's layout
// attribute on the byte constant (`nibble.scheme`).
//
// Paths (docs/performance.md lists which formats each serves):
//  - weight-only (no act_format): integer weights of any width (signed or
//    unsigned, with or without zero points), fp8 e5m2 (the high byte of
//    an f16), every other signed 5- to 8-bit float (e4m3fn, the fnuz
//    fp8s, custom ones: through f16 bit patterns, or f32 ones beyond 4
//    exponent bits), fp6 (code6-split64)
//    and every format of at most 16 codes (fp4,
//    NF4, any lookup table: a 16-entry f32 table and a vector permute,
//    vpermps or NEON tbl); scales per group (a multiple of the 32- or
//    16-code step, or 16 / 32 codes dividing it) or per row, stored as f32,
//    f16, bf16 or 8-bit codes through a table (ScaleStorage); zero points
//    (any format) stored as f32, f16, bf16 or i8/i16/i32; decoded in
//    registers, f32 FMA. Needs vector FMA (AVX2+FMA, AVX-512, NEON).
//  - integer dot (act_format int8, dynamic or static): int4 / int8 /
//    uint4 / uint8 weights (scales as for weight-only, zero points of any
//    stored type) times int8
//    activations with an 8-bit dot-product instruction: vpdpbusd (AVX-512
//    VNNI, 16 lanes; AVX-VNNI, 8 lanes), which multiplies u8 by s8, so
//    signed weights are stored offset-binary; or NEON sdot (dotprod),
//    signed by signed, so uint8 weights are stored minus 128. The kernel
//    corrects offset and zero point with the group's activation sum.
//    Activations are quantized once per input by a generated
//    quantizer shared by every matmul that reads the same value; with a
//    static scale, when that value is a generated kernel's output, the
//    kernel quantizes it in its store instead (QuantizeOutput).
// Everything else keeps the reference lowering (with a remark when only
// the target's missing feature is in the way).
//
//===----------------------------------------------------------------------===//

#include "CpuKernels.h"

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Target/TargetSpec.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cstring>
#include <map>
#include <tuple>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLEGENERATEKERNELS
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;
using namespace mlir::nibble::cpu;

namespace {

/// Whether the packed bytes of a nibble.constant are in the IR (not an
/// unbound resource or an external file).
bool hasPayload(ConstantOp c) {
  if (auto r = dyn_cast<DenseResourceElementsAttr>(c.getValue()))
    return r.getRawHandle().getBlob() != nullptr;
  return isa<DenseElementsAttr>(c.getValue());
}

/// The raw bytes of a dense or resource elements attribute (splats
/// expanded; one byte per element for 8-bit elements, as many as the type
/// has for wider ones), empty when there is no payload.
std::vector<uint8_t> attrBytes(Attribute value) {
  if (auto r = dyn_cast<DenseResourceElementsAttr>(value))
    if (AsmResourceBlob *blob = r.getRawHandle().getBlob())
      return std::vector<uint8_t>(blob->getData().begin(),
                                  blob->getData().end());
  if (auto d = dyn_cast<DenseElementsAttr>(value)) {
    ArrayRef<char> raw = d.getRawData();
    if (d.isSplat()) {
      // The raw data is one element: repeat it (the element count once:
      // it is a product over the shape).
      const size_t n = size_t(d.getNumElements());
      if (raw.size() == 1)
        return std::vector<uint8_t>(n, uint8_t(raw[0]));
      std::vector<uint8_t> out;
      out.reserve(raw.size() * n);
      for (size_t i = 0; i < n; ++i)
        out.insert(out.end(), raw.begin(), raw.end());
      return out;
    }
    return std::vector<uint8_t>(raw.begin(), raw.end());
  }
  return {};
}

/// The number of bytes attrBytes(value) returns, without copying them.
size_t attrByteCount(Attribute value) {
  if (auto r = dyn_cast<DenseResourceElementsAttr>(value)) {
    AsmResourceBlob *blob = r.getRawHandle().getBlob();
    return blob ? blob->getData().size() : 0;
  }
  if (auto d = dyn_cast<DenseElementsAttr>(value))
    return d.getRawData().size() *
           (d.isSplat() ? size_t(d.getNumElements()) : size_t(1));
  return 0;
}

/// Packed bytes of a nibble.constant (splats expanded); the payload must be
/// present (hasPayload).
std::vector<uint8_t> constantBytes(ConstantOp c) {
  return attrBytes(c.getValue());
}

/// A constant of `shape` and element type `elem` (i8 by default) holding
/// `bytes` as the 64-byte-aligned resource `name` (kernel operands derived
/// from weights, scales and zero points).
arith::ConstantOp byteConstant(OpBuilder &b, Location loc,
                               ArrayRef<int64_t> shape, const std::string &name,
                               const std::vector<uint8_t> &bytes,
                               Type elem = Type()) {
  ArrayRef<char> view(reinterpret_cast<const char *>(bytes.data()),
                      bytes.size());
  return arith::ConstantOp::create(
      b, loc,
      DenseResourceElementsAttr::get(
          RankedTensorType::get(shape, elem ? elem : b.getI8Type()), name,
          HeapAsmResourceBlob::allocateAndCopyWithAlign(view, 64)));
}

/// The bytes of an arith.constant or a nibble.constant (splats expanded).
std::vector<uint8_t> definingBytes(Operation *def) {
  return isa<ConstantOp>(def)
             ? constantBytes(cast<ConstantOp>(def))
             : attrBytes(cast<arith::ConstantOp>(def).getValue());
}

/// The matmul's linear name (`nibble.linear`), or "weights".
std::string linearName(MatmulOp op) {
  if (auto lin = op->getAttrOfType<StringAttr>("nibble.linear"))
    return lin.getValue().str();
  return "weights";
}

/// The f32 value of each of the 256 codes of an 8-bit scale format, times
/// `times` (a two-level scheme's tensor scale: the reference's product).
std::vector<float> scaleTableOf(const ::nibble::formats::Format &f,
                                float times) {
  std::vector<float> table(256, 0.0f);
  for (uint32_t c = 0; c < std::min<uint32_t>(256, f.numCodes()); ++c)
    table[c] = f.decode(c) * times;
  return table;
}

/// A matmul's static activation scale, 0 when it is dynamic (the
/// ActQuantizer's `scale` argument).
float staticActScale(MatmulOp op) {
  return op.getActScaleAttr() ? float(op.getActScaleAttr().getValueAsDouble())
                              : 0.0f;
}

/// What the target offers the kernels.
struct Capabilities {
  bool vectorFMA = false;
  /// f32 lanes of one vector register (16 AVX-512, 8 AVX2, 4 NEON): the
  /// rows of a row-tiled weight-only kernel's tile.
  int64_t f32Lanes = 0;
  /// How a 16-entry table lookup is done (weight-only table formats).
  PermuteKind permute = PermuteKind::None;
  /// 8-bit dot product: i32 lanes per instruction, 0 when absent.
  int64_t dotLanes = 0;
  bool dotUnsignedWeights = false;
  std::string dotIntrinsic;
  std::string describe;
};

Capabilities capabilities(const ::nibble::target::TargetSpec &spec) {
  Capabilities c;
  c.describe = spec.describe();
  if (spec.isAArch64()) {
    c.vectorFMA = spec.has("neon");
    c.f32Lanes = 4;
    if (c.vectorFMA)
      c.permute = PermuteKind::Neon;
    if (spec.has("dotprod")) {
      c.dotLanes = 4;
      c.dotIntrinsic = "llvm.aarch64.neon.sdot.v4i32.v16i8";
    }
    return c;
  }
  c.vectorFMA = spec.has("fma") && spec.has("avx2");
  if (c.vectorFMA)
    c.permute = spec.has("avx512f") ? PermuteKind::Avx512 : PermuteKind::Avx2;
  c.f32Lanes = spec.has("avx512f") ? 16 : 8;
  // vpdpbusd: u8 x s8. (Not vpdpbssd, s8 x s8, which needs AVX-VNNI-INT8:
  // Zen 4 lacks it.)
  if (spec.has("avx512vnni") && spec.has("avx512bw")) {
    c.dotLanes = 16;
    c.dotIntrinsic = "llvm.x86.avx512.vpdpbusd.512";
  } else if (spec.has("avxvnni")) {
    c.dotLanes = 8;
    c.dotIntrinsic = "llvm.x86.avx512.vpdpbusd.256";
  }
  c.dotUnsignedWeights = true;
  return c;
}

/// The shape and scheme facts both paths need, or nullopt when the matmul
/// is outside every generated path.
struct MatmulShape {
  int64_t m, n, k, group;
  ::nibble::formats::Format format;
  bool zeroPoints;
  /// Output rows that share one row of scales (and zero points): 1 for
  /// groups and per-channel scales, R for block<R x C>, N for per_tensor.
  /// The kernels read one row per output row (kernelConstant repeats them).
  int64_t scaleRows = 1;
  ScaleStorage scales = ScaleStorage::F32;
  Type zeroPointType; ///< with zeroPoints: f32, f16, bf16, i8, i16, i32
  /// ScaleStorage::Table8: the f32 value of each of the 256 scale codes.
  std::vector<float> scaleTable;
};

/// How the matmul's group scales are stored, into `s`; false when no
/// kernel reads them: f32, f16 or bf16 constants; 8-bit float constants
/// (E8M0 of the MX formats, e4m3, e5m2) through a table of their values; or
/// a two-level scheme's 8-bit scale codes with one f32 scale per tensor
/// (NVFP4-style), that scale folded into the table.
bool scaleStorage(MatmulOp op, SchemeAttr scheme, MatmulShape &s) {
  s.scaleTable.clear();
  if (SchemeAttr inner = scheme.getScaleSchemeAttr()) {
    auto codes = op.getScales().getDefiningOp<ConstantOp>();
    auto outer = op.getScaleScales()
                     ? op.getScaleScales().getDefiningOp<arith::ConstantOp>()
                     : arith::ConstantOp();
    if (!codes || !hasPayload(codes) || !outer || inner.hasZeroPoints() ||
        inner.getScaleSchemeAttr() || inner.getLayout() ||
        inner.getGranularity() != GranularityKind::PerTensor ||
        !inner.getScaleType().isF32() ||
        inner.getFormatAttr().getFormat().bits() != 8)
      return false;
    std::vector<uint8_t> t = attrBytes(outer.getValue());
    if (t.size() != 4 ||
        attrByteCount(codes.getValue()) !=
            size_t(s.n / s.scaleRows * (s.k / s.group)))
      return false;
    float tensorScale;
    std::memcpy(&tensorScale, t.data(), 4);
    s.scaleTable = scaleTableOf(inner.getFormatAttr().getFormat(), tensorScale);
    s.scales = ScaleStorage::Table8;
    return true;
  }
  auto sType = dyn_cast<RankedTensorType>(op.getScales().getType());
  if (!sType || !op.getScales().getDefiningOp<arith::ConstantOp>())
    return false;
  Type e = sType.getElementType();
  if (e.isF32()) {
    s.scales = ScaleStorage::F32;
  } else if (e.isF16()) {
    s.scales = ScaleStorage::F16;
  } else if (e.isBF16()) {
    s.scales = ScaleStorage::BF16;
  } else if (auto f = getSmallFloatTypeFormat(e);
             f && e.getIntOrFloatBitWidth() == 8 &&
             attrByteCount(op.getScales()
                               .getDefiningOp<arith::ConstantOp>()
                               .getValue()) ==
                 size_t(s.n / s.scaleRows * (s.k / s.group))) {
    s.scaleTable = scaleTableOf(*f, 1.0f);
    s.scales = ScaleStorage::Table8;
  } else {
    return false;
  }
  return true;
}

std::optional<MatmulShape> commonShape(MatmulOp op) {
  QTensorType wType = op.getWeight().getType();
  SchemeAttr scheme = wType.getScheme();
  auto xType = op.getInput().getType();
  if (scheme.getLayout() || !xType.getElementType().isF32() ||
      !op.getResult().getType().getElementType().isF32() ||
      !op.getWeight().getDefiningOp<ConstantOp>())
    return std::nullopt;
  MatmulShape s{xType.getDimSize(0), wType.getShape()[0], wType.getShape()[1],
                0, scheme.getFormatAttr().getFormat(),
                scheme.hasZeroPoints()};
  // Columns (the group along K) and output rows per scale: groups and
  // per-channel scales, and per_tensor and 2-D blocks read as groups
  // whose scale rows repeat (groups along N, or one scale per input
  // column, have no kernel: their group along K is 1).
  SmallVector<int64_t> block = scheme.getBlockSizes(wType.getShape());
  if (block.size() != 2)
    return std::nullopt;
  s.scaleRows = block[0];
  s.group = block[1];
  if (s.m > 32 || s.m < 1 ||
      !hasPayload(op.getWeight().getDefiningOp<ConstantOp>()) ||
      !scaleStorage(op, scheme, s))
    return std::nullopt;
  if (s.zeroPoints) {
    // One zero point per scale, stored as a float the kernel widens or an
    // integer it sign-extends.
    auto zType = op.getZeroPoints()
                     ? dyn_cast<RankedTensorType>(op.getZeroPoints().getType())
                     : RankedTensorType();
    if (!zType ||
        zType.getShape() !=
            ArrayRef<int64_t>{s.n / s.scaleRows, s.k / s.group} ||
        (s.scaleRows > 1 &&
         !op.getZeroPoints().getDefiningOp<arith::ConstantOp>()))
      return std::nullopt;
    Type z = zType.getElementType();
    if (!z.isF32() && !z.isF16() && !z.isBF16() && !z.isInteger(8) &&
        !z.isInteger(16) && !z.isInteger(32))
      return std::nullopt;
    s.zeroPointType = z;
  }
  return s;
}

/// The weight-only kernel for a matmul of `s`, or nullopt (generic path):
/// integers of any width, e5m2 through f16, fp6 in the split layout,
/// other signed 5- to 8-bit floats (e4m3fn, the fnuz fp8s, custom ones)
/// through f16 or f32 bits, and every format of at most 16 codes (fp4,
/// NF4, any lookup table) through a table.
std::optional<WeightOnlyKernel> weightOnlyKernel(const MatmulShape &s,
                                                 PermuteKind permute) {
  using ::nibble::formats::Format;
  const Format &f = s.format;
  WeightOnlyKernel key{s.m, s.n, s.k, s.group,
                       ::nibble::formats::cpuKernelStorageBits(f),
                       WeightDecode::SignedInt, {}, permute, s.zeroPoints};
  key.scales = s.scales;
  key.zeroPointType = s.zeroPointType;
  if (f.kind() == ::nibble::formats::Kind::Int) {
    key.decode =
        f.isSigned() ? WeightDecode::SignedInt : WeightDecode::UnsignedInt;
  } else if (f == Format::e5m2()) {
    key.decode = WeightDecode::E5M2;
  } else if (::nibble::formats::isSplit6Float(f)) {
    key.decode = WeightDecode::Fp6;
    key.manBits = f.floatSpec().manBits;
    key.bias = f.floatSpec().bias;
  } else if (f.kind() == ::nibble::formats::Kind::Float && f.bits() >= 5 &&
             f.bits() <= 8 && f.isSigned() && f.floatSpec().hasZero &&
             f.floatSpec().bias >= 0 && f.floatSpec().bias <= 253) {
    // e4m3fn, e4m3fnuz, e5m2fnuz and custom 5- to 8-bit floats: every
    // finite code exactly. A NaN or infinity code (the quantizer's
    // saturating encoder never produces one) decodes as a finite value
    // (e4m3fn's NaN as 480). The bias keeps 2^(127 - bias) a normal f32.
    key.decode = WeightDecode::ByteFloat;
    key.expBits = f.floatSpec().expBits;
    key.manBits = f.floatSpec().manBits;
    key.bias = f.floatSpec().bias;
  } else if (f.numCodes() <= 16) {
    key.decode = WeightDecode::Table;
    key.table.assign(16, 0.0f);
    for (uint32_t c = 0; c < f.numCodes(); ++c)
      key.table[c] = f.decode(c);
  } else {
    return std::nullopt;
  }
  return key;
}

/// Whether the matmul quantizes its activations to int8 (the only
/// activation format of the integer path).
bool int8Activations(MatmulOp op) {
  auto act = dyn_cast_or_null<NumberFormatAttrInterface>(op.getActFormatAttr());
  if (!act)
    return false;
  auto f = act.getFormat();
  return f.kind() == ::nibble::formats::Kind::Int && f.isSigned() &&
         f.bits() == 8;
}

struct GenerateKernelsPass
    : public mlir::nibble::impl::NibbleGenerateKernelsBase<GenerateKernelsPass> {
  using NibbleGenerateKernelsBase::NibbleGenerateKernelsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    kernels.clear();
    quantized.clear();
    packed.clear();
    kernelConstants.clear();
    std::string error;
    auto spec = ::nibble::target::TargetSpec::parse(target, error);
    if (!spec) {
      module.emitError(error);
      return signalPassFailure();
    }
    caps = capabilities(*spec);
    module->setAttr("nibble.target",
                    StringAttr::get(module.getContext(), caps.describe));
    SmallVector<MatmulOp> ops;
    module.walk([&](MatmulOp op) { ops.push_back(op); });
    bool remarkedFMA = false;
    for (MatmulOp op : ops) {
      std::optional<MatmulShape> shape = commonShape(op);
      if (!shape)
        continue;
      if (op.getActFormatAttr()) {
        if (std::optional<IntDotKernel> key =
                intDotKernel(op, *shape, /*remark=*/true))
          rewriteIntDot(op, *key, *shape);
        continue;
      }
      std::optional<WeightOnlyKernel> key =
          weightOnlyKernel(*shape, caps.permute);
      if (!key)
        continue;
      if (!caps.vectorFMA) {
        if (!remarkedFMA)
          module.emitRemark("target ")
              << caps.describe
              << " has no vector FMA: nibble.matmul keeps the reference "
                 "lowering";
        remarkedFMA = true;
        continue;
      }
      // The row-tiled layouts wherever they apply: integers in bytes, and
      // on AVX-512 (one vpermps looks up 16 rows) every format in
      // nibbles; whole tiles of rows, groups of a multiple of 16, zero
      // points it can tile at compile time.
      const bool ints = key->decode == WeightDecode::SignedInt ||
                        key->decode == WeightDecode::UnsignedInt;
      if (rowTile &&
          ((key->storeBits == 8 && ints) ||
           (key->storeBits == 4 && caps.permute == PermuteKind::Avx512 &&
            (ints || key->decode == WeightDecode::Table))) &&
          key->n % caps.f32Lanes == 0 && key->group % 16 == 0 &&
          (!key->zeroPoints ||
           op.getZeroPoints().getDefiningOp<arith::ConstantOp>())) {
        key->rowTile = caps.f32Lanes;
        if (key->storeBits == 4 && ints) {
          // The nibble kernel looks every code up, integers too: stored
          // as 4-bit two's complement (narrower codes sign-extended) or
          // unsigned.
          key->table.assign(16, 0.0f);
          for (int c = 0; c < 16; ++c)
            key->table[size_t(c)] =
                float(key->decode == WeightDecode::SignedInt && c >= 8
                          ? c - 16
                          : c);
        }
      }
      const int64_t codesPerStep = key->codesPerStep();
      if (!key->tiled() && !key->groupingServed()) {
        op.emitRemark("group ")
            << key->group << " is neither a multiple of the " << codesPerStep
            << "-code step of the weight-only kernel nor a multiple of 16 "
               "dividing it: reference lowering";
        continue;
      }
      rewriteWeightOnly(op, *key, *shape);
    }
  }

  /// The integer-dot kernel serving a matmul with activation quantization
  /// (shape `s`), or nullopt (reference lowering; with `remark`, saying why
  /// when it is the target or the grouping).
  std::optional<IntDotKernel> intDotKernel(MatmulOp op, const MatmulShape &s,
                                           bool remark) {
    const auto &f = s.format;
    if (!int8Activations(op) || f.kind() != ::nibble::formats::Kind::Int ||
        (f.bits() != 4 && f.bits() != 8))
      return std::nullopt;
    if (!caps.dotLanes) {
      if (remark)
        op.emitRemark("target ")
            << caps.describe
            << " has no 8-bit dot product (avx512vnni+avx512bw, avxvnni or "
               "dotprod): this matmul keeps the reference lowering";
      return std::nullopt;
    }
    IntDotKernel key{s.m,      s.n,           s.k,
                     s.group,  f.bits(),      caps.dotLanes,
                     caps.dotUnsignedWeights, caps.dotIntrinsic};
    key.unsignedFormat = !f.isSigned();
    key.zeroPoints = s.zeroPoints;
    key.scales = s.scales;
    key.zeroPointType = s.zeroPointType;
    // The row-tiled layout wherever it applies: whole tiles of rows,
    // groups of whole activation-quantizer steps (16 codes), and zero
    // points it can tile at compile time (the scales always can).
    if (rowTile && key.n % key.lanes == 0 && key.group % 16 == 0 &&
        (!key.zeroPoints ||
         op.getZeroPoints().getDefiningOp<arith::ConstantOp>()))
      key.rowTile = key.lanes;
    if (key.tiled() && kPanelBytes > 0) {
      // Per group, what passes through L1 between a tile's read of an
      // activation code and the next tile's at decode (M = 1): the
      // tile's weights, the row's codes, the tile's scales. Not a
      // function of M, so that decode and prefill kernels of one weight
      // share its packed copy.
      const int64_t perGroup = key.rowTile * key.group * key.bits / 8 +
                               key.group + key.rowTile * 4;
      const int64_t groups = key.k / key.group;
      const int64_t fit = std::max<int64_t>(1, kPanelBytes / perGroup);
      if (groups > fit) {
        // Panels of equal size but the last.
        const int64_t panels = (groups + fit - 1) / fit;
        key.panelGroups = (groups + panels - 1) / panels;
      }
    }
    if (!key.tiled() && key.group % key.blockCodes() != 0) {
      if (remark)
        op.emitRemark("group ")
            << key.group << " is not a multiple of the " << key.blockCodes()
            << "-code block of the one-row integer kernel on this target ("
            << (rowTile ? "the row-tiled one needs N a multiple of " +
                              std::to_string(key.lanes) +
                              ", a group a multiple of 16 and constant zero "
                              "points"
                        : std::string("row tiling is off"))
            << "): reference lowering";
      return std::nullopt;
    }
    return key;
  }

  /// The quantization the kernel producing `v` can do in its store for an
  /// integer-dot matmul that reads v with a static activation scale (the
  /// first such reader; others sharing its grouping and scale share the
  /// codes, the rest get their own quantizer), and that scale.
  std::optional<std::pair<QuantizeOutput, float>> quantizeOutputFor(Value v) {
    if (!fuseEpilogues)
      return std::nullopt;
    for (Operation *user : v.getUsers()) {
      auto mm = dyn_cast<MatmulOp>(user);
      if (!mm || mm.getInput() != v || !(staticActScale(mm) > 0.0f))
        continue;
      std::optional<MatmulShape> shape = commonShape(mm);
      if (!shape)
        continue;
      if (std::optional<IntDotKernel> key =
              intDotKernel(mm, *shape, /*remark=*/false))
        return std::make_pair(QuantizeOutput{key->group}, staticActScale(mm));
    }
    return std::nullopt;
  }

  func::FuncOp kernel(const std::string &name,
                      function_ref<func::FuncOp()> build) {
    func::FuncOp &fn = kernels[name];
    if (!fn)
      fn = build();
    return fn;
  }

  /// The repacked weights as an i8 constant that records its scheme, with
  /// the kernel layout, as `nibble.scheme`. One per weight constant and
  /// layout: matmuls sharing a weight share its packed copy, placed right
  /// after the weight constant so that it dominates every use.
  Value packedWeights(MatmulOp op, int64_t block, bool flipSign,
                      StringRef layout, bool signExtend = false,
                      bool split6 = false, int64_t tileRows = 1,
                      unsigned storeBits = 0, int64_t panelCols = 0) {
    auto cst = op.getWeight().getDefiningOp<ConstantOp>();
    Value &cached = packed[{cst.getOperation(), layout.str()}];
    if (cached)
      return cached;
    OpBuilder b(cst);
    b.setInsertionPointAfter(cst);
    Location loc = cst.getLoc();
    QTensorType wType = op.getWeight().getType();
    std::vector<uint8_t> canonical = constantBytes(cst);
    const int64_t n = wType.getShape()[0], k = wType.getShape()[1];
    const unsigned bits =
        unsigned(wType.getScheme().getFormatAttr().getFormat().bits());
    std::vector<uint8_t> bytes =
        split6 ? ::nibble::formats::repackSplit6(canonical.data(), size_t(n),
                                                 size_t(k))
        : tileRows > 1 && storeBits == 8
            ? ::nibble::formats::repackColumnTiled(canonical.data(),
                                                   size_t(n), size_t(k), bits,
                                                   size_t(tileRows),
                                                   signExtend)
        : tileRows > 1
            ? ::nibble::formats::repackRowTiled(canonical.data(), size_t(n),
                                                size_t(k), bits,
                                                size_t(tileRows), flipSign,
                                                storeBits, signExtend,
                                                size_t(panelCols))
            : ::nibble::formats::repackInterleaved(
                     canonical.data(), size_t(n), size_t(k), bits,
                     size_t(block), flipSign, signExtend);
    auto wc = byteConstant(b, loc, {int64_t(bytes.size())},
                           linearName(op) + ".packed",
                           bytes);
    SchemeAttr s = wType.getScheme();
    wc->setAttr("nibble.scheme",
                SchemeAttr::get(b.getContext(), s.getFormat(),
                                s.getGranularity(), s.getAxis(),
                                s.getBlockShape(), s.getScaleType(),
                                s.getZeroPointType(), s.getScaleScheme(),
                                b.getStringAttr(layout)));
    cached = wc;
    return wc;
  }

  void replace(MatmulOp op, Value result) {
    auto cst = op.getWeight().getDefiningOp<ConstantOp>();
    op.getResult().replaceAllUsesWith(result);
    op.erase();
    if (cst->use_empty())
      cst.erase();
  }

  /// The fusable element-wise consumer of the matmul, if any.
  std::optional<Epilogue> epilogueOf(MatmulOp op) {
    if (!fuseEpilogues || !op.getResult().hasOneUse())
      return std::nullopt;
    return matchEpilogue(op.getResult(), *op.getResult().user_begin());
  }

  /// What a kernel call fuses: the matmul's element-wise consumer and the
  /// activation quantization of an integer matmul reading the result.
  struct Fusion {
    std::optional<Epilogue> epi;
    std::optional<std::pair<QuantizeOutput, float>> quant;
    const Epilogue *epilogue() const { return epi ? &*epi : nullptr; }
    const QuantizeOutput *quantize() const {
      return quant ? &quant->first : nullptr;
    }
    std::string key() const {
      return (epi ? epi->key() : "") + (quant ? quant->first.key() : "");
    }
  };

  Fusion fusionOf(MatmulOp op) {
    Fusion f;
    f.epi = epilogueOf(op);
    f.quant = quantizeOutputFor(f.epi ? f.epi->op.getResult(0)
                                      : op.getResult());
    return f;
  }

  /// Calls `fn` with `args` (+ the epilogue's inputs and the quantization's
  /// arguments) where the result is needed: at the matmul, or at its fused
  /// consumer (whose other inputs may be defined after the matmul), and
  /// replaces what it computes. Fused quantized activations are recorded
  /// for the integer matmuls that read them.
  void emitCall(MatmulOp op, func::FuncOp fn, SmallVector<Value> args,
                const Fusion &fusion) {
    OpBuilder b(op);
    if (fusion.epi) {
      b.setInsertionPoint(fusion.epi->op);
      args.append(fusion.epi->extraInputs());
    }
    Location loc = op.getLoc();
    auto yType = cast<RankedTensorType>(op.getResult().getType());
    const int64_t m = yType.getDimSize(0), n = yType.getDimSize(1);
    if (fusion.quant) {
      const int64_t group = fusion.quant->first.group;
      args.push_back(arith::ConstantOp::create(
          b, loc, b.getF32FloatAttr(fusion.quant->second)));
      args.push_back(tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{m, n},
                                             b.getI8Type()));
      args.push_back(tensor::EmptyOp::create(
          b, loc, ArrayRef<int64_t>{m, n / group}, b.getF32Type()));
    }
    auto call = func::CallOp::create(b, loc, fn, args);
    if (fusion.quant) {
      // The scale every row was quantized with, as the quantizer's [M].
      auto xsType = RankedTensorType::get({m}, b.getF32Type());
      Value xs = arith::ConstantOp::create(
          b, loc,
          DenseElementsAttr::get(xsType, b.getF32FloatAttr(
                                             fusion.quant->second)));
      quantized[quantKey(call.getResult(0), fusion.quant->first.group,
                         fusion.quant->second)] = {call.getResult(1),
                                                   call.getResult(2), xs};
    }
    if (fusion.epi) {
      fusion.epi->op.getResult(0).replaceAllUsesWith(call.getResult(0));
      fusion.epi->op.erase();
    }
    replace(op, call.getResult(0));
  }

  /// The scale arguments of a kernel: the scales as they are, or
  /// (ScaleStorage::Table8) their 8-bit codes as an i8 constant, one per
  /// scales value, and the table of their f32 values; with `tileRows` > 1
  /// the scales (or codes) tiled as row-tiled weights (kernelConstant).
  SmallVector<Value> scaleArgs(MatmulOp op, const MatmulShape &shape,
                               int64_t tileRows = 1,
                               int64_t panelGroups = 0) {
    const bool codes8 = shape.scales == ScaleStorage::Table8;
    Value scales = op.getScales();
    // 8-bit codes are always copied (as i8); other scales only where the
    // kernel reads them rearranged.
    if (codes8 || tileRows > 1 || shape.scaleRows > 1) {
      std::string name =
          linearName(op) + (codes8 ? ".scale_codes" : ".scales");
      if (tileRows == 1 && shape.scaleRows == 1 &&
          !op->getAttrOfType<StringAttr>("nibble.linear"))
        name = "scales";
      scales = kernelConstant(
          scales, shape, tileRows,
          codes8 ? Type(IntegerType::get(op.getContext(), 8))
                 : cast<ShapedType>(scales.getType()).getElementType(),
          name, panelGroups);
    }
    if (!codes8)
      return {scales};
    OpBuilder tb(op);
    Value table = arith::ConstantOp::create(
        tb, op.getLoc(),
        DenseElementsAttr::get(RankedTensorType::get({256}, tb.getF32Type()),
                               ArrayRef<float>(shape.scaleTable)));
    return {scales, table};
  }

  /// `v` (the scales, 8-bit scale codes or zero points of `shape`,
  /// [N / scaleRows, G] elements of `elem`: an arith.constant or a
  /// nibble.constant) as a kernel reads it: one row per output row (rows
  /// shared by scaleRows output rows repeated), [N, G] with `R` = 1, or
  /// tiled like row-tiled weights, [N/R * G, R]: one row per tile of R
  /// output rows and group, in the weights' order (tile after tile, or with
  /// K panels of `panelGroups` groups panel after panel, each tile after
  /// tile), output row n's element in lane n % R. Named `name`, plus
  /// ".rowtile<R>" (and ".kpanel<columns>") when tiled or ".per_row" when
  /// rows repeat; one per constant, tiling and sharing, after the constant.
  Value kernelConstant(Value v, const MatmulShape &shape, int64_t R,
                       Type elem, std::string name, int64_t panelGroups = 0) {
    Operation *def = v.getDefiningOp();
    const int64_t n = shape.n, groups = shape.k / shape.group;
    const int64_t PG =
        panelGroups > 0 && panelGroups < groups ? panelGroups : groups;
    Value &cached = kernelConstants[{def, R, shape.scaleRows, PG}];
    if (cached)
      return cached;
    std::vector<uint8_t> src = definingBytes(def);
    const size_t eb = size_t(elem.getIntOrFloatBitWidth() / 8);
    std::vector<uint8_t> out(size_t(n * groups) * eb);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        // (tile, group) row: the panels before, the panel's tiles
        // before, the group within the tile's panel.
        const int64_t p0 = g / PG * PG, len = std::min(PG, groups - p0);
        const int64_t row = p0 * (n / R) + (r / R) * len + (g - p0);
        std::memcpy(&out[size_t(row * R + r % R) * eb],
                    &src[size_t((r / shape.scaleRows) * groups + g) * eb], eb);
      }
    SmallVector<int64_t> dims = {n, groups};
    if (R > 1) {
      dims = {n / R * groups, R};
      name += ".rowtile" + std::to_string(R);
      if (PG < groups)
        name += ".kpanel" + std::to_string(PG * shape.group);
    } else if (shape.scaleRows > 1) {
      name += ".per_row";
    }
    OpBuilder b(def);
    b.setInsertionPointAfter(def);
    cached = byteConstant(b, def->getLoc(), dims, name, out, elem);
    return cached;
  }

  void rewriteWeightOnly(MatmulOp op, const WeightOnlyKernel &key,
                         const MatmulShape &shape) {
    Fusion fusion = fusionOf(op);
    std::string name = key.name() + fusion.key();
    func::FuncOp fn = kernel(name, [&] {
      return buildWeightOnly(getOperation(), key, fusion.epilogue(),
                             fusion.quantize(), name);
    });
    Value w = key.tiled()
                  ? packedWeights(op, 1, false, key.layout(),
                                  key.decode == WeightDecode::SignedInt,
                                  false, key.rowTile, unsigned(key.storeBits))
                  : packedWeights(op, key.storeBits == 4 ? 32 : 1, false,
                                  key.layout(),
                                  key.decode == WeightDecode::SignedInt ||
                                      key.decode == WeightDecode::ByteFloat,
                                  /*split6=*/key.storeBits == 6);
    callKernel(op, fn, {op.getInput(), w}, shape, fusion, key.rowTile);
  }

  /// Calls `fn` with `args` (the activations and packed weights), then the
  /// scale arguments, the zero points if any (both tiled as the weights
  /// with `tileRows` > 1, in K panels of `panelGroups` if that is set),
  /// the output and the whole row range, where the result is needed
  /// (emitCall).
  void callKernel(MatmulOp op, func::FuncOp fn, SmallVector<Value> args,
                  const MatmulShape &shape, const Fusion &fusion,
                  int64_t tileRows = 1, int64_t panelGroups = 0) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    args.append(scaleArgs(op, shape, tileRows, panelGroups));
    if (shape.zeroPoints)
      args.push_back(tileRows > 1 || shape.scaleRows > 1
                         ? kernelConstant(op.getZeroPoints(), shape, tileRows,
                                          shape.zeroPointType,
                                          linearName(op) + ".zero_points",
                                          panelGroups)
                         : op.getZeroPoints());
    args.append({tensor::EmptyOp::create(b, loc,
                                         ArrayRef<int64_t>{shape.m, shape.n},
                                         b.getF32Type()),
                 arith::ConstantIndexOp::create(b, loc, 0),
                 arith::ConstantIndexOp::create(b, loc, shape.n)});
    emitCall(op, fn, args, fusion);
  }

  /// Quantized activations: int8 codes [M,K], per-group code sums
  /// [M,K/G] and per-row scales [M] (the ActQuantizer's results).
  struct QuantizedActs {
    Value xq, xsum, xs;
  };

  /// The quantized activations of `x` for groups of `group`, shared by
  /// every integer matmul reading x with the same grouping and scale: from
  /// the kernel producing x when it quantized them in its store, else from
  /// a generated quantizer called after x is defined.
  QuantizedActs quantizedInput(MatmulOp op, int64_t group) {
    Value x = op.getInput();
    const float fixed = staticActScale(op);
    auto key = quantKey(x, group, fixed);
    if (auto it = quantized.find(key); it != quantized.end())
      return it->second;
    auto xType = cast<RankedTensorType>(x.getType());
    ActQuantizer q{xType.getDimSize(0), xType.getDimSize(1), group};
    func::FuncOp fn = kernel(q.name(), [&] {
      return buildActQuantizer(getOperation(), q);
    });
    OpBuilder b(op.getContext());
    if (Operation *def = x.getDefiningOp())
      b.setInsertionPointAfter(def);
    else
      b.setInsertionPointToStart(cast<BlockArgument>(x).getOwner());
    Location loc = x.getLoc();
    auto empty = [&](ArrayRef<int64_t> shape, Type t) {
      return tensor::EmptyOp::create(b, loc, shape, t).getResult();
    };
    auto call = func::CallOp::create(
        b, loc, fn,
        ValueRange{x,
                   arith::ConstantOp::create(b, loc, b.getF32FloatAttr(fixed)),
                   empty({q.m, q.k}, b.getI8Type()),
                   empty({q.m, q.k / group}, b.getF32Type()),
                   empty({q.m}, b.getF32Type())});
    QuantizedActs acts{call.getResult(0), call.getResult(1),
                       call.getResult(2)};
    quantized[key] = acts;
    return acts;
  }

  void rewriteIntDot(MatmulOp op, const IntDotKernel &key,
                     const MatmulShape &shape) {
    Fusion fusion = fusionOf(op);
    std::string name = key.name() + fusion.key();
    func::FuncOp fn = kernel(name, [&] {
      return buildIntDot(getOperation(), key, fusion.epilogue(),
                         fusion.quantize(), name);
    });
    QuantizedActs q = quantizedInput(op, key.group);
    std::string layout =
        std::string(key.unsignedFormat ? "uint" : "int") +
        std::to_string(key.bits) +
        (key.tiled() ? "-rowtile" + std::to_string(key.rowTile)
         : key.bits == 4 ? "-interleave" + std::to_string(key.blockCodes())
                         : std::string("-dense"));
    if (key.flipSign())
      layout += "-offset";
    const int64_t panelCols = key.panelGroups * key.group;
    if (key.paneled())
      layout += "-kpanel" + std::to_string(panelCols);
    Value w = packedWeights(op, key.bits == 4 ? key.blockCodes() : 1,
                            key.flipSign(), layout, false, false,
                            key.rowTile, 0, panelCols);
    callKernel(op, fn, {q.xq, q.xs, q.xsum, w}, shape, fusion, key.rowTile,
               key.panelGroups);
  }

  /// Quantized activations are shared by input value, grouping and scale.
  using QuantKey = std::tuple<const void *, int64_t, float>;
  static QuantKey quantKey(Value x, int64_t group, float scale) {
    return {x.getAsOpaquePointer(), group, scale};
  }

  Capabilities caps;
  llvm::StringMap<func::FuncOp> kernels;
  std::map<std::pair<Operation *, std::string>, Value> packed;
  /// kernelConstant's constants, by source constant, tile rows, rows per
  /// scale and groups per K panel.
  std::map<std::tuple<Operation *, int64_t, int64_t, int64_t>, Value>
      kernelConstants;
  std::map<QuantKey, QuantizedActs> quantized;
};

} // namespace
