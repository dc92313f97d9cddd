//===- RTNTest.cpp - Round-to-nearest weight quantization -----------------===//
//
// Hand-checked codes, scales and zero points; defined results for bad input;
// other formats; the MSE clip search and importance weighting.
//
//===----------------------------------------------------------------------===//

#include "nibble/Quant/Weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

using namespace nibble::formats;
using namespace nibble::quant;

namespace {

QuantizedWeight rtn(const std::vector<float> &w, int64_t rows,
                    const WeightScheme &scheme, const RTNOptions &opt = {}) {
  std::string error;
  auto q = quantizeRTN({w.data(), rows, int64_t(w.size()) / rows}, scheme, opt,
                       error);
  EXPECT_TRUE(q) << error;
  return q ? *q : QuantizedWeight{};
}

std::string rtnError(const std::vector<float> &w, int64_t rows,
                     const WeightScheme &scheme, const RTNOptions &opt = {}) {
  std::string error;
  auto q = quantizeRTN({w.data(), rows, int64_t(w.size()) / rows}, scheme, opt,
                       error);
  EXPECT_FALSE(q);
  return error;
}

std::vector<float> gaussian(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

TEST(RTN, Int4SymmetricByHand) {
  // absmax 3.5 -> scale 3.5 / 7 = 0.5 (not / 8: 0 stays exact and -8 is
  // unused); 1.25 / 0.5 = 2.5 ties to the even code 2.
  std::vector<float> w = {1.0f, -3.5f, 1.25f, 0.0f};
  QuantizedWeight q = rtn(w, 1, {Format::intN(4, true), 0, true});
  EXPECT_EQ(q.groupSize, 4);
  ASSERT_EQ(q.scales.size(), 1u);
  EXPECT_EQ(q.scales[0], 0.5f);
  EXPECT_TRUE(q.zeroPoints.empty());
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{2, 9 /* -7 */, 2, 0}));
  EXPECT_EQ(q.dequantize(), (std::vector<float>{1.0f, -3.5f, 1.0f, 0.0f}));
  EXPECT_DOUBLE_EQ(weightedError({w.data(), 1, 4}, q), 0.0625);
  EXPECT_DOUBLE_EQ(weightedError({w.data(), 1, 4}, q, {1, 1, 4, 1}), 0.25);
}

TEST(RTN, UInt4AsymmetricByHand) {
  // range [-1.5, 6] -> scale 7.5 / 15 = 0.5, zero = round(0 + 1.5 / 0.5) = 3;
  // 0.25 / 0.5 + 3 = 3.5 ties to 4.
  std::vector<float> w = {-1.5f, 0.0f, 0.25f, 6.0f};
  QuantizedWeight q = rtn(w, 1, {Format::intN(4, false), 0, false});
  ASSERT_EQ(q.scales.size(), 1u);
  ASSERT_EQ(q.zeroPoints.size(), 1u);
  EXPECT_EQ(q.scales[0], 0.5f);
  EXPECT_EQ(q.zeroPoints[0], 3.0f);
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 3, 4, 15}));
  EXPECT_EQ(q.dequantize(), (std::vector<float>{-1.5f, 0.0f, 0.5f, 6.0f}));

  // An all-positive group: the range is widened to contain 0, so the zero
  // point is 0 and the scale max / 15.
  std::vector<float> pos = {3.0f, 7.5f, 15.0f, 6.0f};
  QuantizedWeight p = rtn(pos, 1, {Format::intN(4, false), 0, false});
  EXPECT_EQ(p.scales[0], 1.0f);
  EXPECT_EQ(p.zeroPoints[0], 0.0f);
  EXPECT_EQ(p.codes, (std::vector<uint8_t>{3, 8, 15, 6}));

  // Asymmetric on a signed format uses its code range -8..7.
  QuantizedWeight s = rtn(w, 1, {Format::intN(4, true), 0, false});
  EXPECT_EQ(s.scales[0], 0.5f);
  EXPECT_EQ(s.zeroPoints[0], -5.0f);
  EXPECT_EQ(s.dequantize(), (std::vector<float>{-1.5f, 0.0f, 0.5f, 6.0f}));
}

TEST(RTN, AllZeroGroup) {
  std::vector<float> w = {0, 0, 0, 0, 1, -2, 0.5f, 2};
  for (bool symmetric : {true, false}) {
    QuantizedWeight q =
        rtn(w, 1, {Format::intN(4, symmetric), 4, symmetric});
    ASSERT_EQ(q.scales.size(), 2u);
    EXPECT_EQ(q.scales[0], 1.0f);
    std::vector<float> deq = q.dequantize();
    for (int c = 0; c < 4; ++c)
      EXPECT_EQ(deq[c], 0.0f) << "column " << c;
    EXPECT_EQ(q.scales[1], symmetric ? 2.0f / 7 : 4.0f / 15);
    for (float v : deq)
      EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(RTN, NaNAndInfAreRejected) {
  std::vector<float> w(8, 1.0f);
  w[1 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
  std::string e = rtnError(w, 2, {});
  EXPECT_NE(e.find("row 1"), std::string::npos) << e;
  EXPECT_NE(e.find("column 2"), std::string::npos) << e;
  EXPECT_NE(e.find("NaN"), std::string::npos) << e;

  w[1 * 4 + 2] = 1.0f;
  w[0 * 4 + 3] = -std::numeric_limits<float>::infinity();
  e = rtnError(w, 2, {});
  EXPECT_NE(e.find("row 0, column 3"), std::string::npos) << e;
  EXPECT_NE(e.find("infinite"), std::string::npos) << e;
}

TEST(RTN, BadSchemes) {
  std::vector<float> w = gaussian(16, 1);
  std::string e = rtnError(w, 2, {Format::intN(4, true), 3, true});
  EXPECT_NE(e.find("group size 3 does not divide the 8 columns"),
            std::string::npos)
      << e;
  e = rtnError(w, 2, {Format::e2m1fn(), 0, false});
  EXPECT_NE(e.find("integer format"), std::string::npos) << e;
  EXPECT_NE(e.find("e2m1fn"), std::string::npos) << e;
  e = rtnError(w, 2, {Format::nf4(), 0, false});
  EXPECT_NE(e.find("nf4"), std::string::npos) << e;
  e = rtnError(w, 2, {Format::intN(4, false), 0, true});
  EXPECT_NE(e.find("uint4"), std::string::npos) << e;
  e = rtnError(w, 2, {Format::f16(), 0, true});
  EXPECT_NE(e.find("8 bits"), std::string::npos) << e;

  RTNOptions imp;
  imp.importance.assign(8, 1.0f);
  e = rtnError(w, 2, {}, imp); // importance without the search
  EXPECT_NE(e.find("mseClip"), std::string::npos) << e;
  imp.mseClip = true;
  imp.importance.resize(7);
  e = rtnError(w, 2, {}, imp);
  EXPECT_NE(e.find("7 entries for 8 columns"), std::string::npos) << e;
  imp.importance.assign(8, 1.0f);
  imp.importance[5] = -1;
  e = rtnError(w, 2, {}, imp);
  EXPECT_NE(e.find("column 5"), std::string::npos) << e;
  RTNOptions clip;
  clip.mseClip = true;
  clip.minClip = 0;
  e = rtnError(w, 2, {}, clip);
  EXPECT_NE(e.find("minClip"), std::string::npos) << e;
}

TEST(RTN, FloatAndLutFormatsScaleByMaxValue) {
  // e2m1: max 6; absmax 3 -> scale 0.5 and every value is on the grid.
  std::vector<float> w = {3.0f, -1.5f, 0.75f, 0.0f, 0.25f, -2.0f};
  QuantizedWeight q = rtn(w, 1, {Format::e2m1fn(), 0, true});
  EXPECT_EQ(q.scales[0], 0.5f);
  EXPECT_EQ(q.dequantize(), w);

  // nf4: max 1, so scale = absmax and the largest magnitude is exact.
  std::vector<float> g = gaussian(64, 2);
  g[17] = -4.0f; // the absmax, at the LUT's -1
  QuantizedWeight n = rtn(g, 1, {Format::nf4(), 0, true});
  EXPECT_EQ(n.scales[0], 4.0f);
  std::vector<float> deq = n.dequantize();
  EXPECT_EQ(deq[17], -4.0f);
  for (size_t i = 0; i < g.size(); ++i) {
    bool onGrid = false;
    for (float v : Format::nf4Values())
      onGrid |= deq[i] == v * 4.0f;
    EXPECT_TRUE(onGrid) << i;
  }

  // e4m3fn: max 448; 3 mantissa bits give a relative error <= 2^-4 on
  // normal values.
  QuantizedWeight e = rtn(g, 1, {Format::e4m3fn(), 0, true});
  EXPECT_EQ(e.scales[0], 4.0f / 448.0f);
  deq = e.dequantize();
  EXPECT_FLOAT_EQ(deq[17], -4.0f);
  for (size_t i = 0; i < g.size(); ++i) // + half the scaled subnormal step
    EXPECT_LE(std::fabs(deq[i] - g[i]), std::fabs(g[i]) / 16 + 1e-5f) << i;
}

TEST(RTN, MseClipNeverHurtsAndHelpsHeavyTails) {
  WeightScheme scheme{Format::intN(4, true), 32, true};
  RTNOptions search;
  search.mseClip = true;
  std::vector<float> w = gaussian(16 * 128, 3);
  MatrixView v{w.data(), 16, 128};
  QuantizedWeight plain = rtn(w, 16, scheme);
  QuantizedWeight clipped = rtn(w, 16, scheme, search);
  // Per group (the importance masks one group): the grid contains clip 1,
  // so no group gets worse.
  for (int64_t gi = 0; gi < 4; ++gi) {
    std::vector<float> mask(128, 0.0f);
    for (int j = 0; j < 32; ++j)
      mask[gi * 32 + j] = 1.0f;
    EXPECT_LE(weightedError(v, clipped, mask), weightedError(v, plain, mask));
  }
  EXPECT_LT(weightedError(v, clipped), weightedError(v, plain));

  // One outlier in a Gaussian row: clipping it buys precision for the rest.
  std::vector<float> heavy = gaussian(256, 4);
  heavy[40] = 12.0f;
  WeightScheme perRow{Format::intN(4, true), 0, true};
  QuantizedWeight hp = rtn(heavy, 1, perRow);
  QuantizedWeight hc = rtn(heavy, 1, perRow, search);
  EXPECT_LT(hc.scales[0], hp.scales[0]);
  EXPECT_LT(weightedError({heavy.data(), 1, 256}, hc),
            0.9 * weightedError({heavy.data(), 1, 256}, hp));
}

TEST(RTN, ImportanceShiftsErrorToUnimportantColumns) {
  const int64_t rows = 32, cols = 64;
  std::vector<float> w = gaussian(size_t(rows * cols), 5);
  for (int64_t r = 0; r < rows; ++r)
    w[r * cols + (r % cols)] *= 6; // an outlier per row
  std::vector<float> importance(cols);
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float &x : importance)
    x = std::pow(u(rng), 4.0f) * 100; // a few columns matter a lot
  WeightScheme scheme{Format::intN(3, true), 16, true};
  RTNOptions plain;
  plain.mseClip = true;
  RTNOptions weighted = plain;
  weighted.importance = importance;
  QuantizedWeight qp = rtn(w, rows, scheme, plain);
  QuantizedWeight qw = rtn(w, rows, scheme, weighted);
  MatrixView v{w.data(), rows, cols};
  // Each group minimises the weighted error over the grid, so the weighted
  // total can only be lower than that of the unweighted optimum...
  double wp = weightedError(v, qp, importance);
  double ww = weightedError(v, qw, importance);
  EXPECT_LE(ww, wp);
  EXPECT_LT(ww, 0.99 * wp);
  // ...and the price is paid on the unweighted error.
  EXPECT_GE(weightedError(v, qw), weightedError(v, qp));
}

} // namespace

TEST(RTN, E8M0ScalesArePowersOfTwoThatNeverClip) {
  // MXFP4: absmax 3 -> f32 scale 0.5 is already a power of two; absmax 5
  // -> 5/6 rounds up to 1 (the maximum 5 stays in range instead of
  // clipping to 6 * 0.5 = 3).
  std::vector<float> w = {3.0f, -1.5f, 0.75f, 0.0f, 5.0f, -2.0f, 1.0f, 0.5f};
  WeightScheme s{Format::e2m1fn(), 4, true, ScaleStorage::E8M0};
  QuantizedWeight q = rtn(w, 1, s);
  EXPECT_EQ(q.scaleStorage, ScaleStorage::E8M0);
  EXPECT_EQ(q.scales, (std::vector<float>{0.5f, 1.0f}));
  std::vector<float> deq = q.dequantize();
  EXPECT_EQ(deq[4], 4.0f); // 5 is between 4 and 6; ties are not involved
  EXPECT_EQ(deq[0], 3.0f);

  // Random groups: every scale a power of two, within [1, 2) of the f32
  // one, and no value clipped.
  std::vector<float> g = gaussian(32 * 64, 5);
  QuantizedWeight e = rtn(g, 32, {Format::e2m1fn(), 32, true,
                                  ScaleStorage::E8M0});
  QuantizedWeight f = rtn(g, 32, {Format::e2m1fn(), 32, true});
  for (size_t i = 0; i < e.scales.size(); ++i) {
    int exp = 0;
    EXPECT_EQ(std::frexp(e.scales[i], &exp), 0.5f) << i;
    EXPECT_GE(e.scales[i], f.scales[i]) << i;
    EXPECT_LT(e.scales[i], 2 * f.scales[i]) << i;
  }
  deq = e.dequantize();
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_LE(std::fabs(deq[i] - g[i]),
              e.scales[i / 32] + 1e-6f) << i; // half of e2m1's widest step
  // The clip search sees the rounded scales and never does worse.
  RTNOptions mse;
  mse.mseClip = true;
  QuantizedWeight m = rtn(g, 32, {Format::e2m1fn(), 32, true,
                                  ScaleStorage::E8M0}, mse);
  EXPECT_LE(weightedError({g.data(), 32, 64}, m),
            weightedError({g.data(), 32, 64}, e));
}

TEST(RTN, E4M3ScalesHaveOneTensorScale) {
  // NVFP4-style: the largest group scale maps to e4m3's 448; every group
  // scale is an e4m3 value times the tensor scale.
  std::vector<float> g = gaussian(16 * 64, 6);
  g[100] = 12.0f; // the tensor's absmax
  WeightScheme s{Format::e2m1fn(), 16, true, ScaleStorage::E4M3};
  QuantizedWeight q = rtn(g, 16, s);
  EXPECT_EQ(q.scaleStorage, ScaleStorage::E4M3);
  EXPECT_FLOAT_EQ(q.tensorScale, 12.0f / 6.0f / 448.0f);
  const Format e4m3 = Format::e4m3fn();
  for (size_t i = 0; i < q.scales.size(); ++i) {
    // The code the stored scale stands for gives it back exactly.
    float c = e4m3.decode(e4m3.encode(q.scales[i] / q.tensorScale));
    EXPECT_EQ(c * q.tensorScale, q.scales[i]) << i;
    EXPECT_GT(c, 0.0f) << i;
  }
  EXPECT_EQ(q.scales[100 / 16], 2.0f); // 448 * T exactly
  // Rounding the scales to e4m3 costs little against f32 scales.
  QuantizedWeight f = rtn(g, 16, {Format::e2m1fn(), 16, true});
  EXPECT_LT(weightedError({g.data(), 16, 64}, q),
            1.2 * weightedError({g.data(), 16, 64}, f));

  // Zero points with 8-bit scales are rejected.
  EXPECT_NE(rtnError(g, 16, {Format::intN(4, false), 16, false,
                             ScaleStorage::E8M0})
                .find("symmetric"),
            std::string::npos);
}
