//===- SmoothTest.cpp - AWQ, SmoothQuant, outliers, activation quant ------===//

#include "nibble/Quant/Smooth.h"

#include "gtest/gtest.h"

#include <cmath>
#include <random>

using namespace nibble::quant;
using nibble::formats::Format;

namespace {

struct Layer {
  int64_t n, k;
  std::vector<float> w;
  MatrixView view() const { return {w.data(), n, k}; }
};

Layer randomLayer(int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Layer l{n, k, std::vector<float>(size_t(n * k))};
  for (float &v : l.w)
    v = normal(rng) / std::sqrt(float(k));
  return l;
}

/// Activations with a few channels much larger than the rest (as in LLMs),
/// mixed so that channels are correlated.
std::vector<float> activations(int64_t t, int64_t k, uint32_t seed,
                               const std::vector<int64_t> &hot, float gain) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(size_t(t * k));
  for (int64_t r = 0; r < t; ++r) {
    float common = normal(rng);
    for (int64_t j = 0; j < k; ++j)
      x[r * k + j] = 0.5f * common + normal(rng);
    for (int64_t j : hot)
      x[r * k + j] *= gain;
  }
  return x;
}

std::vector<float> meanAbsOf(const std::vector<float> &x, int64_t k) {
  std::vector<float> m(size_t(k), 0.0f);
  int64_t t = int64_t(x.size()) / k;
  for (int64_t r = 0; r < t; ++r)
    for (int64_t j = 0; j < k; ++j)
      m[j] += std::fabs(x[r * k + j]) / float(t);
  return m;
}

std::vector<float> absMaxOf(const std::vector<float> &x, int64_t k) {
  std::vector<float> m(size_t(k), 0.0f);
  for (size_t i = 0; i < x.size(); ++i)
    m[i % size_t(k)] = std::max(m[i % size_t(k)], std::fabs(x[i]));
  return m;
}

TEST(SmoothTest, OutputErrorIsTheSquaredDifferenceOfProducts) {
  std::vector<float> x = {1, 2}, w = {3, 4, 5, 6}, q = {3, 4, 5, 5};
  // x.(w0-q0) = 0, x.(w1-q1) = 2 -> 4
  EXPECT_DOUBLE_EQ(outputError({x.data(), 1, 2}, {w.data(), 2, 2},
                               {q.data(), 2, 2}),
                   4.0);
}

// AWQ never does worse than RTN on its samples, and on activations with hot
// channels it does better on held-out samples too.
TEST(SmoothTest, AWQBeatsRTNWithHotChannels) {
  const int64_t k = 128, t = 256;
  std::vector<int64_t> hot = {3, 40, 77};
  Layer a = randomLayer(64, k, 1), b = randomLayer(96, k, 2);
  auto calib = activations(t, k, 10, hot, 8.0f);
  auto held = activations(t, k, 11, hot, 8.0f);
  WeightScheme scheme;
  scheme.format = Format::intN(4, true);
  scheme.groupSize = 32;
  std::string error;
  auto r = searchAWQ({a.view(), b.view()}, {calib.data(), t, k},
                     meanAbsOf(calib, k), scheme, {}, error);
  ASSERT_TRUE(r) << error;
  EXPECT_LE(r->bestError, r->rtnError);
  EXPECT_GT(r->alpha, 0.0f);
  // Held-out error of the chosen scales vs plain RTN.
  auto heldError = [&](const std::vector<float> &s) {
    double e = 0;
    for (const Layer *l : {&a, &b}) {
      std::vector<float> scaled = l->w;
      for (int64_t i = 0; i < l->n; ++i)
        for (int64_t j = 0; j < k; ++j)
          scaled[i * k + j] *= s[j];
      auto q = quantizeRTN({scaled.data(), l->n, k}, scheme, {}, error);
      EXPECT_TRUE(q) << error;
      auto eff = q->dequantize();
      for (int64_t i = 0; i < l->n; ++i)
        for (int64_t j = 0; j < k; ++j)
          eff[i * k + j] /= s[j];
      e += outputError({held.data(), t, k}, l->view(), {eff.data(), l->n, k});
    }
    return e;
  };
  double rtn = heldError(std::vector<float>(size_t(k), 1.0f));
  double awq = heldError(r->scales);
  EXPECT_LT(awq, 0.9 * rtn) << "AWQ " << awq << " RTN " << rtn;
}

TEST(SmoothTest, AWQChannelClassesShareScales) {
  const int64_t k = 16;
  Layer a = randomLayer(8, k, 3);
  auto x = activations(64, k, 4, {1, 9}, 5.0f);
  AWQOptions o;
  for (int64_t j = 0; j < k; ++j)
    o.channelClass.push_back(j % 4); // e.g. (kv head, d) shared by 4 heads
  WeightScheme scheme;
  scheme.groupSize = 8;
  std::string error;
  auto r = searchAWQ({a.view()}, {x.data(), 64, k}, meanAbsOf(x, k), scheme, o,
                     error);
  ASSERT_TRUE(r) << error;
  for (int64_t j = 0; j < k; ++j)
    EXPECT_EQ(r->scales[j], r->scales[j % 4]) << j;
}

TEST(SmoothTest, AWQErrors) {
  Layer a = randomLayer(4, 8, 5);
  std::vector<float> x(16, 1.0f);
  WeightScheme scheme;
  std::string error;
  EXPECT_FALSE(searchAWQ({a.view()}, {x.data(), 2, 8}, std::vector<float>(7),
                         scheme, {}, error));
  EXPECT_NE(error.find("7 channels"), std::string::npos) << error;
  EXPECT_FALSE(searchAWQ({}, {x.data(), 2, 8}, std::vector<float>(8), scheme,
                         {}, error));
  EXPECT_FALSE(searchAWQ({a.view()}, {x.data(), 0, 8}, std::vector<float>(8),
                         scheme, {}, error));
  // Dead channels (mean |x| = 0) get finite scales.
  std::vector<float> dead(8, 0.0f);
  dead[0] = 1.0f;
  auto r = searchAWQ({a.view()}, {x.data(), 2, 8}, dead, scheme, {}, error);
  ASSERT_TRUE(r) << error;
  for (float s : r->scales)
    EXPECT_TRUE(std::isfinite(s) && s > 0);
}

TEST(SmoothTest, SmoothQuantScalesFollowTheFormula) {
  std::vector<float> w = {1, -4, 0, 2, 0.5f, 0}; // 2 x 3
  auto s = smoothQuantScales({{w.data(), 2, 3}}, {9, 16, 5}, 0.5f);
  EXPECT_FLOAT_EQ(s[0], 3.0f / 1.4142135f); // sqrt(9)/sqrt(max|w|=2)
  EXPECT_FLOAT_EQ(s[1], 4.0f / 2.0f);       // sqrt(16)/sqrt(4)
  EXPECT_EQ(s[2], 1.0f) << "zero weight column keeps scale 1";
}

// W8A8 with per-tensor static activation scales: 0.5% of channels x20
// dominate the activation range. Outlier splitting and SmoothQuant each
// reduce the layer error.
TEST(SmoothTest, OutliersAndSmoothQuantReduceW8A8Error) {
  const int64_t k = 400, t = 256, n = 128;
  std::vector<int64_t> hot = {17, 311}; // 0.5% of 400
  Layer l = randomLayer(n, k, 7);
  auto calib = activations(t, k, 20, hot, 20.0f);
  auto held = activations(t, k, 21, hot, 20.0f);
  Format i8 = Format::intN(8, true);
  WeightScheme ws;
  ws.format = i8; // per channel
  std::string error;
  auto amax = absMaxOf(calib, k);
  float tensorMax = *std::max_element(amax.begin(), amax.end());

  // y = X W^T exactly, and the W8A8 estimate with a given split/smoothing.
  auto exact = [&](const std::vector<float> &x) {
    std::vector<double> y(size_t(t * n), 0.0);
    for (int64_t r = 0; r < t; ++r)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < k; ++j)
          y[r * n + i] += double(x[r * k + j]) * l.w[i * k + j];
    return y;
  };
  auto reference = exact(held);
  auto errorOf = [&](const std::vector<float> &yq) {
    double e = 0;
    for (size_t i = 0; i < yq.size(); ++i)
      e += (yq[i] - reference[i]) * (yq[i] - reference[i]);
    return e;
  };
  // Plain W8A8: quantize X per tensor with the calibrated max, W per channel.
  auto w8a8 = [&](const std::vector<float> &x, const std::vector<float> &w,
                  float xmax, const std::vector<bool> *skip) {
    std::vector<float> xs = x, wd;
    std::vector<float> xo(x.size(), 0.0f);
    if (skip) // outlier channels: exact high-precision side product
      for (int64_t r = 0; r < t; ++r)
        for (int64_t j = 0; j < k; ++j)
          if ((*skip)[j]) {
            xo[r * k + j] = xs[r * k + j];
            xs[r * k + j] = 0;
          }
    auto xq = fakeQuantizePerTensor({xs.data(), t, k}, i8, xmax);
    auto q = quantizeRTN({w.data(), n, k}, ws, {}, error);
    EXPECT_TRUE(q) << error;
    wd = q->dequantize();
    std::vector<float> y(size_t(t * n), 0.0f);
    for (int64_t r = 0; r < t; ++r)
      for (int64_t i = 0; i < n; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < k; ++j)
          acc += double(xq[r * k + j]) * wd[i * k + j] +
                 double(xo[r * k + j]) * w[i * k + j];
        y[r * n + i] = float(acc);
      }
    return y;
  };
  double plain = errorOf(w8a8(held, l.w, tensorMax, nullptr));

  // Outlier split at threshold 6 (the LLM.int8() default).
  auto outliers = outlierChannels(amax, 6.0f);
  EXPECT_EQ(outliers, hot);
  std::vector<bool> skip(size_t(k), false);
  float restMax = 0;
  for (int64_t j = 0; j < k; ++j) {
    skip[j] = std::find(outliers.begin(), outliers.end(), j) != outliers.end();
    if (!skip[j])
      restMax = std::max(restMax, amax[j]);
  }
  double split = errorOf(w8a8(held, l.w, restMax, &skip));

  // SmoothQuant alpha = 0.5: X / s, W * s.
  auto s = smoothQuantScales({l.view()}, amax, 0.5f);
  std::vector<float> xs = held, wsc = l.w;
  float smax = 0;
  for (int64_t j = 0; j < k; ++j)
    smax = std::max(smax, amax[j] / s[j]);
  for (int64_t r = 0; r < t; ++r)
    for (int64_t j = 0; j < k; ++j)
      xs[r * k + j] /= s[j];
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j)
      wsc[i * k + j] *= s[j];
  double smooth = errorOf(w8a8(xs, wsc, smax, nullptr));

  std::printf("W8A8 layer error: plain %.4g, outlier split %.4g (x%.1f), "
              "SmoothQuant %.4g (x%.1f)\n",
              plain, split, plain / split, smooth, plain / smooth);
  EXPECT_LT(split, plain / 4);
  EXPECT_LT(smooth, plain / 2);
}

TEST(SmoothTest, WeightOutliersKeepTheLargestPerRow) {
  std::vector<float> w = {0.1f, -5, 0.2f, 3, /**/ 1, 1, -1, 0.5f};
  auto o = weightOutliers({w.data(), 2, 4}, 0.5);
  ASSERT_EQ(o.size(), 4u);
  EXPECT_EQ(o[0].col, 1);
  EXPECT_EQ(o[1].col, 3);
  EXPECT_EQ(o[2].col, 0); // ties broken by column
  EXPECT_EQ(o[3].col, 1);
  EXPECT_TRUE(weightOutliers({w.data(), 2, 4}, 0.0).empty());
}

TEST(SmoothTest, PerTokenActivationQuantization) {
  std::vector<float> x = {1, -2, 0.5f, 0, 0, 0};
  auto q = fakeQuantizePerToken({x.data(), 2, 3}, Format::intN(8, true));
  EXPECT_FLOAT_EQ(q[1], -2.0f);             // the row max is exact
  EXPECT_NEAR(q[2], 0.5f, 2.0f / 127 / 2);  // within half a step
  EXPECT_EQ(q[3], 0.0f) << "an all-zero row stays zero (scale 1)";
}

} // namespace
