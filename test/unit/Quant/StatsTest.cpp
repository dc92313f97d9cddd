//===- StatsTest.cpp - Calibration statistics and their file --------------===//

#include "nibble/Model/Safetensors.h"
#include "nibble/Quant/Stats.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <random>

using namespace nibble::quant;

namespace {

std::vector<float> randomRows(int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(n * k));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < k; ++j)
      x[t * k + j] = normal(rng) * float(1 + j); // channel j has scale 1+j
  return x;
}

TEST(StatsTest, PerChannelStatisticsMatchDirectComputation) {
  const int64_t n = 500, k = 6;
  auto x = randomRows(n, k, 1);
  LinearStats s(k, /*withHessian=*/false);
  s.add(x.data(), 200);
  s.add(x.data() + 200 * k, n - 200); // two batches
  EXPECT_EQ(s.tokens(), n);
  auto amax = s.absMax(), mabs = s.meanAbs(), msq = s.meanSq();
  for (int64_t j = 0; j < k; ++j) {
    float lo = INFINITY, hi = -INFINITY, am = 0;
    double sa = 0, sq = 0;
    for (int64_t t = 0; t < n; ++t) {
      float v = x[t * k + j];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      am = std::max(am, std::fabs(v));
      sa += std::fabs(v);
      sq += double(v) * v;
    }
    EXPECT_EQ(s.min()[j], lo);
    EXPECT_EQ(s.max()[j], hi);
    EXPECT_EQ(amax[j], am);
    EXPECT_NEAR(mabs[j], sa / n, 1e-5 * (1 + j));
    EXPECT_NEAR(msq[j], sq / n, 1e-4 * (1 + j) * (1 + j));
  }
}

// Statistics of x * m computed from those of x equal those accumulated
// on x * m directly (smoothing scales and channel masks folded upstream).
TEST(StatsTest, ScaledStatisticsEqualStatisticsOfScaledInputs) {
  const int64_t n = 300, k = 5;
  auto x = randomRows(n, k, 7);
  const std::vector<float> m = {0.5f, 2.0f, 0.0f, 1.0f, 0.25f};
  auto xm = x;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < k; ++j)
      xm[t * k + j] *= m[j];
  LinearStats a(k, true), direct(k, true);
  a.add(x.data(), n);
  direct.add(xm.data(), n);
  std::string error;
  auto scaled = a.scaled(m, error);
  ASSERT_TRUE(scaled) << error;
  EXPECT_EQ(scaled->tokens(), n);
  for (int64_t j = 0; j < k; ++j) {
    EXPECT_EQ(scaled->min()[j], direct.min()[j]);
    EXPECT_EQ(scaled->max()[j], direct.max()[j]);
    EXPECT_NEAR(scaled->meanAbs()[j], direct.meanAbs()[j], 1e-5);
    EXPECT_NEAR(scaled->meanSq()[j], direct.meanSq()[j], 1e-4);
  }
  auto h1 = scaled->hessian()->hessian(), h2 = direct.hessian()->hessian();
  for (size_t i = 0; i < h1.size(); ++i)
    EXPECT_NEAR(h1[i], h2[i], 1e-3 * (1 + std::fabs(h2[i])));
  EXPECT_EQ(scaled->histogram().count(), 0); // not transformable
  EXPECT_FALSE(a.scaled({1.0f}, error));
  EXPECT_NE(error.find("5 channels"), std::string::npos);
  EXPECT_FALSE(a.scaled({1, 1, -1, 1, 1}, error));
  EXPECT_FALSE(a.scaled({1, 1, NAN, 1, 1}, error));
}

TEST(StatsTest, HistogramQuantiles) {
  AbsHistogram h;
  EXPECT_EQ(h.quantile(0.99), 0.0f) << "empty histogram";
  for (int i = 1; i <= 1000; ++i)
    h.add(float(i) / 100.0f); // 0.01 .. 10
  h.add(0.0f);
  EXPECT_EQ(h.count(), 1001);
  float q50 = h.quantile(0.5), q100 = h.quantile(1.0);
  // Upper bin edges over-estimate by at most one bin (2^(1/8) ~ 9%).
  EXPECT_GE(q50, 5.0f);
  EXPECT_LE(q50, 5.0f * 1.1f);
  EXPECT_GE(q100, 10.0f);
  EXPECT_LE(q100, 10.0f * 1.1f);
  EXPECT_EQ(h.quantile(0.0005), 0.0f) << "the zero lies in bin 0";
  // Values beyond the range land in the end bins, never out of bounds.
  h.add(1e30f);
  h.add(1e-30f);
  EXPECT_EQ(h.quantile(1.0), INFINITY);
}

TEST(StatsTest, NonFiniteRowsAreCountedAndSkipped) {
  const int64_t k = 3;
  std::vector<float> x = {1, 2, 3, NAN, 1, 1, 4, INFINITY, 0, -1, -2, -3};
  LinearStats s(k, true);
  s.add(x.data(), 4);
  EXPECT_EQ(s.tokens(), 2);
  EXPECT_EQ(s.nonFinite(), 2);
  EXPECT_EQ(s.absMax()[2], 3.0f);
  EXPECT_EQ(s.hessian()->samples(), 2);
  for (double v : s.hessian()->hessian())
    EXPECT_TRUE(std::isfinite(v));
}

TEST(StatsTest, EmptyStatisticsAreDefined) {
  LinearStats s(4, true);
  EXPECT_EQ(s.tokens(), 0);
  for (float v : s.absMax())
    EXPECT_EQ(v, 0.0f);
  for (float v : s.meanSq())
    EXPECT_EQ(v, 0.0f);
}

TEST(StatsTest, MergeEqualsOneAccumulation) {
  const int64_t n = 300, k = 5;
  auto x = randomRows(n, k, 2);
  LinearStats whole(k, true), a(k, true), b(k, true);
  whole.add(x.data(), n);
  a.add(x.data(), 100);
  b.add(x.data() + 100 * k, n - 100);
  std::string error;
  ASSERT_TRUE(a.merge(b, error)) << error;
  EXPECT_EQ(a.tokens(), whole.tokens());
  EXPECT_EQ(a.min(), whole.min());
  EXPECT_EQ(a.max(), whole.max());
  EXPECT_EQ(a.histogram().bins(), whole.histogram().bins());
  auto ha = a.hessian()->hessian(), hw = whole.hessian()->hessian();
  for (size_t i = 0; i < ha.size(); ++i)
    EXPECT_NEAR(ha[i], hw[i], 1e-6 * (1 + std::fabs(hw[i]))) // float SYRK chunks
        << i;
  LinearStats other(k + 1, true);
  EXPECT_FALSE(a.merge(other, error));
  EXPECT_NE(error.find("6 channels"), std::string::npos) << error;
}

TEST(StatsTest, FileRoundTripAndErrors) {
  const int64_t k = 4;
  auto x = randomRows(64, k, 3);
  StatsFile f;
  f.layer("model.layers.0.mlp.up_proj", k, true).add(x.data(), 64);
  f.layer("lm_head", k, false).add(x.data(), 10);
  f.info()["calibration.text"] = "tinystories_dev.txt[0:1000]";
  f.info()["calibration.tokens"] = "74"; // looks like a layer key; is not
  std::string path = ::testing::TempDir() + "/stats.safetensors", error;
  ASSERT_TRUE(f.save(path, error)) << error;
  auto g = StatsFile::load(path, error);
  ASSERT_TRUE(g) << error;
  ASSERT_EQ(g->layers().size(), 2u);
  EXPECT_EQ(g->info().at("calibration.text"), "tinystories_dev.txt[0:1000]");
  EXPECT_EQ(g->info().at("calibration.tokens"), "74");
  EXPECT_EQ(g->info().count("lm_head.tokens"), 0u);
  const LinearStats *up = g->find("model.layers.0.mlp.up_proj");
  ASSERT_TRUE(up);
  const LinearStats *orig = f.find("model.layers.0.mlp.up_proj");
  EXPECT_EQ(up->tokens(), 64);
  EXPECT_EQ(up->min(), orig->min());
  EXPECT_EQ(up->meanSq(), orig->meanSq());
  EXPECT_EQ(up->histogram().bins(), orig->histogram().bins());
  ASSERT_TRUE(up->hasHessian());
  EXPECT_EQ(up->hessian()->hessian(), orig->hessian()->hessian());
  EXPECT_FALSE(g->find("lm_head")->hasHessian());
  // Loading then merging doubles the counts.
  ASSERT_TRUE(g->merge(f, error)) << error;
  EXPECT_EQ(g->find("lm_head")->tokens(), 20);

  // A safetensors file that is not a statistics file.
  std::string other = ::testing::TempDir() + "/other.safetensors";
  float v = 1;
  ASSERT_TRUE(nibble::model::writeSafetensors(
      other, {{"w", nibble::model::DType::F32, {1}, &v}}, error));
  EXPECT_FALSE(StatsFile::load(other, error));
  EXPECT_NE(error.find("not a calibration statistics file"), std::string::npos)
      << error;
  EXPECT_FALSE(StatsFile::load(path + ".missing", error));
  EXPECT_NE(error.find("cannot open"), std::string::npos) << error;
}

} // namespace
