//===- GPTQTest.cpp - GPTQ against an unblocked reference, and vs RTN -----===//
//
// The reference below is the textbook algorithm in plain double loops: the
// upper Cholesky factor of H^-1 by Cholesky, inverse, Cholesky, and every
// column's error propagated at once to all later columns (no blocks, no
// lazy batches). Group parameters come from quantizeRTN on the group's
// current weights (tested in RTNTest.cpp), so the library's double path must
// give the same codes, scales and zero points.
//
//===----------------------------------------------------------------------===//

#include "nibble/Quant/Weights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace nibble::formats;
using namespace nibble::quant;

namespace {

//===----------------------------------------------------------------------===//
// Reference
//===----------------------------------------------------------------------===//

struct Reference {
  std::vector<uint8_t> codes;
  std::vector<float> scales, zeroPoints;
  double loss = 0;
};

/// Upper U with U^T U = a^-1 the textbook way (k small).
std::vector<double> referenceInverseFactor(const std::vector<double> &a,
                                           int64_t k) {
  auto cholesky = [k](const std::vector<double> &m) { // lower L, L L^T = m
    std::vector<double> l(size_t(k * k), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      double d = m[j * k + j];
      for (int64_t p = 0; p < j; ++p)
        d -= l[j * k + p] * l[j * k + p];
      EXPECT_GT(d, 0.0);
      l[j * k + j] = std::sqrt(d);
      for (int64_t i = j + 1; i < k; ++i) {
        double s = m[i * k + j];
        for (int64_t p = 0; p < j; ++p)
          s -= l[i * k + p] * l[j * k + p];
        l[i * k + j] = s / l[j * k + j];
      }
    }
    return l;
  };
  std::vector<double> l = cholesky(a);
  std::vector<double> linv(size_t(k * k), 0.0); // forward substitution
  for (int64_t c = 0; c < k; ++c)
    for (int64_t i = c; i < k; ++i) {
      double s = i == c ? 1.0 : 0.0;
      for (int64_t p = c; p < i; ++p)
        s -= l[i * k + p] * linv[p * k + c];
      linv[i * k + c] = s / l[i * k + i];
    }
  std::vector<double> inv(size_t(k * k), 0.0); // a^-1 = L^-T L^-1
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      for (int64_t p = std::max(i, j); p < k; ++p)
        inv[i * k + j] += linv[p * k + i] * linv[p * k + j];
  std::vector<double> l2 = cholesky(inv);
  std::vector<double> u(size_t(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      u[i * k + j] = l2[j * k + i];
  return u;
}

Reference referenceGPTQ(std::vector<float> w, int64_t rows, int64_t k,
                        std::vector<double> h, const WeightScheme &scheme,
                        double damp, bool actOrder, bool mseClip) {
  const int64_t g = scheme.groupSize ? scheme.groupSize : k, groups = k / g;
  Reference ref;
  ref.codes.resize(size_t(rows * k));
  ref.scales.resize(size_t(rows * groups));
  ref.zeroPoints.resize(size_t(rows * groups));

  for (int64_t j = 0; j < k; ++j)
    if (h[j * k + j] == 0) {
      h[j * k + j] = 1;
      for (int64_t r = 0; r < rows; ++r)
        w[r * k + j] = 0;
    }
  // One group's parameters by the RTN rule: quantize it as a 1 x g matrix.
  RTNOptions rtnOptions;
  rtnOptions.mseClip = mseClip;
  auto setParams = [&](int64_t r, int64_t gi, const float *values) {
    std::string error;
    auto q = quantizeRTN({values, 1, g},
                         {scheme.format, 0, scheme.symmetric}, rtnOptions,
                         error);
    ASSERT_TRUE(q) << error;
    ref.scales[r * groups + gi] = q->scales[0];
    ref.zeroPoints[r * groups + gi] = scheme.symmetric ? 0 : q->zeroPoints[0];
  };
  if (actOrder) // static groups from the original weights
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t gi = 0; gi < groups; ++gi)
        setParams(r, gi, &w[r * k + gi * g]);

  std::vector<int64_t> perm(static_cast<size_t>(k));
  std::iota(perm.begin(), perm.end(), int64_t(0));
  if (actOrder)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      return h[a * k + a] > h[b * k + b];
    });
  double mean = 0;
  for (int64_t j = 0; j < k; ++j)
    mean += h[j * k + j] / double(k);
  std::vector<double> hp(size_t(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      hp[i * k + j] = h[perm[i] * k + perm[j]] + (i == j ? damp * mean : 0.0);
  std::vector<double> u = referenceInverseFactor(hp, k);

  std::vector<double> wp(size_t(rows * k));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < k; ++i)
      wp[r * k + i] = w[r * k + perm[i]];
  std::vector<float> groupValues(static_cast<size_t>(g));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t r = 0; r < rows; ++r) {
      double *row = &wp[r * k];
      if (!actOrder && i % g == 0) {
        for (int64_t j = 0; j < g; ++j)
          groupValues[j] = float(row[i + j]);
        setParams(r, i / g, groupValues.data());
      }
      int64_t gi = perm[i] / g;
      float scale = ref.scales[r * groups + gi];
      std::optional<float> zero;
      if (!scheme.symmetric)
        zero = ref.zeroPoints[r * groups + gi];
      uint32_t code = quantizeScalar(scheme.format, float(row[i]), scale, zero);
      ref.codes[r * k + perm[i]] = uint8_t(code);
      double q = dequantizeScalar(scheme.format, code, scale, zero);
      double e = (row[i] - q) / u[i * k + i];
      ref.loss += e * e / 2;
      for (int64_t j = i + 1; j < k; ++j)
        row[j] -= e * u[i * k + j];
    }
  if (scheme.symmetric)
    ref.zeroPoints.clear();
  return ref;
}

//===----------------------------------------------------------------------===//
// Data
//===----------------------------------------------------------------------===//

std::vector<float> gaussian(size_t n, unsigned seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// n activations of k channels with correlated channels: a low-rank mixing
/// of `latent` factors plus noise, channel scales varying over 0.5 .. 2.5,
/// and a few outlier channels (x20). `mixing` is fixed per k so that
/// calibration and held-out sets share the distribution.
std::vector<float> activations(int64_t n, int64_t k, unsigned seed) {
  const int64_t latent = 32;
  std::vector<float> mixing = gaussian(size_t(latent * k), 1000 + unsigned(k),
                                       1.0f / std::sqrt(float(latent)));
  std::vector<float> z = gaussian(size_t(n * latent), seed);
  std::vector<float> x = gaussian(size_t(n * k), seed + 1, 0.3f);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t p = 0; p < latent; ++p)
      for (int64_t j = 0; j < k; ++j)
        x[t * k + j] += z[t * latent + p] * mixing[p * k + j];
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < k; ++j)
      x[t * k + j] *= 0.5f + 2.0f * float(j % 7) / 6 +
                      (j % 61 == 3 ? 20.0f : 0.0f);
  return x;
}

std::vector<double> hessianOf(const std::vector<float> &x, int64_t k) {
  HessianAccumulator acc(k);
  acc.add(x.data(), int64_t(x.size()) / k);
  return acc.hessian();
}

GPTQResult gptq(const std::vector<float> &w, int64_t rows,
                const std::vector<double> &h, const WeightScheme &scheme,
                const GPTQOptions &options) {
  std::string error;
  auto r = quantizeGPTQ({w.data(), rows, int64_t(w.size()) / rows}, h, scheme,
                        options, error);
  EXPECT_TRUE(r) << error;
  return r ? *r : GPTQResult{};
}

std::string gptqError(const std::vector<float> &w, int64_t rows,
                      const std::vector<double> &h, const GPTQOptions &options,
                      const WeightScheme &scheme = {}) {
  std::string error;
  auto r = quantizeGPTQ({w.data(), rows, int64_t(w.size()) / rows}, h, scheme,
                        options, error);
  EXPECT_FALSE(r);
  return error;
}

//===----------------------------------------------------------------------===//
// Blocked library == unblocked reference (double path)
//===----------------------------------------------------------------------===//

struct Case {
  const char *name;
  WeightScheme scheme;
  int64_t blockSize;
  bool actOrder, mseClip, deadColumns;
};
void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class MatchesReference : public ::testing::TestWithParam<Case> {};

TEST_P(MatchesReference, SameCodesScalesAndZeros) {
  const Case &c = GetParam();
  const int64_t rows = 48, k = 96;
  std::vector<float> x = activations(400, k, 7);
  if (c.deadColumns)
    for (int64_t t = 0; t < 400; ++t)
      x[t * k + 10] = x[t * k + 50] = 0;
  std::vector<double> h = hessianOf(x, k);
  std::vector<float> w = gaussian(size_t(rows * k), 8);
  GPTQOptions options;
  options.blockSize = c.blockSize;
  options.actOrder = c.actOrder;
  options.mseClip = c.mseClip;
  options.useDouble = true;
  GPTQResult r = gptq(w, rows, h, c.scheme, options);
  Reference ref = referenceGPTQ(w, rows, k, h, c.scheme, options.damp,
                                c.actOrder, c.mseClip);
  EXPECT_EQ(r.deadColumns, c.deadColumns ? 2 : 0);
  EXPECT_EQ(r.weight.codes, ref.codes);
  EXPECT_EQ(r.weight.scales, ref.scales);
  EXPECT_EQ(r.weight.zeroPoints, ref.zeroPoints);
  EXPECT_NEAR(r.loss, ref.loss, 1e-9 * ref.loss);
}

INSTANTIATE_TEST_SUITE_P(
    GPTQ, MatchesReference,
    ::testing::Values(
        Case{"int4_g32_b32", {Format::intN(4, true), 32, true}, 32, false,
             false, false},
        Case{"int4_channel_b32", {Format::intN(4, true), 0, true}, 32, false,
             false, false},
        Case{"uint4_asym_g32_b48", {Format::intN(4, false), 32, false}, 48,
             false, false, false},
        Case{"int4_g48_b32", {Format::intN(4, true), 48, true}, 32, false,
             false, false},
        Case{"int3_g32_mse_b32", {Format::intN(3, true), 32, true}, 32, false,
             true, false},
        Case{"int4_g32_actorder_b32", {Format::intN(4, true), 32, true}, 32,
             true, false, false},
        Case{"uint4_asym_g32_actorder_dead_b20",
             {Format::intN(4, false), 32, false}, 20, true, false, true},
        Case{"nf4_g32_dead_b32", {Format::nf4(), 32, true}, 32, false, false,
             true}),
    [](const ::testing::TestParamInfo<Case> &info) {
      return std::string(info.param.name);
    });

//===----------------------------------------------------------------------===//
// GPTQ beats RTN on held-out activations
//===----------------------------------------------------------------------===//

/// ||X W^T - X Q^T||^2 over the rows of x.
double outputError(const std::vector<float> &x, const std::vector<float> &w,
                   const QuantizedWeight &q) {
  const int64_t k = q.cols, rows = q.rows, n = int64_t(x.size()) / k;
  std::vector<float> deq = q.dequantize();
  std::vector<double> diff(size_t(rows * k));
  for (size_t i = 0; i < diff.size(); ++i)
    diff[i] = double(w[i]) - double(deq[i]);
  double total = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double y = 0;
      for (int64_t j = 0; j < k; ++j)
        y += diff[r * k + j] * double(x[t * k + j]);
      total += y * y;
    }
  return total;
}

TEST(GPTQ, BeatsRTNOnHeldOutActivations) {
  const int64_t rows = 256, k = 512;
  std::vector<float> calibration = activations(2048, k, 11);
  std::vector<float> heldOut = activations(1024, k, 12);
  std::vector<double> h = hessianOf(calibration, k);
  std::vector<float> w = gaussian(size_t(rows * k), 13, 0.02f);
  for (int bits : {4, 3})
    for (bool symmetric : {true, false}) {
      WeightScheme scheme{Format::intN(bits, symmetric), 64, symmetric};
      std::string error;
      auto rtn = quantizeRTN({w.data(), rows, k}, scheme, {}, error);
      ASSERT_TRUE(rtn) << error;
      GPTQResult g = gptq(w, rows, h, scheme, GPTQOptions{});
      double eRtn = outputError(heldOut, w, *rtn);
      double eGptq = outputError(heldOut, w, g.weight);
      EXPECT_LT(eGptq, 0.5 * eRtn)
          << scheme.format.name() << (symmetric ? " sym" : " asym")
          << ": GPTQ " << eGptq << " RTN " << eRtn;
    }
}

//===----------------------------------------------------------------------===//
// Degenerate Hessians
//===----------------------------------------------------------------------===//

TEST(GPTQ, DeadChannelsAreZeroed) {
  const int64_t rows = 16, k = 64;
  std::vector<float> x = activations(300, k, 21);
  for (int64_t t = 0; t < 300; ++t)
    x[t * k + 5] = x[t * k + 17] = x[t * k + 63] = 0;
  std::vector<double> h = hessianOf(x, k);
  std::vector<float> w = gaussian(size_t(rows * k), 22);
  for (bool actOrder : {false, true})
    for (bool useDouble : {false, true}) {
      GPTQOptions options;
      options.actOrder = actOrder;
      options.useDouble = useDouble;
      GPTQResult r =
          gptq(w, rows, h, {Format::intN(4, true), 16, true}, options);
      EXPECT_EQ(r.deadColumns, 3);
      EXPECT_TRUE(std::isfinite(r.loss));
      std::vector<float> deq = r.weight.dequantize();
      ASSERT_EQ(deq.size(), size_t(rows * k));
      for (int64_t i = 0; i < rows * k; ++i) {
        ASSERT_TRUE(std::isfinite(deq[i])) << i;
        int64_t c = i % k;
        if (c == 5 || c == 17 || c == 63) {
          EXPECT_EQ(deq[i], 0.0f) << "row " << i / k << " column " << c;
        }
      }
    }
}

TEST(GPTQ, BadHessiansAreErrors) {
  const int64_t k = 8;
  std::vector<float> w = gaussian(size_t(2 * k), 31);
  for (bool useDouble : {false, true}) {
    GPTQOptions options;
    options.useDouble = useDouble;

    std::vector<double> negative(size_t(k * k), 0.0);
    for (int64_t j = 0; j < k; ++j)
      negative[j * k + j] = 1;
    negative[3 * k + 3] = -1;
    std::string e = gptqError(w, 2, negative, options);
    EXPECT_NE(e.find("diagonal entry 3 is negative"), std::string::npos) << e;

    // Unit diagonal, off-diagonal 3: eigenvalues 22 and -2, which a damp of
    // 0.01 * mean(diag) cannot lift.
    std::vector<double> indefinite(size_t(k * k), 3.0);
    for (int64_t j = 0; j < k; ++j)
      indefinite[j * k + j] = 1;
    e = gptqError(w, 2, indefinite, options);
    EXPECT_NE(e.find("not positive definite"), std::string::npos) << e;

    HessianAccumulator empty(k);
    e = gptqError(w, 2, empty.hessian(), options);
    EXPECT_NE(e.find("no calibration samples"), std::string::npos) << e;

    e = gptqError(w, 2, std::vector<double>(size_t(k * k - 1), 1.0), options);
    EXPECT_NE(e.find("Hessian has 63 entries"), std::string::npos) << e;
  }
}

//===----------------------------------------------------------------------===//
// Float path
//===----------------------------------------------------------------------===//

TEST(GPTQ, FloatPathAgreesWithDouble) {
  const int64_t rows = 128, k = 256;
  std::vector<double> h = hessianOf(activations(1024, k, 41), k);
  std::vector<float> w = gaussian(size_t(rows * k), 42);
  for (bool actOrder : {false, true}) {
    GPTQOptions options;
    options.actOrder = actOrder;
    WeightScheme scheme{Format::intN(4, true), 64, true};
    GPTQResult f = gptq(w, rows, h, scheme, options);
    options.useDouble = true;
    GPTQResult d = gptq(w, rows, h, scheme, options);
    size_t same = 0;
    for (size_t i = 0; i < f.weight.codes.size(); ++i)
      same += f.weight.codes[i] == d.weight.codes[i];
    EXPECT_GE(double(same), 0.99 * double(f.weight.codes.size()));
    for (size_t i = 0; i < f.weight.scales.size(); ++i)
      EXPECT_NEAR(f.weight.scales[i], d.weight.scales[i],
                  0.02 * d.weight.scales[i])
          << i;
    EXPECT_NEAR(f.loss, d.loss, 0.02 * d.loss);
  }
}

} // namespace
