//===- KernelsTest.cpp - Generated CPU kernels == the reference lowering --===//
//
// Every matmul the kernel generator covers is run twice through the JIT:
// once with the reference lowering (the oracle) and once with the
// generated vector kernel for this machine; results must agree within
// 1e-5 of sum_k |x| |w| (the kernel sums per group, then scales: another
// rounding order), on random and adversarial data. Weight-only cases and
// the integer-dot (W4A8 / W8A8, dynamic and static activation scales)
// cases; the latter skip on a machine without an 8-bit dot product.
//
//===----------------------------------------------------------------------===//

#include "JitSupport.h"

#include "nibble/Formats/Format.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Target/TargetSpec.h"

#include "mlir/Parser/Parser.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <regex>
#include <sstream>

namespace {

enum class Act { None, Dynamic, Static };

/// How the group scales are stored: f32, f16, bf16, E8M0 (MX formats), or
/// e4m3 codes with one f32 scale per tensor (a two-level scheme).
enum class Scale { F32, F16, BF16, E8M0, TwoLevelE4M3 };

struct Case {
  int64_t m, n, k, group; // group == k: per output row
  const char *format;     // nibble::formats::Format::byName
  bool adversarial;
  Act act = Act::None;
  bool zeroPoints = false;
  Scale scale = Scale::F32;
  const char *zeroPointType = "f32"; // f32, f16, bf16, i8, i16, i32
  // Output rows per row of scales: 1 (groups, per channel), R of
  // block<R x group>, or n with group == k: per_tensor.
  int64_t scaleRows = 1;
  // nibble-generate-kernels' k-panel-bytes: small ones cut short rows
  // into K panels (-1: the pass's default).
  int64_t kPanelBytes = -1;
};

const char *scaleName(Scale s) {
  switch (s) {
  case Scale::F32:
    return "f32";
  case Scale::F16:
    return "f16";
  case Scale::BF16:
    return "bf16";
  case Scale::E8M0:
    return "f8E8M0FNU";
  case Scale::TwoLevelE4M3:
    return "e4m3fn x f32";
  }
  return "";
}

/// The per-tensor scale of Scale::TwoLevelE4M3.
constexpr float kTensorScale = 0.0123f;

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.format << " m" << c.m << " n" << c.n << " k" << c.k << " g"
      << c.group << (c.adversarial ? " adversarial" : "")
      << (c.zeroPoints ? std::string(" zero-points ") + c.zeroPointType
                       : std::string())
      << (c.scale != Scale::F32 ? std::string(" scales ") + scaleName(c.scale)
                                : std::string())
      << (c.act == Act::Dynamic ? " act-dynamic"
          : c.act == Act::Static ? " act-static"
                                 : "")
      << (c.scaleRows > 1 ? " rows/scale " + std::to_string(c.scaleRows)
                          : std::string())
      << (c.kPanelBytes >= 0 ? " panel-bytes " + std::to_string(c.kPanelBytes)
                             : std::string());
}

/// Custom floats (the byte-float decode with other widths, shifts, masks
/// and rebiases than the fnuz formats'), by test name: 8-bit e3m4
/// finite-only and IEEE-style, 5-bit e2m2, a 6-bit e3m2 with a NaN (not
/// the split fp6 layout, which is for finite-only ones) and a 7-bit e4m2
/// with the fnuz NaN.
struct CustomFloat {
  const char *name, *attr;
  nibble::formats::FloatSpec spec;
};
const CustomFloat kCustomFloats[] = {
    {"e3m4b2", "#nibble.float<e3m4, bias = 2, nonfinite = finite_only>",
     {3, 4, 2, nibble::formats::NonFinite::FiniteOnly}},
    {"e2m2b1", "#nibble.float<e2m2, bias = 1, nonfinite = finite_only>",
     {2, 2, 1, nibble::formats::NonFinite::FiniteOnly}},
    {"e3m2b3nan",
     "#nibble.float<e3m2, bias = 3, nonfinite = nan_only, nan = all_ones>",
     {3, 2, 3, nibble::formats::NonFinite::NanOnly,
      nibble::formats::NanEncoding::AllOnes}},
    {"e3m4ieee", "#nibble.float<e3m4>",
     {3, 4, 3, nibble::formats::NonFinite::IEEE}},
    {"e4m2b8nz",
     "#nibble.float<e4m2, bias = 8, nonfinite = nan_only, nan = "
     "negative_zero>",
     {4, 2, 8, nibble::formats::NonFinite::NanOnly,
      nibble::formats::NanEncoding::NegativeZero}},
};

const CustomFloat *customFloat(const Case &c) {
  for (const CustomFloat &f : kCustomFloats)
    if (std::string(c.format) == f.name)
      return &f;
  return nullptr;
}

nibble::formats::Format formatOf(const Case &c) {
  if (const CustomFloat *f = customFloat(c))
    return *nibble::formats::Format::makeFloat(f->spec);
  return *nibble::formats::Format::byName(c.format);
}

/// The format's attribute in IR syntax.
std::string formatAttr(const Case &c) {
  nibble::formats::Format f = formatOf(c);
  switch (f.kind()) {
  case nibble::formats::Kind::Int:
    return "#nibble.int<" + std::to_string(f.bits()) +
           (f.isSigned() ? ", signed>" : ", unsigned>");
  case nibble::formats::Kind::Lut:
    return std::string("#nibble.lut<") + c.format + ">";
  case nibble::formats::Kind::Float:
    if (const CustomFloat *custom = customFloat(c))
      return custom->attr;
    return std::string("#nibble.float<") + c.format + ">";
  }
  return "";
}

struct Data {
  std::vector<float> x, scales, zeroPoints; // scales: their f32 values
  std::vector<uint32_t> codes;     // [n, k], raw codes
  std::vector<uint8_t> scaleCodes; // E8M0 / TwoLevelE4M3: [n, k / group]
};

Data makeData(const Case &c, uint32_t seed) {
  std::mt19937 rng(seed);
  nibble::formats::Format f = formatOf(c);
  // Every code that decodes to a number, and the extremes.
  std::vector<uint32_t> valid;
  uint32_t biggest = 0, lowest = 0, zero = 0;
  for (uint32_t code = 0; code < f.numCodes(); ++code) {
    float v = f.decode(code);
    if (!std::isfinite(v))
      continue;
    valid.push_back(code);
    if (std::fabs(v) > std::fabs(f.decode(biggest)))
      biggest = code;
    if (v < f.decode(lowest))
      lowest = code;
    if (v == 0.0f)
      zero = code;
  }
  std::uniform_int_distribution<size_t> pick(0, valid.size() - 1);
  std::uniform_real_distribution<float> u(-2, 2), s(0.01f, 0.3f);
  Data d;
  d.x.resize(size_t(c.m * c.k));
  for (float &v : d.x)
    v = u(rng);
  d.codes.resize(size_t(c.n * c.k));
  for (uint32_t &v : d.codes)
    v = valid[pick(rng)];
  const int64_t groups = c.k / c.group;
  d.scales.resize(size_t(c.n / c.scaleRows * groups));
  for (float &v : d.scales)
    v = s(rng);
  if (c.zeroPoints) {
    // Around the middle of the format's range.
    std::uniform_real_distribution<float> z(f.decode(lowest) * 0.5f,
                                            f.decode(biggest) * 0.5f + 1);
    d.zeroPoints.resize(d.scales.size());
    for (float &v : d.zeroPoints)
      v = std::round(z(rng));
  }
  if (c.adversarial) {
    for (int64_t j = 0; j < c.k; ++j) {
      d.codes[size_t(0 * c.k + j)] = biggest; // largest magnitude
      d.codes[size_t(1 * c.k + j)] = lowest;
      if (j < c.group)
        d.codes[size_t(2 * c.k + j)] = zero; // an all-zero group
    }
    if (d.scales.size() > size_t(3 * groups))
      d.scales[size_t(3 * groups)] = 0; // a zero scale
    for (int64_t j = 0; j < c.k; ++j)
      d.x[size_t(j)] = (j % 2 ? 1e3f : -1e3f); // large activations
  }
  if (c.scale == Scale::E8M0 || c.scale == Scale::TwoLevelE4M3) {
    // 8-bit scale codes: powers of two 2^-9 .. 2^1, or positive e4m3
    // values (0x08 .. 0x7E: no NaN) times the tensor scale; adversarial:
    // the smallest E8M0 scale (2^-127, an f32 subnormal) or e4m3 zero.
    nibble::formats::Format e4m3 = *nibble::formats::Format::byName("e4m3fn");
    std::uniform_int_distribution<int> e8(118, 128), e4(0x08, 0x7E);
    d.scaleCodes.resize(d.scales.size());
    for (size_t i = 0; i < d.scales.size(); ++i) {
      uint8_t code = uint8_t(c.scale == Scale::E8M0 ? e8(rng) : e4(rng));
      if (c.adversarial && i == size_t(3 * groups))
        code = 0;
      d.scaleCodes[i] = code;
      d.scales[i] = c.scale == Scale::E8M0
                        ? std::ldexp(1.0f, int(code) - 127)
                        : e4m3.decode(code) * kTensorScale;
    }
  }
  return d;
}

std::string hexString(const std::vector<uint8_t> &bytes) {
  static const char *digits = "0123456789ABCDEF";
  std::string s = "\"0x";
  for (uint8_t v : bytes) {
    s += digits[v >> 4];
    s += digits[v & 15];
  }
  return s + "\"";
}

std::string matrix(const std::vector<float> &v, int64_t rows, int64_t cols,
                   const char *elem = "f32") {
  std::ostringstream os;
  os.precision(9);
  os << std::scientific; // "0" would not parse as a float
  const bool integer = elem[0] == 'i';
  os << "dense<[";
  for (int64_t r = 0; r < rows; ++r) {
    os << (r ? ", [" : "[");
    for (int64_t g = 0; g < cols; ++g) {
      os << (g ? ", " : "");
      if (integer) // whole numbers (zero points)
        os << int64_t(v[size_t(r * cols + g)]);
      else
        os << v[size_t(r * cols + g)];
    }
    os << "]";
  }
  os << "]> : tensor<" << rows << "x" << cols << "x" << elem << ">";
  return os.str();
}

std::string moduleText(const Case &c, const Data &d) {
  const unsigned bits = unsigned(formatOf(c).bits());
  std::vector<uint8_t> codes(d.codes.size());
  for (size_t i = 0; i < codes.size(); ++i)
    codes[i] = uint8_t(d.codes[i]);
  std::vector<uint8_t> packed(
      nibble::formats::packedByteCount(codes.size(), bits));
  nibble::formats::packCodes(codes.data(), codes.size(), bits,
                             packed.data());
  const int64_t groups = c.k / c.group;
  std::ostringstream os;
  std::string gran =
      c.scaleRows == c.n && c.group == c.k ? "per_tensor"
      : c.scaleRows > 1 ? "block<" + std::to_string(c.scaleRows) + "x" +
                              std::to_string(c.group) + ">"
      : c.group == c.k  ? "per_channel<0>"
                        : "group<1, " + std::to_string(c.group) + ">";
  const int64_t scaleRowCount = c.n / c.scaleRows;
  const std::string dims =
      std::to_string(scaleRowCount) + "x" + std::to_string(groups);
  const bool twoLevel = c.scale == Scale::TwoLevelE4M3;
  const char *elem = twoLevel ? "f32" : scaleName(c.scale);
  std::string sT = "tensor<" + dims + "x" + elem + ">";
  const std::string inner =
      "#nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>";
  std::string fT = "tensor<" + dims + "x" + c.zeroPointType + ">";
  if (twoLevel)
    sT = "!nibble.qtensor<" + dims + ", " + inner + ">";
  os << "!w = !nibble.qtensor<" << c.n << "x" << c.k << ", #nibble.scheme<"
     << formatAttr(c) << ", " << gran << ", scale = " << elem
     << (c.zeroPoints ? std::string(", zero_point = ") + c.zeroPointType
                      : std::string())
     << (twoLevel ? ", scale_scheme = " + inner : std::string()) << ">>\n";
  os << "func.func @forward(%x: tensor<" << c.m << "x" << c.k
     << "xf32>) -> tensor<" << c.m << "x" << c.n << "xf32> {\n";
  os << "  %w = nibble.constant dense<[";
  for (size_t i = 0; i < packed.size(); ++i)
    os << (i ? ", " : "") << int(int8_t(packed[i]));
  os << "]> : tensor<" << packed.size() << "xi8> -> !w\n";
  if (twoLevel)
    os << "  %s = nibble.constant dense<" << hexString(d.scaleCodes)
       << "> : tensor<" << d.scaleCodes.size() << "xi8> -> " << sT << "\n"
       << "  %ss = arith.constant dense<" << std::scientific << kTensorScale
       << std::defaultfloat << "> : tensor<1x1xf32>\n";
  else if (c.scale == Scale::E8M0)
    os << "  %s = arith.constant dense<" << hexString(d.scaleCodes)
       << "> : " << sT << "\n";
  else
    os << "  %s = arith.constant " << matrix(d.scales, scaleRowCount, groups, elem)
       << "\n";
  if (c.zeroPoints)
    os << "  %z = arith.constant "
       << matrix(d.zeroPoints, scaleRowCount, groups, c.zeroPointType)
       << "\n";
  std::string attrs;
  if (c.act != Act::None)
    attrs = std::string(" {act_format = #nibble.int<8, signed>") +
            // A static scale small enough that some activations saturate.
            (c.act == Act::Static ? ", act_scale = 1.0e-02 : f32" : "") + "}";
  os << "  %y = nibble.matmul %x, %w scales(%s : " << sT << ")"
     << (c.zeroPoints ? " zero_points(%z : " + fT + ")" : "")
     << (twoLevel ? " scale_scales(%ss : tensor<1x1xf32>)" : "") << attrs
     << " : tensor<" << c.m << "x" << c.k << "xf32>, !w -> "
     << "tensor<" << c.m << "x" << c.n << "xf32>\n";
  os << "  return %y : tensor<" << c.m << "x" << c.n << "xf32>\n}\n";
  return os.str();
}

/// Parses `text`, optionally runs nibble-generate-kernels for this machine
/// (then `inspect` sees the rewritten module), lowers the rest with the
/// reference pipeline, JITs it and runs @forward on x [m, k] -> y [m, n].
std::vector<float> runForward(const std::string &text, const char *target,
                              std::vector<float> x, int64_t m, int64_t k,
                              int64_t n,
                              const std::function<void(mlir::ModuleOp)> &inspect) {
  nibble::jit::Context ctx;
  auto module = mlir::parseSourceString<mlir::ModuleOp>(text, ctx.ctx.get());
  EXPECT_TRUE(module);
  if (!module)
    return {};
  auto fn = module->lookupSymbol<mlir::func::FuncOp>("forward");
  fn->setAttr("llvm.emit_c_interface", mlir::UnitAttr::get(ctx.ctx.get()));
  if (target) {
    mlir::PassManager gen(ctx.ctx.get());
    EXPECT_TRUE(mlir::succeeded(mlir::parsePassPipeline(
        std::string("nibble-generate-kernels{target=") + target + "}", gen)));
    EXPECT_TRUE(mlir::succeeded(gen.run(*module)));
    if (inspect)
      inspect(*module);
  }
  mlir::PassManager pm(ctx.ctx.get());
  mlir::nibble::ReferencePipelineOptions opts;
  EXPECT_TRUE(
      mlir::succeeded(mlir::nibble::buildReferenceToLLVMPipeline(pm, opts)));
  EXPECT_TRUE(mlir::succeeded(pm.run(*module)));
  auto engine = mlir::ExecutionEngine::create(*module);
  EXPECT_TRUE(bool(engine));
  if (!engine)
    return {};
  auto sym = (*engine)->lookup("_mlir_ciface_forward");
  EXPECT_TRUE(bool(sym));
  if (!sym)
    return {};
  using Fn = void (*)(nibble::jit::MemRef<float, 2> *,
                      nibble::jit::MemRef<float, 2> *);
  nibble::jit::MemRef<float, 2> arg{x.data(), x.data(), 0, {m, k}, {k, 1}};
  nibble::jit::MemRef<float, 2> result{};
  reinterpret_cast<Fn>(*sym)(&result, &arg);
  std::vector<float> y(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      y[size_t(i * n + j)] =
          result.aligned[result.offset + i * result.strides[0] +
                         j * result.strides[1]];
  std::free(result.allocated);
  return y;
}

/// Whether kernel `f` is cut into K panels (IntDotKernel::name(): "_p<groups>"
/// before the shape).
bool isPaneled(mlir::func::FuncOp f) {
  return std::regex_search(f.getSymName().str(), std::regex("_p[0-9]+_m"));
}

/// Runs @forward on x; `target` (null: the reference lowering) selects the
/// generated path, whose kernels are counted into `kernelFuncs` and those
/// of them cut into K panels (named `_p<groups>_`) into `paneled`.
std::vector<float> run(const Case &c, const Data &d, const char *target,
                       int *kernelFuncs, int *paneled = nullptr) {
  std::string options;
  if (target)
    options = std::string(target) +
              (c.kPanelBytes >= 0
                   ? " k-panel-bytes=" + std::to_string(c.kPanelBytes)
                   : std::string());
  return runForward(moduleText(c, d), target ? options.c_str() : nullptr,
                    d.x, c.m, c.k, c.n, [&](mlir::ModuleOp module) {
                      *kernelFuncs = 0;
                      if (paneled)
                        *paneled = 0;
                      module->walk([&](mlir::func::FuncOp f) {
                        if (!f->hasAttr("nibble.kernel"))
                          return;
                        ++*kernelFuncs;
                        if (paneled && isPaneled(f))
                          ++*paneled;
                      });
                    });
}

/// |got - want| <= 1e-5 * sum_k |x| |w| per output.
void expectClose(const Case &c, const Data &d, const std::vector<float> &got,
                 const std::vector<float> &want) {
  const int64_t groups = c.k / c.group;
  nibble::formats::Format f = formatOf(c);
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double mag = 0;
      for (int64_t kk = 0; kk < c.k; ++kk) {
        size_t g = size_t(j / c.scaleRows * groups + kk / c.group);
        double w = f.decode(d.codes[size_t(j * c.k + kk)]);
        if (c.zeroPoints)
          w -= d.zeroPoints[g];
        mag += std::fabs(d.x[size_t(i * c.k + kk)]) *
               std::fabs(w * d.scales[g]);
      }
      size_t at = size_t(i * c.n + j);
      EXPECT_LE(std::fabs(got[at] - want[at]), 1e-5 * mag + 1e-30)
          << "m " << i << " n " << j << ": " << got[at] << " vs " << want[at];
    }
}

class KernelsTest : public ::testing::TestWithParam<Case> {};

TEST_P(KernelsTest, EqualsTheReferenceLowering) {
  const Case c = GetParam();
  if (c.act != Act::None) {
    std::string error;
    auto native = nibble::target::TargetSpec::parse("native", error);
    ASSERT_TRUE(native) << error;
    if (!native->has("avx512vnni") && !native->has("avxvnni") &&
        !native->has("dotprod"))
      GTEST_SKIP() << "this machine (" << native->describe()
                   << ") has no 8-bit dot product: the integer path is "
                      "checked in assembly only (lit)";
  }
  Data d = makeData(c, 7);
  std::vector<float> want = run(c, d, nullptr, nullptr);
  // Weight-only kernels are also generated for AVX2 (another table lookup)
  // and run here when this machine can.
  std::vector<const char *> targets = {"native"};
  std::string error;
  auto native = nibble::target::TargetSpec::parse("native", error);
  ASSERT_TRUE(native) << error;
  if (c.act == Act::None && native->has("avx512f") && native->has("avx2") &&
      native->has("fma"))
    targets.push_back("x86-64-v3");
  for (const char *target : targets) {
    SCOPED_TRACE(target);
    int kernelFuncs = 0, paneled = 0;
    std::vector<float> got = run(c, d, target, &kernelFuncs, &paneled);
    // The integer path adds the activation quantizer.
    EXPECT_EQ(kernelFuncs, c.act == Act::None ? 1 : 2)
        << "the generated path was not taken";
    if (c.kPanelBytes > 0) {
      EXPECT_EQ(paneled, 1) << "the kernel was not cut into K panels";
      // Panels add the same products in the same order: bit for bit the
      // kernel without them.
      Case whole = c;
      whole.kPanelBytes = 0;
      std::vector<float> unpaneled = run(whole, d, target, &kernelFuncs,
                                         &paneled);
      EXPECT_EQ(paneled, 0);
      ASSERT_EQ(unpaneled.size(), got.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(std::memcmp(&got[i], &unpaneled[i], sizeof(float)), 0)
            << "output " << i << ": " << got[i] << " with panels, "
            << unpaneled[i] << " without";
    }
    ASSERT_EQ(got.size(), want.size());
    expectClose(c, d, got, want);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, KernelsTest,
    ::testing::Values(Case{1, 48, 256, 32, "int4", false},
                      Case{3, 40, 128, 64, "int4", true},
                      Case{2, 24, 96, 96, "int4", true},   // per output row
                      Case{17, 8, 64, 32, "int4", false},  // many accumulators
                      Case{2, 33, 64, 32, "int8", true},
                      Case{1, 16, 256, 128, "int8", false},
                      // Every other weight-only family: narrow and wide
                      // integers, unsigned with zero points, tables, fp8.
                      Case{2, 20, 128, 32, "int3", true},
                      Case{1, 24, 64, 64, "int2", false},
                      Case{3, 18, 96, 32, "int6", true},
                      Case{2, 40, 256, 128, "uint4", true, Act::None, true},
                      Case{2, 17, 64, 16, "uint8", false, Act::None, true},
                      Case{1, 21, 128, 32, "nf4", true},
                      Case{4, 19, 128, 64, "e2m1fn", false},
                      Case{1, 36, 256, 32, "e2m1fn", true, Act::None, true},
                      Case{2, 23, 128, 128, "e4m3fn", true},
                      Case{1, 22, 96, 32, "e5m2", true},
                      // fnuz fp8 through f32 bit patterns: every code
                      // (subnormals, the top binade) in the random data.
                      Case{2, 21, 128, 32, "e4m3fnuz", true},
                      Case{1, 19, 256, 128, "e5m2fnuz", false},
                      Case{3, 17, 64, 64, "e5m2fnuz", true},
                      Case{2, 18, 128, 32, "e3m4b2", true},
                      // 5-, 6- and 7-bit floats in bytes, the same decode.
                      Case{1, 20, 128, 32, "e2m2b1", true},
                      Case{3, 17, 64, 64, "e2m2b1", false},
                      Case{2, 19, 96, 32, "e3m2b3nan", true},
                      Case{1, 18, 128, 128, "e4m2b8nz", true},
                      // IEEE-style: finite codes only (the encoder's).
                      Case{2, 18, 64, 32, "e3m4ieee", true},
                      Case{2, 17, 64, 16, "e4m2b8nz", false, Act::None,
                           true, Scale::F16, "f16"},
                      // fp6 in the 4+2 split layout (64-code steps).
                      Case{2, 20, 128, 64, "e2m3fn", true},
                      Case{1, 17, 256, 128, "e3m2fn", false},
                      Case{3, 9, 192, 192, "e3m2fn", true}, // per row
                      // Scales stored narrower than f32: f16 / bf16
                      // (q4_0-style), E8M0 (MXFP4, MXFP8, MXINT8) and
                      // NVFP4-style e4m3 codes times a tensor scale.
                      Case{2, 24, 128, 32, "int4", true, Act::None, false,
                           Scale::F16},
                      Case{1, 20, 128, 64, "int8", false, Act::None, false,
                           Scale::BF16},
                      Case{2, 21, 128, 32, "e2m1fn", true, Act::None, false,
                           Scale::E8M0},
                      Case{1, 18, 96, 32, "e4m3fn", true, Act::None, false,
                           Scale::E8M0},
                      Case{3, 17, 64, 32, "int8", false, Act::None, false,
                           Scale::E8M0},
                      Case{2, 19, 128, 32, "e2m1fn", true, Act::None, false,
                           Scale::TwoLevelE4M3},
                      // Groups narrower than the step: NVFP4-style (16
                      // nibbles of a 32-code step), int4 g16, fp6 g32 / g16.
                      Case{3, 18, 128, 16, "e2m1fn", true, Act::None, false,
                           Scale::TwoLevelE4M3},
                      Case{1, 20, 64, 16, "int4", true},
                      Case{2, 17, 128, 32, "e2m3fn", true},
                      Case{1, 9, 128, 16, "e3m2fn", false},
                      // Zero points: with groups narrower than the step,
                      // stored as f16 beside f16 scales (AWQ / GPTQ style),
                      // as integers (quant-dialect i32), with 8-bit scale
                      // codes.
                      Case{2, 20, 128, 16, "uint4", true, Act::None, true},
                      Case{1, 18, 128, 32, "uint4", true, Act::None, true,
                           Scale::F16, "f16"},
                      Case{3, 17, 64, 32, "uint8", false, Act::None, true,
                           Scale::BF16, "i32"},
                      Case{2, 19, 128, 16, "int4", true, Act::None, true,
                           Scale::E8M0, "i8"},
                      Case{1, 17, 128, 32, "e2m3fn", true, Act::None, true,
                           Scale::F32, "bf16"},
                      // Weight-only integers row-tiled (N a multiple of
                      // 16; nibbles on AVX-512, bytes on every target):
                      // one activation row (four FMA chains), two, row
                      // tiles of four with a tail, groups from 16 codes to
                      // per row, more than 32 steps a group (a loop),
                      // narrow codes widened to nibbles and bytes, zero
                      // points and every scale storage tiled alike.
                      Case{1, 32, 256, 128, "int4", true},
                      Case{2, 32, 128, 32, "int4", false},
                      Case{3, 48, 256, 64, "int4", true},
                      Case{5, 16, 128, 16, "int4", true},
                      Case{17, 16, 64, 32, "int4", false},
                      // Passes of four rows: the first, then a second on
                      // its own and a tail (9), or a loop of them (12).
                      Case{9, 16, 128, 32, "int8", true},
                      Case{12, 32, 128, 16, "uint4", false, Act::None, true},
                      Case{1, 16, 96, 96, "int4", true},
                      Case{2, 16, 1024, 512, "int4", true},
                      Case{1, 32, 128, 32, "int8", true},
                      Case{3, 16, 512, 256, "int8", false},
                      Case{2, 16, 128, 32, "int3", true},
                      Case{1, 16, 64, 32, "int2", false},
                      Case{1, 32, 64, 64, "int6", true},
                      Case{2, 32, 256, 128, "uint4", true, Act::None, true},
                      Case{1, 16, 128, 32, "uint4", true, Act::None, true,
                           Scale::F16, "f16"},
                      Case{3, 16, 128, 64, "uint8", false, Act::None, true,
                           Scale::BF16, "i32"},
                      Case{2, 32, 128, 32, "int4", true, Act::None, false,
                           Scale::E8M0},
                      Case{1, 16, 128, 16, "int4", true, Act::None, true,
                           Scale::TwoLevelE4M3, "i8"},
                      Case{2, 16, 128, 32, "uint2", true, Act::None, true,
                           Scale::F32, "bf16"},
                      // Tables in the row-tiled nibble layout: NF4, MXFP4,
                      // NVFP4-style g16, fp4 with zero points.
                      Case{1, 32, 128, 32, "nf4", true},
                      Case{2, 32, 128, 32, "e2m1fn", true, Act::None, false,
                           Scale::E8M0},
                      Case{3, 16, 128, 16, "e2m1fn", true, Act::None, false,
                           Scale::TwoLevelE4M3},
                      Case{1, 16, 256, 64, "e2m1fn", false, Act::None, true},
                      // per_tensor and 2-D block scales (one scale for
                      // R output rows): rows repeated for the kernels, on
                      // the row-tiled and the one-row layouts.
                      Case{1, 32, 128, 128, "int8", true, Act::None, false,
                           Scale::F32, "f32", 32},
                      Case{2, 48, 256, 128, "int4", false, Act::None, true,
                           Scale::F32, "i8", 16},
                      Case{3, 40, 128, 32, "e4m3fn", true, Act::None, false,
                           Scale::F16, "f32", 8},
                      Case{1, 32, 128, 32, "e2m1fn", false, Act::None, false,
                           Scale::E8M0, "f32", 32},
                      Case{2, 24, 96, 96, "e5m2", false, Act::None, false,
                           Scale::F32, "f32", 24},
                      // Integer dot products (W4A8, W8A8).
                      Case{1, 40, 256, 128, "int4", false, Act::Dynamic},
                      Case{3, 36, 512, 256, "int4", true, Act::Dynamic},
                      Case{7, 20, 256, 256, "int4", false, Act::Static},
                      Case{1, 24, 192, 64, "int8", true, Act::Dynamic},
                      Case{5, 17, 128, 128, "int8", false, Act::Static},
                      Case{32, 9, 128, 128, "int4", false, Act::Dynamic},
                      Case{10, 32, 128, 64, "uint8", true, Act::Dynamic,
                           true},
                      // W8A8 with one weight scale per tensor (SmoothQuant-
                      // style), W4A8 with 16x64 blocks and zero points.
                      Case{1, 32, 256, 256, "int8", true, Act::Dynamic, false,
                           Scale::F32, "f32", 32},
                      Case{3, 48, 256, 64, "uint4", false, Act::Static, true,
                           Scale::F32, "f32", 16},
                      // Unsigned weights, with and without zero points
                      // (asymmetric W4A8 / W8A8): the zero point joins the
                      // offset correction.
                      Case{2, 40, 256, 128, "uint4", true, Act::Dynamic, true},
                      Case{3, 20, 512, 256, "uint4", false, Act::Static,
                           true},
                      Case{2, 18, 128, 64, "uint8", true, Act::Dynamic, true},
                      Case{1, 17, 256, 128, "uint8", false, Act::Dynamic},
                      Case{2, 24, 256, 128, "int4", true, Act::Dynamic, true},
                      // 384 groups: the per-group (not per-row) correction.
                      Case{1, 16, 49152, 128, "uint4", false, Act::Dynamic,
                           true},
                      // Scales and zero points stored narrow (GPTQ / AWQ
                      // checkpoints with int8 activations): f16 / bf16
                      // scales, f16 / i32 / i8 zero points, in the per-row
                      // and the per-group correction.
                      Case{2, 20, 256, 128, "int4", true, Act::Dynamic, false,
                           Scale::F16},
                      Case{3, 18, 512, 128, "uint4", true, Act::Dynamic, true,
                           Scale::F16, "f16"},
                      Case{2, 17, 256, 64, "uint8", false, Act::Static, true,
                           Scale::BF16, "i32"},
                      Case{1, 16, 49152, 128, "uint4", true, Act::Dynamic,
                           true, Scale::F16, "i8"},
                      // 8-bit scale codes through their table: E8M0
                      // (MXINT4-style weights, int8 activations) and a
                      // two-level e4m3 x f32 scheme.
                      Case{2, 20, 256, 128, "int4", true, Act::Dynamic, false,
                           Scale::E8M0},
                      Case{1, 18, 256, 128, "uint4", true, Act::Static, true,
                           Scale::TwoLevelE4M3},
                      Case{3, 17, 128, 64, "int8", false, Act::Dynamic, false,
                           Scale::E8M0},
                      // The row-tiled layout (N a multiple of the dot
                      // product's lanes): groups down to 16 codes, odd
                      // group counts, one group per row, activation-row
                      // tiles with a one-row tail, zero points and every
                      // scale storage tiled alike, the table's gather.
                      Case{1, 32, 256, 128, "int4", false, Act::Dynamic},
                      Case{2, 48, 128, 32, "int4", true, Act::Dynamic},
                      Case{3, 32, 256, 64, "int4", true, Act::Static},
                      Case{2, 32, 96, 96, "int4", true, Act::Dynamic},
                      Case{1, 16, 144, 48, "int4", false, Act::Dynamic},
                      Case{17, 32, 128, 32, "int4", false, Act::Dynamic},
                      Case{5, 16, 128, 16, "int8", true, Act::Dynamic},
                      Case{1, 64, 192, 64, "int8", false, Act::Dynamic},
                      Case{2, 32, 256, 128, "uint4", true, Act::Dynamic, true},
                      Case{1, 48, 128, 32, "uint8", true, Act::Static, true,
                           Scale::BF16, "i32"},
                      Case{2, 32, 128, 32, "int4", true, Act::Dynamic, false,
                           Scale::F16},
                      Case{2, 32, 256, 128, "int4", true, Act::Dynamic, false,
                           Scale::E8M0},
                      Case{1, 16, 128, 64, "uint4", true, Act::Dynamic, true,
                           Scale::TwoLevelE4M3, "f16"},
                      // K panels (rows cut so that a panel's activation
                      // codes stay in L1): a shorter last panel (9 groups
                      // in panels of 2), several tiles, activation-row
                      // passes of 4 and a tail, int8, zero points, the
                      // fused store after the last panel only.
                      Case{1, 48, 1152, 128, "int4", true, Act::Dynamic,
                           false, Scale::F32, "f32", 1, 3000},
                      Case{6, 32, 640, 64, "int4", false, Act::Static, true,
                           Scale::F16, "i8", 1, 1500},
                      Case{2, 32, 768, 128, "int8", true, Act::Dynamic,
                           false, Scale::F32, "f32", 1, 5000},
                      Case{1, 16, 512, 32, "uint8", false, Act::Dynamic,
                           true, Scale::E8M0, "f32", 1, 1200}));

} // namespace

namespace {

std::string hexBytes(size_t n, std::mt19937 &rng) {
  std::vector<uint8_t> bytes(n);
  for (uint8_t &v : bytes)
    v = uint8_t(rng() & 0xFF);
  return hexString(bytes);
}

/// SwiGLU (weight-only gate/up, or W4A8 with `intGateUp`), W8A8 down
/// projection + residual, and a biased projection, summed: every epilogue
/// kind the generator fuses. With `downScale` > 0 the down projection's
/// activations have that static scale, and the SwiGLU kernel quantizes
/// them in its store. All weights are in groups of `group`.
std::string epilogueModule(float downScale, int64_t group, bool intGateUp) {
  const std::string sT = "tensor<64x" + std::to_string(64 / group) + "xf32>";
  const std::string gateUpAct =
      intGateUp ? " {act_format = #nibble.int<8, signed>}" : "";
  std::mt19937 rng(11);
  std::ostringstream os;
  os << "!w = !nibble.qtensor<64x64, #nibble.scheme<#nibble.int<4, signed>, "
        "group<1, "
     << group
     << ">, scale = f32>>\n"
        "!w8 = !nibble.qtensor<64x64, #nibble.scheme<#nibble.int<8, signed>, "
        "group<1, "
     << group
     << ">, scale = f32>>\n"
        "#id = affine_map<(d0, d1) -> (d0, d1)>\n"
        "#col = affine_map<(d0, d1) -> (d1)>\n"
        "func.func @forward(%x: tensor<3x64xf32>) -> tensor<3x64xf32> {\n"
     << "  %wg = nibble.constant dense<" << hexBytes(2048, rng)
     << "> : tensor<2048xi8> -> !w\n"
     << "  %wu = nibble.constant dense<" << hexBytes(2048, rng)
     << "> : tensor<2048xi8> -> !w\n"
     << "  %w8 = nibble.constant dense<" << hexBytes(4096, rng)
     << "> : tensor<4096xi8> -> !w8\n"
        "  %s = arith.constant dense<0.05> : "
     << sT
     << "\n"
        "  %bias = arith.constant dense<0.25> : tensor<64xf32>\n"
        "  %g = nibble.matmul %x, %wg scales(%s : "
     << sT << ")" << gateUpAct
     << " : tensor<3x64xf32>, !w -> tensor<3x64xf32>\n"
        "  %u = nibble.matmul %x, %wu scales(%s : "
     << sT << ")" << gateUpAct
     << " : tensor<3x64xf32>, !w -> tensor<3x64xf32>\n"
        "  %e = tensor.empty() : tensor<3x64xf32>\n"
        "  %h = linalg.generic {indexing_maps = [#id, #id, #id], "
        "iterator_types = [\"parallel\", \"parallel\"]} ins(%g, %u : "
        "tensor<3x64xf32>, tensor<3x64xf32>) outs(%e : tensor<3x64xf32>) {\n"
        "  ^bb0(%a: f32, %b: f32, %o: f32):\n"
        "    %n = arith.negf %a : f32\n    %ex = math.exp %n : f32\n"
        "    %one = arith.constant 1.0 : f32\n"
        "    %den = arith.addf %one, %ex : f32\n"
        "    %si = arith.divf %a, %den : f32\n"
        "    %r = arith.mulf %si, %b : f32\n    linalg.yield %r : f32\n"
        "  } -> tensor<3x64xf32>\n"
        "  %d = nibble.matmul %h, %w8 scales(%s : "
     << sT
     << ") "
        "{act_format = #nibble.int<8, signed>"
     << (downScale > 0 ? ", act_scale = " + std::to_string(downScale) +
                             " : f32"
                       : std::string())
     << "} : tensor<3x64xf32>, !w8 -> tensor<3x64xf32>\n"
        "  %res = linalg.generic {indexing_maps = [#id, #id, #id], "
        "iterator_types = [\"parallel\", \"parallel\"]} ins(%x, %d : "
        "tensor<3x64xf32>, tensor<3x64xf32>) outs(%e : tensor<3x64xf32>) {\n"
        "  ^bb0(%a: f32, %b: f32, %o: f32):\n"
        "    %r = arith.addf %a, %b : f32\n    linalg.yield %r : f32\n"
        "  } -> tensor<3x64xf32>\n"
        "  %p = nibble.matmul %x, %wg scales(%s : "
     << sT
     << ") : tensor<3x64xf32>, !w -> tensor<3x64xf32>\n"
        "  %pb = linalg.generic {indexing_maps = [#id, #col, #id], "
        "iterator_types = [\"parallel\", \"parallel\"]} ins(%p, %bias : "
        "tensor<3x64xf32>, tensor<64xf32>) outs(%e : tensor<3x64xf32>) {\n"
        "  ^bb0(%a: f32, %b: f32, %o: f32):\n"
        "    %r = arith.addf %a, %b : f32\n    linalg.yield %r : f32\n"
        "  } -> tensor<3x64xf32>\n"
        "  %both = linalg.add ins(%res, %pb : tensor<3x64xf32>, "
        "tensor<3x64xf32>) outs(%e : tensor<3x64xf32>) -> tensor<3x64xf32>\n"
        "  return %both : tensor<3x64xf32>\n}\n";
  return os.str();
}

// The fused program computes what the unfused reference lowering computes
// (and the generics are really gone). With a static scale on the down
// projection, its activations are quantized in the SwiGLU kernel's store
// (no row quantizer is left); 0.02 saturates the largest |h| (about 2.5).
// With `panels`, groups of 16 and the integer-dot kernels cut into one K
// panel a group: the down projection's residual add is fused into the
// store after the last panel; with `intGateUp` too, gate and up are W4A8
// and SwiGLU (and with a static down scale, the down projection's
// quantization) happen in a paneled kernel's last store.
struct EpilogueCase {
  float downScale;
  bool panels;
  bool intGateUp = false;
};
void PrintTo(const EpilogueCase &c, std::ostream *os) {
  *os << "down scale " << c.downScale << (c.panels ? " panels" : "")
      << (c.intGateUp ? " int gate/up" : "");
}
class KernelEpilogueTest : public ::testing::TestWithParam<EpilogueCase> {};

TEST_P(KernelEpilogueTest, FusedEpiloguesEqualTheReference) {
  const float downScale = GetParam().downScale;
  const bool panels = GetParam().panels;
  const bool intGateUp = GetParam().intGateUp;
  std::string error;
  auto native = nibble::target::TargetSpec::parse("native", error);
  ASSERT_TRUE(native) << error;
  if (!native->has("avx512vnni") && !native->has("avxvnni") &&
      !native->has("dotprod"))
    GTEST_SKIP() << "no 8-bit dot product on " << native->describe();
  const int64_t m = 3, n = 64, k = 64;
  std::vector<float> x(static_cast<size_t>(m * k));
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.5f, 1.5f);
  for (float &v : x)
    v = u(rng);
  int generics = -1, quantizers = -1, quantizingKernels = -1, paneled = -1,
      paneledQuantizing = -1;
  auto runIt = [&](bool kernels) {
    return runForward(epilogueModule(downScale, panels ? 16 : 64, intGateUp),
                      !kernels  ? nullptr
                      : panels ? "native k-panel-bytes=1"
                               : "native",
                      x, m, k, n, [&](mlir::ModuleOp module) {
                        generics = quantizers = quantizingKernels = 0;
                        paneled = paneledQuantizing = 0;
                        module.walk([&](mlir::func::FuncOp f) {
                          if (f.getSymName() == "forward")
                            f.walk([&](mlir::linalg::GenericOp) {
                              ++generics;
                            });
                          auto kind = f->getAttrOfType<mlir::StringAttr>(
                              "nibble.kernel");
                          if (kind && kind.getValue() == "quantize-rows")
                            ++quantizers;
                          const bool cut = kind && isPaneled(f);
                          paneled += cut;
                          // QuantizeOutput::key(): "_q<group>" last.
                          llvm::StringRef name = f.getSymName();
                          size_t q = name.rfind("_q");
                          if (kind && kind.getValue() != "quantize-rows" &&
                              q != llvm::StringRef::npos &&
                              name.substr(q + 2).find_first_not_of(
                                  "0123456789") == llvm::StringRef::npos) {
                            ++quantizingKernels;
                            paneledQuantizing += cut;
                          }
                        });
                      });
  };
  std::vector<float> want = runIt(false);
  std::vector<float> got = runIt(true);
  EXPECT_EQ(generics, 0) << "an epilogue was not fused";
  // Row quantizer functions: one (x's for W4A8 gate/up and h's, same
  // shape, share it) unless SwiGLU's store quantizes h and x needs none.
  EXPECT_EQ(quantizers, intGateUp || downScale == 0 ? 1 : 0);
  EXPECT_EQ(quantizingKernels, downScale > 0 ? 1 : 0);
  EXPECT_EQ(paneled, panels ? (intGateUp ? 3 : 1) : 0);
  EXPECT_EQ(paneledQuantizing, intGateUp && downScale > 0 ? 1 : 0);
  float scale = 0;
  for (float v : want)
    scale = std::max(scale, std::fabs(v));
  ASSERT_GT(scale, 0.0f);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-4 * scale) << "output " << i;
}

INSTANTIATE_TEST_SUITE_P(
    DownScale, KernelEpilogueTest,
    ::testing::Values(EpilogueCase{0.0f, false}, EpilogueCase{0.02f, false},
                      EpilogueCase{0.005f, false}, EpilogueCase{0.0f, true},
                      EpilogueCase{0.02f, true},
                      EpilogueCase{0.0f, true, true},
                      EpilogueCase{0.02f, true, true}),
    [](const ::testing::TestParamInfo<EpilogueCase> &info) {
      const float s = info.param.downScale;
      return (s > 0 ? "static" + std::to_string(int(s * 1000))
                    : std::string("dynamic")) +
             (info.param.panels ? "_panels" : "") +
             (info.param.intGateUp ? "_int_gate_up" : "");
    });

} // namespace
