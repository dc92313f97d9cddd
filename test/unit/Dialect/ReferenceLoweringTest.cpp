//===- ReferenceLoweringTest.cpp - JIT the reference lowering -------------===//
//
// For every format, the reference lowering (nibble-reference-to-llvm,
// executed with MLIR's ExecutionEngine) must give bit-identical quantize ->
// dequantize results to the C++ format library on random data that includes
// exact ties, saturation, tiny values, -0, NaN and infinities; and its matmul
// must match a plain C++ product of the library's dequantized weights.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Formats/Format.h"
#include "nibble/Pipelines/Pipelines.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/TargetSelect.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace fmt = nibble::formats;

namespace {

constexpr int kRows = 8, kCols = 64, kGroup = 32, kBatch = 3;

struct Case {
  std::string name;    // test name
  std::string attr;    // the format attribute in IR
};

std::vector<Case> allCases() {
  std::vector<Case> cases;
  for (int bits = 2; bits <= 8; ++bits) {
    cases.push_back({"int" + std::to_string(bits),
                     "#nibble.int<" + std::to_string(bits) + ", signed>"});
    cases.push_back({"uint" + std::to_string(bits),
                     "#nibble.int<" + std::to_string(bits) + ", unsigned>"});
  }
  for (const char *f : {"e4m3fn", "e5m2", "e4m3fnuz", "e5m2fnuz", "e2m3fn",
                        "e3m2fn", "e2m1fn", "e8m0fnu"})
    cases.push_back({f, std::string("#nibble.float<") + f + ">"});
  cases.push_back({"nf4", "#nibble.lut<nf4>"});
  cases.push_back({"custom_lut", "#nibble.lut<[-3.0, -1.0, -0.5, 0.0, 0.125, 1.0, 2.5]>"});
  cases.push_back({"custom_e3m1", "#nibble.float<e3m1, bias = 2, nonfinite = finite_only>"});
  cases.push_back({"custom_e3m3_nan", "#nibble.float<e3m3, bias = 4, nonfinite = nan_only>"});
  return cases;
}

class ReferenceLoweringTest : public ::testing::TestWithParam<Case> {
protected:
  static void SetUpTestSuite() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    mlir::registerAllPasses();
    mlir::nibble::registerNibblePasses();
  }
};

std::string buildModule(const std::string &format) {
  std::string r = std::to_string(kRows), c = std::to_string(kCols),
              g = std::to_string(kCols / kGroup), b = std::to_string(kBatch);
  std::string q = "!nibble.qtensor<" + r + "x" + c + ", #nibble.scheme<" +
                  format + ", group<1, " + std::to_string(kGroup) +
                  ">, scale = f32>>";
  std::string xt = "tensor<" + r + "x" + c + "xf32>";
  std::string xm = "memref<" + r + "x" + c + "xf32>";
  std::string st = "tensor<" + r + "x" + g + "xf32>";
  std::string sm = "memref<" + r + "x" + g + "xf32>";
  std::string at = "tensor<" + b + "x" + c + "xf32>";
  std::string am = "memref<" + b + "x" + c + "xf32>";
  std::string yt = "tensor<" + b + "x" + r + "xf32>";
  std::string ym = "memref<" + b + "x" + r + "xf32>";
  return "func.func @run(%xm: " + xm + ", %sm: " + sm + ", %om: " + xm +
         ", %am: " + am + ", %ym: " + ym + ") {\n"
         "  %x = bufferization.to_tensor %xm restrict : " + xm + " to " + xt + "\n"
         "  %s = bufferization.to_tensor %sm restrict : " + sm + " to " + st + "\n"
         "  %a = bufferization.to_tensor %am restrict : " + am + " to " + at + "\n"
         "  %q = nibble.quantize %x scales(%s : " + st + ") : " + xt + " -> " + q + "\n"
         "  %d = nibble.dequantize %q scales(%s : " + st + ") : " + q + " -> " + xt + "\n"
         "  %y = nibble.matmul %a, %q scales(%s : " + st + ") : " + at + ", " + q + " -> " + yt + "\n"
         "  bufferization.materialize_in_destination %d in restrict writable %om : (" + xt + ", " + xm + ") -> ()\n"
         "  bufferization.materialize_in_destination %y in restrict writable %ym : (" + yt + ", " + ym + ") -> ()\n"
         "  return\n}\n";
}

TEST_P(ReferenceLoweringTest, MatchesFormatLibrary) {
  mlir::DialectRegistry registry;
  mlir::nibble::registerCompilerDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();

  std::string src = buildModule(GetParam().attr);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(src, &ctx);
  ASSERT_TRUE(module) << src;

  // The library's view of the same format, through the attribute interface.
  auto formatAttr = mlir::cast<mlir::nibble::NumberFormatAttrInterface>(
      mlir::parseAttribute(GetParam().attr, &ctx));
  fmt::Format f = formatAttr.getFormat();

  mlir::PassManager pm(&ctx);
  mlir::nibble::ReferencePipelineOptions opts;
  opts.barePtrCallConv = true;
  ASSERT_TRUE(mlir::succeeded(mlir::nibble::buildReferenceToLLVMPipeline(pm, opts)));
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));

  auto engine = mlir::ExecutionEngine::create(*module);
  ASSERT_TRUE(bool(engine)) << llvm::toString(engine.takeError());

  // Data: per group, scale = absmax / max so the full range is used, then
  // some elements pushed to exact representable values, midpoints (ties),
  // beyond the range, tiny, -0, NaN and +-Inf.
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kRows * kCols), s(kRows * (kCols / kGroup));
  std::vector<float> values = f.representableValues();
  for (int r = 0; r < kRows; ++r)
    for (int g = 0; g < kCols / kGroup; ++g) {
      float absmax = 0;
      for (int k = 0; k < kGroup; ++k) {
        float v = normal(rng) * (1 + r);
        x[r * kCols + g * kGroup + k] = v;
        absmax = std::max(absmax, std::fabs(v));
      }
      s[r * (kCols / kGroup) + g] = absmax / f.maxValue() * (g ? 1.0f : 0.5f);
    }
  for (int i = 0; i < kRows * kCols; i += 5) {
    float scale = s[(i / kCols) * (kCols / kGroup) + (i % kCols) / kGroup];
    size_t j = rng() % values.size();
    switch ((i / 5) % 6) {
    case 0: x[i] = values[j] * scale; break;
    case 1:
      if (j + 1 < values.size())
        x[i] = float(0.5 * (double(values[j]) + values[j + 1])) * scale;
      break;
    case 2: x[i] = -0.0f; break;
    case 3: x[i] = 1e-30f; break;
    case 4: x[i] = (i % 2 ? 1e30f : -1e30f); break;
    default: break;
    }
  }
  x[7] = NAN;
  x[13] = INFINITY;
  x[21] = -INFINITY;
  std::vector<float> a(kBatch * kCols);
  for (float &v : a)
    v = normal(rng);

  std::vector<float> out(kRows * kCols, 12345.0f), y(kBatch * kRows, 12345.0f);
  float *px = x.data(), *ps = s.data(), *po = out.data(), *pa = a.data(),
        *py = y.data();
  llvm::SmallVector<void *> args = {&px, &ps, &po, &pa, &py};
  llvm::Error err = (*engine)->invokePacked("run", args);
  ASSERT_FALSE(bool(err)) << llvm::toString(std::move(err));

  std::vector<float> deq(kRows * kCols);
  int mismatches = 0;
  for (int i = 0; i < kRows * kCols; ++i) {
    float scale = s[(i / kCols) * (kCols / kGroup) + (i % kCols) / kGroup];
    float want = fmt::dequantizeScalar(f, fmt::quantizeScalar(f, x[i], scale),
                                       scale);
    deq[i] = want;
    uint32_t wb, gb;
    std::memcpy(&wb, &want, 4);
    std::memcpy(&gb, &out[i], 4);
    bool same = (std::isnan(want) && std::isnan(out[i])) || wb == gb;
    if (!same && ++mismatches <= 5)
      ADD_FAILURE() << f.name() << ": element " << i << " x=" << x[i]
                    << " scale=" << scale << " library=" << want
                    << " lowering=" << out[i];
  }
  EXPECT_EQ(mismatches, 0);

  // Matmul: ascending-k f32 accumulation of the library's dequantized
  // weights; NaN/Inf weights make whole rows non-finite on both sides.
  for (int m = 0; m < kBatch; ++m)
    for (int n = 0; n < kRows; ++n) {
      float acc = 0;
      for (int k = 0; k < kCols; ++k)
        acc += a[m * kCols + k] * deq[n * kCols + k];
      float got = y[m * kRows + n];
      if (!std::isfinite(acc)) {
        EXPECT_EQ(std::isnan(acc), std::isnan(got)) << m << "," << n;
        continue;
      }
      EXPECT_NEAR(got, acc, 1e-5f * (1 + std::fabs(acc))) << m << "," << n;
    }
}

void PrintTo(const Case &c, std::ostream *os) { *os << c.attr; }

INSTANTIATE_TEST_SUITE_P(AllFormats, ReferenceLoweringTest,
                         ::testing::ValuesIn(allCases()),
                         [](const auto &info) { return info.param.name; });

} // namespace
