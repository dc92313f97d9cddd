//===- PassesOnModelTest.cpp - smooth / split-outliers / act quant on a model //
//
// The calibration-driven passes run on the float IR of stories260K (a real
// model with grouped-query attention: 8 query heads over 4 key/value
// heads), JIT-compiled with the reference lowering. Calibration uses tokens
// from 4096 on of the dev text; the evaluated prompt is its first tokens.
//
//===----------------------------------------------------------------------===//

#include "JitSupport.h"
#include "TestData.h"

#include "nibble/Calibration/Calibrate.h"
#include "nibble/Calibration/Probes.h"
#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Import/FloatModel.h"
#include "nibble/Quant/Stats.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/Pass/PassRegistry.h"

#include <algorithm>
#include <cmath>
#include <functional>

using namespace nibble;

namespace {

struct Setup260K {
  std::string shared, dir, modelPath, stats;
  std::unique_ptr<model::Model> m;
  std::vector<int32_t> prompt;
};

/// Loads the model, calibrates (tokens [4096, 4352)), writes the statistics
/// and computes the float logits of a 32-token prompt once per process.
const Setup260K *setup260K() {
  static std::optional<Setup260K> s = []() -> std::optional<Setup260K> {
    std::string shared = testdata::sharedDir();
    if (shared.empty())
      return std::nullopt;
    Setup260K r;
    r.shared = shared;
    r.modelPath = shared + "/models/stories260K/stories260K.bin";
    std::string error;
    r.m = model::Model::load(r.modelPath, error);
    EXPECT_TRUE(r.m) << error;
    auto tok = tokenizer::loadTokenizer(shared + "/models/stories260K/tok512.bin",
                                        error);
    EXPECT_TRUE(tok) << error;
    if (!r.m || !tok)
      return std::nullopt;
    std::string text = testdata::readText(shared + "/data/tinystories_dev.txt");
    auto ids = tok->encode(text, false);
    quant::StatsFile stats;
    calibration::CalibrationOptions copts;
    copts.windows = {4096, 4, 64};
    EXPECT_TRUE(calibration::calibrate(*r.m, ids, copts, stats, error)) << error;
    r.dir = testdata::makeTempDir("passes-260k");
    r.stats = r.dir + "/stats.safetensors";
    EXPECT_TRUE(stats.save(r.stats, error)) << error;
    testdata::writeText(r.dir + "/recipe.json",
                        R"({"rules": [{"match": "down_proj$", "group": 0}]})");
    r.prompt = tok->encode(text.substr(0, 2000), true);
    r.prompt.resize(32);
    return r;
  }();
  return s ? &*s : nullptr;
}

#define REQUIRE_260K(s)                                                        \
  const Setup260K *s = setup260K();                                            \
  if (!s)                                                                      \
  GTEST_SKIP() << "shared models not found (set NIBBLE_SHARED_DIR or place "  \
                  "../shared beside the checkout)"

struct PipelineRun {
  std::vector<float> logits;
  int64_t generics = 0, smoothed = 0, outlierParts = 0, actScales = 0;
};

/// Builds the float IR, binds it, runs `pipeline` (empty: none), inspects,
/// and JIT-runs the prompt.
PipelineRun runPipeline(const Setup260K &s, const std::string &pipeline,
                const std::function<void(mlir::ModuleOp)> &inspect = {}) {
  jit::Context c;
  std::string error;
  import::FloatModelOptions opts;
  opts.seqLen = int64_t(s.prompt.size());
  auto module = import::buildFloatModel(*c.ctx, *s.m, opts, error);
  EXPECT_TRUE(module) << error;
  EXPECT_TRUE(import::bindWeights(*module, *s.m, /*copy=*/false, error)) << error;
  PipelineRun r;
  if (!pipeline.empty()) {
    mlir::PassManager pm(c.ctx.get());
    EXPECT_TRUE(mlir::succeeded(mlir::parsePassPipeline(pipeline, pm)));
    if (mlir::failed(pm.run(*module))) {
      ADD_FAILURE() << "pipeline failed: " << pipeline;
      return r;
    }
  }
  module->walk([&](mlir::Operation *op) {
    if (mlir::isa<mlir::linalg::GenericOp>(op))
      ++r.generics;
    if (op->hasAttr("nibble.smoothing"))
      ++r.smoothed;
    if (op->hasAttr("nibble.outlier_part"))
      ++r.outlierParts;
    if (op->hasAttr("act_scale"))
      ++r.actScales;
  });
  if (inspect)
    inspect(*module);
  r.logits = jit::runCompiled(*module, s.prompt, s.m->config().vocabSize);
  return r;
}

float range(const std::vector<float> &v) {
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *hi - *lo;
}
float maxDiff(const std::vector<float> &a, const std::vector<float> &b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}
double mse(const std::vector<float> &a, const std::vector<float> &b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i)
    e += double(a[i] - b[i]) * (a[i] - b[i]);
  return e / double(a.size());
}

const std::vector<float> &floatLogits(const Setup260K &s) {
  static std::vector<float> logits = runPipeline(s, "").logits;
  return logits;
}

// Smoothing changes weights, not the function: with the scales folded into
// the norms and (for o_proj, through grouped-query attention, and down_proj)
// into v_proj / up_proj rows, the float logits stay those of the original
// model up to rounding, and no explicit multiply is added.
TEST(SmoothPassTest, FoldedScalesKeepTheFloatFunction) {
  REQUIRE_260K(s);
  const auto &ref = floatLogits(*s);
  const int64_t baseGenerics = runPipeline(*s, "").generics;
  for (std::string opts : std::vector<std::string>{
           "method=smoothquant alpha=0.5", "method=smoothquant alpha=0.8",
        "method=awq format=int3 group=32 recipe=" + s->dir + "/recipe.json"}) {
    PipelineRun r = runPipeline(*s, "nibble-smooth{stats=" + s->stats + " " + opts + "}");
    EXPECT_EQ(r.smoothed, 36) << opts; // 5 x 7 linears + lm_head
    EXPECT_EQ(r.generics, baseGenerics) << opts << ": all scales fold";
    EXPECT_LE(maxDiff(r.logits, ref), 2e-5f * range(ref)) << opts;
  }
  // Unfolded: one explicit multiply per input set (5 x 4 + 1).
  PipelineRun r = runPipeline(*s, "nibble-smooth{stats=" + s->stats +
                              " method=smoothquant fold=false}");
  EXPECT_EQ(r.generics, baseGenerics + 21);
  EXPECT_LE(maxDiff(r.logits, ref), 2e-5f * range(ref));
}

// The smoothing really moves magnitude: the folded q/k/v weights differ
// from the checkpoint's, so the previous test is not vacuous.
TEST(SmoothPassTest, WeightsAndNormsAreRewritten) {
  REQUIRE_260K(s);
  runPipeline(*s, "nibble-smooth{stats=" + s->stats + " method=smoothquant}",
              [](mlir::ModuleOp m) {
                int norms = 0, weights = 0;
                m.walk([&](mlir::arith::ConstantOp c) {
                  auto r = mlir::dyn_cast<mlir::DenseResourceElementsAttr>(
                      c.getValue());
                  if (!r)
                    return;
                  llvm::StringRef key = r.getRawHandle().getKey();
                  if (key.contains("layernorm.weight.smoothed") ||
                      key.contains("model.norm.weight.smoothed"))
                    ++norms;
                  else if (key.ends_with(".weight.smoothed"))
                    ++weights;
                });
                EXPECT_EQ(norms, 11); // 2 per layer + the final norm
                EXPECT_EQ(weights, 36);
              });
}

// End to end on held-out tokens at int3 g32 (down_proj per channel): the
// full AWQ pipeline (scales folded upstream, then the imatrix-weighted clip
// search on the transformed statistics) is closer to the float model than
// RTN with or without a clip search. The other combinations are printed for
// docs/accuracy.md; on this 260K model with 256 calibration tokens GPTQ
// does not beat RTN end to end (it does layer by layer, see
// LayerErrorTest), so nothing is asserted about it here.
TEST(SmoothPassTest, EndToEndInt3) {
  REQUIRE_260K(s);
  const auto &ref = floatLogits(*s);
  std::string q = "format=int3 group=32 stats=" + s->stats + " recipe=" +
                  s->dir + "/recipe.json";
  std::string smooth = "nibble-smooth{method=awq " + q + "},";
  auto run = [&](const std::string &label, const std::string &pipeline) {
    double e = mse(runPipeline(*s, pipeline).logits, ref);
    std::printf("int3 g32 logit MSE vs float, %-24s %.4g\n", label.c_str(), e);
    return e;
  };
  auto qw = [&](const std::string &m) {
    return "nibble-quantize-weights{method=" + m + " " + q + "}";
  };
  double rtn = run("rtn", qw("rtn"));
  double rtnMse = run("rtn-mse", qw("rtn-mse"));
  run("imatrix", qw("imatrix"));
  run("gptq", qw("gptq"));
  run("awq (unfolded)", qw("awq"));
  run("smooth awq + rtn", smooth + qw("rtn"));
  run("smooth awq + gptq", smooth + qw("gptq"));
  double awq = run("smooth awq + imatrix", smooth + qw("imatrix"));
  EXPECT_LT(awq, rtn);
  EXPECT_LT(awq, rtnMse);
}

// Outlier decomposition is exact in f32 and close in f16; the outlier
// channels leave the quantized matmul's input.
TEST(SplitOutliersTest, DecompositionKeepsTheFloatFunction) {
  REQUIRE_260K(s);
  const auto &ref = floatLogits(*s);
  PipelineRun f32 = runPipeline(*s, "nibble-split-outliers{threshold=2 outlier-type=f32 stats=" +
                                s->stats + "}");
  EXPECT_GT(f32.outlierParts, 0);
  EXPECT_LE(maxDiff(f32.logits, ref), 2e-5f * range(ref));
  PipelineRun f16 = runPipeline(*s, "nibble-split-outliers{threshold=2 stats=" + s->stats + "}");
  EXPECT_EQ(f16.outlierParts, f32.outlierParts);
  EXPECT_LE(maxDiff(f16.logits, ref), 2e-3f * range(ref));
  std::printf("split at |x| > 2: %lld linears split; f16 slice max |diff| %g "
              "of range %g\n", (long long)f16.outlierParts,
              maxDiff(f16.logits, ref), range(ref));
}

// Static activation scales are the calibrated abs-max of the input as the
// matmul sees it: after smoothing, max_j absmax_j / s_j; after splitting,
// without the outlier channels.
TEST(QuantizeActivationsTest, StaticScaleIsTheCalibratedAbsMax) {
  REQUIRE_260K(s);
  std::string error;
  auto stats = quant::StatsFile::load(s->stats, error);
  ASSERT_TRUE(stats) << error;
  const std::string layer = "model.layers.2.mlp.down_proj";
  auto absMax = stats->find(layer)->absMax();
  auto check = [&](const std::string &pre, float want) {
    runPipeline(*s,
                pre + "nibble-quantize-weights{format=int8 group=0},"
                      "nibble-quantize-activations{mode=static stats=" +
                    s->stats + "}",
                [&](mlir::ModuleOp m) {
                  int found = 0;
                  m.walk([&](mlir::nibble::MatmulOp op) {
                    if (op->getAttrOfType<mlir::StringAttr>("nibble.linear")
                            .getValue() != layer)
                      return;
                    ++found;
                    ASSERT_TRUE(op.getActScaleAttr());
                    EXPECT_FLOAT_EQ(op.getActScaleAttr().getValueAsDouble(),
                                    want / 127.0f);
                  });
                  EXPECT_EQ(found, 1);
                });
  };
  check("", *std::max_element(absMax.begin(), absMax.end()));
  // Splitting at a threshold below the maximum removes the top channels.
  float top = *std::max_element(absMax.begin(), absMax.end());
  float threshold = top * 0.5f, below = 0;
  for (float v : absMax)
    if (v <= threshold)
      below = std::max(below, v);
  check("nibble-split-outliers{threshold=" + std::to_string(threshold) +
            " stats=" + s->stats + " match=" + layer + "},",
        below);
}

// W8A8 (int8 per-channel weights, int8 activations) stays close to the
// float model; static per-tensor scales are no better than dynamic
// per-token ones on this model, and SmoothQuant brings static closer.
TEST(QuantizeActivationsTest, W8A8StaysCloseToFloat) {
  REQUIRE_260K(s);
  const auto &ref = floatLogits(*s);
  std::string w8 = "nibble-quantize-weights{format=int8 group=0},";
  double dyn = mse(runPipeline(*s, w8 + "nibble-quantize-activations").logits, ref);
  PipelineRun st = runPipeline(*s, w8 + "nibble-quantize-activations{mode=static stats=" +
                               s->stats + "}");
  EXPECT_EQ(st.actScales, 36);
  double stat = mse(st.logits, ref);
  double smooth = mse(
      runPipeline(*s, "nibble-smooth{stats=" + s->stats + " alpha=0.5}," + w8 +
                          "nibble-quantize-activations{mode=static stats=" +
                          s->stats + "}")
          .logits,
      ref);
  std::printf("W8A8 logit MSE vs float: dynamic %.4g, static %.4g, "
              "smoothquant+static %.4g (logit range %g)\n",
              dyn, stat, smooth, range(ref));
  EXPECT_LT(dyn, 1e-2 * range(ref));
}

// Calibration through compiled IR: probes inserted by nibble-insert-probes
// and lowered to calls record, window by window, the statistics the C++
// reference records for the same windows (the IR computes the same
// activations bit for bit).
TEST(ProbesTest, CompiledProbesRecordTheReferenceStatistics) {
  REQUIRE_260K(s);
  std::string error;
  auto want = quant::StatsFile::load(s->stats, error);
  ASSERT_TRUE(want) << error;
  auto tok = tokenizer::loadTokenizer(
      s->shared + "/models/stories260K/tok512.bin", error);
  ASSERT_TRUE(tok) << error;
  auto ids = tok->encode(
      testdata::readText(s->shared + "/data/tinystories_dev.txt"), false);

  jit::Context c;
  import::FloatModelOptions opts;
  opts.seqLen = 65; // BOS + 64, as calibrate() runs its windows
  auto module = import::buildFloatModel(*c.ctx, *s->m, opts, error);
  ASSERT_TRUE(module) << error;
  ASSERT_TRUE(import::bindWeights(*module, *s->m, false, error)) << error;
  mlir::PassManager pm(c.ctx.get());
  ASSERT_TRUE(mlir::succeeded(mlir::parsePassPipeline("nibble-insert-probes", pm)));
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  int probes = 0;
  module->walk([&](mlir::nibble::ObserveOp) { ++probes; });
  EXPECT_EQ(probes, 36);
  auto compiled = jit::Compiled::create(
      *module, s->m->config().vocabSize, /*probeCalls=*/true,
      {{"nibble_observe_f32", reinterpret_cast<void *>(&nibble_observe_f32)}});
  ASSERT_TRUE(compiled);
  std::vector<std::string> names;
  for (mlir::Attribute a :
       (*module)->getAttrOfType<mlir::ArrayAttr>("nibble.probes"))
    names.push_back(mlir::cast<mlir::StringAttr>(a).getValue().str());
  ASSERT_EQ(names.size(), 36u);

  quant::StatsFile got;
  calibration::ProbeRecorder recorder(got, names);
  calibration::setActiveProbeRecorder(&recorder);
  for (int64_t w = 0; w < 4; ++w) {
    std::vector<int32_t> window = {s->m->config().bosId};
    window.insert(window.end(), ids.begin() + 4096 + w * 64,
                  ids.begin() + 4096 + (w + 1) * 64);
    compiled->run(window);
  }
  calibration::setActiveProbeRecorder(nullptr);
  ASSERT_EQ(recorder.error(), "");
  EXPECT_EQ(recorder.calls(), 4 * 36);
  ASSERT_EQ(got.layers().size(), want->layers().size());
  for (const auto &[name, w] : want->layers()) {
    const quant::LinearStats *g = got.find(name);
    ASSERT_TRUE(g) << name;
    EXPECT_EQ(g->tokens(), w.tokens()) << name;
    EXPECT_EQ(g->min(), w.min()) << name;
    EXPECT_EQ(g->max(), w.max()) << name;
    auto gm = g->meanSq(), wm = w.meanSq();
    for (size_t j = 0; j < gm.size(); ++j)
      EXPECT_NEAR(gm[j], wm[j], 1e-5 * (1 + wm[j])) << name << " " << j;
    auto gh = g->hessian()->hessian(), wh = w.hessian()->hessian();
    double maxRel = 0;
    for (size_t j = 0; j < gh.size(); ++j)
      maxRel = std::max(maxRel, std::fabs(gh[j] - wh[j]) / (1 + std::fabs(wh[j])));
    EXPECT_LT(maxRel, 1e-4) << name;
  }
}

TEST(PassErrorsTest, ClearMessages) {
  REQUIRE_260K(s);
  auto diag = [&](const std::string &pipeline) {
    jit::Context c;
    std::string error;
    import::FloatModelOptions opts;
    opts.seqLen = 4;
    auto module = import::buildFloatModel(*c.ctx, *s->m, opts, error);
    EXPECT_TRUE(import::bindWeights(*module, *s->m, true, error));
    std::string text;
    mlir::ScopedDiagnosticHandler h(c.ctx.get(), [&](mlir::Diagnostic &d) {
      text += d.str() + "\n";
      return mlir::success();
    });
    mlir::PassManager pm(c.ctx.get());
    EXPECT_TRUE(mlir::succeeded(mlir::parsePassPipeline(pipeline, pm)));
    EXPECT_TRUE(mlir::failed(pm.run(*module))) << pipeline;
    return text;
  };
  auto has = [](const std::string &text, const char *what) {
    return text.find(what) != std::string::npos;
  };
  EXPECT_TRUE(has(diag("nibble-smooth"), "needs calibration statistics"));
  EXPECT_TRUE(has(diag("nibble-smooth{stats=" + s->stats + " alpha=1.5}"),
                  "alpha must be in [0, 1]"));
  EXPECT_TRUE(has(diag("nibble-smooth{stats=" + s->stats + " method=magic}"),
                  "unknown smoothing method"));
  EXPECT_TRUE(has(diag("nibble-smooth{stats=" + s->stats + " method=awq}"),
                  "does not divide"));
  EXPECT_TRUE(has(diag("nibble-smooth{stats=" + s->dir + "/none}"),
                  "cannot open"));
  EXPECT_TRUE(has(diag("nibble-split-outliers"), "needs calibration statistics"));
  EXPECT_TRUE(has(diag("nibble-split-outliers{stats=" + s->stats +
                       " outlier-type=i8}"),
                  "outlier-type must be f16 or f32"));
  EXPECT_TRUE(has(diag("nibble-quantize-weights{format=int8 group=0},nibble-quantize-activations{mode=static}"),
                  "mode=static needs calibration statistics"));
  EXPECT_TRUE(has(diag("nibble-quantize-weights{format=int8 group=0},nibble-quantize-activations{format=uint8}"),
                  "must be signed"));
  EXPECT_TRUE(has(diag("nibble-smooth{stats=" + s->stats +
                       "},nibble-quantize-weights{format=int8 group=0},nibble-quantize-activations{"
                       "mode=static percentile=0.999 stats=" + s->stats + "}"),
                  "histogram"));
}

} // namespace
