//===- LayerErrorTest.cpp - GPTQ and AWQ beat RTN on real layers ----------===//
//
// Calibrate on three disjoint leading slices of the dev text (three
// "seeds"), measure every linear layer's relative output error on a later,
// disjoint slice, and require GPTQ and AWQ to beat RTN at the same format,
// symmetry and group size by more than the spread over the seeds.
//
//===----------------------------------------------------------------------===//

#include "TestData.h"

#include "nibble/Calibration/Calibrate.h"
#include "nibble/Calibration/LayerError.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

using namespace nibble;
using namespace nibble::calibration;

namespace {

struct Loaded {
  std::unique_ptr<model::Model> model;
  std::vector<int32_t> tokens;
};

Loaded load(const std::string &shared, const std::string &modelPath) {
  Loaded s;
  std::string error;
  s.model = model::Model::load(modelPath, error);
  EXPECT_TRUE(s.model) << error;
  if (!s.model)
    return s;
  auto tok = tokenizer::loadTokenizer(s.model->defaultTokenizerPath(), error);
  EXPECT_TRUE(tok) << error;
  std::string text = testdata::readText(shared + "/data/tinystories_dev.txt");
  s.tokens = tok->encode(text, false);
  return s;
}

const Windows kHeldOut = {60000, 6, 128};

TEST(CalibrationTest, WindowsAreCheckedAndStatisticsNamed) {
  NIBBLE_REQUIRE_SHARED(shared);
  Loaded s = load(shared, shared + "/models/stories260K/stories260K.bin");
  ASSERT_TRUE(s.model);
  quant::StatsFile stats;
  CalibrationOptions o;
  o.windows = {0, 2, 32};
  std::string error;
  ASSERT_TRUE(calibrate(*s.model, s.tokens, o, stats, error)) << error;
  // 5 layers x 7 linears + lm_head, each seeing 2 x (32 + BOS) tokens.
  EXPECT_EQ(stats.layers().size(), 36u);
  const quant::LinearStats *q = stats.find("model.layers.0.self_attn.q_proj");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->tokens(), 66);
  EXPECT_TRUE(q->hasHessian());
  ASSERT_TRUE(stats.find("lm_head"));
  EXPECT_EQ(stats.find("model.layers.4.mlp.down_proj")->k(), 172);
  // Windows past the end of the text, or longer than the context, fail.
  o.windows = {int64_t(s.tokens.size()) - 10, 1, 32};
  EXPECT_FALSE(calibrate(*s.model, s.tokens, o, stats, error));
  EXPECT_NE(error.find("but the text has"), std::string::npos) << error;
  o.windows = {0, 1, 600};
  EXPECT_FALSE(calibrate(*s.model, s.tokens, o, stats, error));
  EXPECT_NE(error.find("exceeds the model's context"), std::string::npos);
  // Empty calibration data: no tokens, a clear error.
  EXPECT_FALSE(calibrate(*s.model, {}, {}, stats, error));
}

void compareOnModel(const std::string &shared, const std::string &path) {
  Loaded s = load(shared, path);
  ASSERT_TRUE(s.model);
  std::string error;
  std::map<std::string, std::vector<float>> held;
  ASSERT_TRUE(collectInputs(*s.model, s.tokens, kHeldOut, nullptr, held, error))
      << error;

  std::vector<MethodSpec> specs;
  for (int bits : {4, 3})
    for (bool sym : {true, false})
      for (Method m : {Method::RTN, Method::GPTQ, Method::AWQ}) {
        quant::WeightScheme ws;
        ws.format = formats::Format::intN(bits, /*isSigned=*/sym);
        ws.groupSize = 32;
        ws.symmetric = sym;
        specs.push_back({m, ws});
      }
  // Mean relative error over layers, per seed and spec.
  std::vector<std::vector<double>> perSeed;
  for (int64_t first : {0, 8192, 16384}) {
    quant::StatsFile stats;
    CalibrationOptions o;
    o.windows = {first, 6, 128};
    ASSERT_LT(o.windows.endToken(), kHeldOut.firstToken) << "slices overlap";
    ASSERT_TRUE(calibrate(*s.model, s.tokens, o, stats, error)) << error;
    std::map<std::string, std::vector<double>> result;
    std::vector<std::string> skipped;
    ASSERT_TRUE(
        compareMethods(*s.model, stats, held, specs, result, skipped, error))
        << error;
    ASSERT_FALSE(result.empty());
    std::vector<double> mean(specs.size(), 0.0);
    for (const auto &[layer, row] : result)
      for (size_t i = 0; i < row.size(); ++i)
        mean[i] += row[i] / double(result.size());
    perSeed.push_back(mean);
  }
  for (size_t i = 0; i < specs.size(); i += 3) {
    auto stat = [&](size_t j, double &lo, double &hi) {
      lo = INFINITY;
      hi = -INFINITY;
      double sum = 0;
      for (const auto &seed : perSeed) {
        lo = std::min(lo, seed[j]);
        hi = std::max(hi, seed[j]);
        sum += seed[j];
      }
      return sum / double(perSeed.size());
    };
    double rLo, rHi, gLo, gHi, aLo, aHi;
    double rtn = stat(i, rLo, rHi), gptq = stat(i + 1, gLo, gHi),
           awq = stat(i + 2, aLo, aHi);
    // RTN ignores calibration data: only GPTQ and AWQ vary by seed.
    ASSERT_EQ(rHi, rLo);
    const auto &ws = specs[i].scheme;
    std::printf("%s int%d %s g32: RTN %.4g  GPTQ %.4g (x%.2f)  AWQ %.4g "
                "(x%.2f)  seed spreads %.2g %.2g\n",
                path.substr(path.rfind('/') + 1).c_str(), ws.format.bits(),
                ws.symmetric ? "sym" : "asym", rtn, gptq, rtn / gptq, awq,
                rtn / awq, gHi - gLo, aHi - aLo);
    EXPECT_LT(gptq + (gHi - gLo), rtn) << "GPTQ does not beat RTN by its spread";
    EXPECT_LT(awq + (aHi - aLo), rtn) << "AWQ does not beat RTN by its spread";
  }
}

TEST(LayerErrorTest, GPTQAndAWQBeatRTNOnStories260K) {
  NIBBLE_REQUIRE_SHARED(shared);
  compareOnModel(shared, shared + "/models/stories260K/stories260K.bin");
}

TEST(LayerErrorTest, GPTQAndAWQBeatRTNOnTinyStories656K) {
  NIBBLE_REQUIRE_SHARED(shared);
  compareOnModel(shared, shared + "/models/tinystories-656k");
}

} // namespace
