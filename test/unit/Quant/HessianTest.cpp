//===- HessianTest.cpp - Streaming Hessian accumulation -------------------===//
//
// Against a naive double X^T X * 2 / n; merging; raw sums. (Memory is
// O(k^2) by construction: only the k*k sum and a k*k float scratch exist.)
//
//===----------------------------------------------------------------------===//

#include "nibble/Quant/Weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace nibble::quant;

namespace {

std::vector<float> randomRows(int64_t n, int64_t k, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> x(size_t(n * k));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < k; ++j)
      x[t * k + j] = d(rng) + (j % 5 == 0 ? 3.0f : 0.0f); // nonzero means
  return x;
}

std::vector<double> naiveHessian(const std::vector<float> &x, int64_t n,
                                 int64_t k) {
  std::vector<double> h(size_t(k * k), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j)
        h[i * k + j] += double(x[t * k + i]) * double(x[t * k + j]);
  for (double &v : h)
    v *= 2.0 / double(n);
  return h;
}

void expectClose(const std::vector<double> &a, const std::vector<double> &b) {
  ASSERT_EQ(a.size(), b.size());
  double scale = 0;
  for (double v : b)
    scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], 1e-6 * scale) << "entry " << i;
}

TEST(Hessian, MatchesNaiveDouble) {
  // 2500 rows: more than one float SYRK chunk (kMaxFloatRows), added in
  // uneven batches.
  const int64_t k = 37, n = 2500;
  std::vector<float> x = randomRows(n, k, 1);
  HessianAccumulator acc(k);
  int64_t t = 0;
  for (int64_t batch : {1, 0, 600, 1899})
    acc.add(x.data() + t * k, batch), t += batch;
  ASSERT_EQ(t, n);
  EXPECT_EQ(acc.samples(), n);
  std::vector<double> h = acc.hessian();
  expectClose(h, naiveHessian(x, n, k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j)
      ASSERT_EQ(h[i * k + j], h[j * k + i]); // full and symmetric
}

TEST(Hessian, MergeOfHalvesEqualsWhole) {
  const int64_t k = 24, n = 300;
  std::vector<float> x = randomRows(n, k, 2);
  HessianAccumulator whole(k), a(k), b(k);
  whole.add(x.data(), n);
  a.add(x.data(), 120);
  b.add(x.data() + 120 * k, n - 120);
  a.merge(b);
  EXPECT_EQ(a.samples(), n);
  expectClose(a.hessian(), whole.hessian());
}

TEST(Hessian, EmptyIsZeroAndSetSumRoundTrips) {
  const int64_t k = 8;
  HessianAccumulator empty(k);
  EXPECT_EQ(empty.samples(), 0);
  for (double v : empty.hessian())
    ASSERT_EQ(v, 0.0);

  std::vector<float> x = randomRows(50, k, 3);
  HessianAccumulator acc(k);
  acc.add(x.data(), 50);
  HessianAccumulator copy(k);
  copy.setSum(acc.sum(), acc.samples());
  EXPECT_EQ(copy.samples(), 50);
  EXPECT_EQ(copy.hessian(), acc.hessian());
  // The raw sum is X^T X without the 2 / n.
  EXPECT_NEAR(acc.sum()[1 * k + 2] * 2.0 / 50, acc.hessian()[2 * k + 1], 1e-9);
  // gram() is the full symmetric X^T X: the Hessian times n / 2.
  std::vector<double> g = acc.gram(), h = acc.hessian();
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_EQ(g[i * k + j], g[j * k + i]);
      EXPECT_NEAR(g[i * k + j], h[i * k + j] * 50 / 2.0,
                  1e-12 * (1 + std::fabs(g[i * k + j])));
    }
}

} // namespace
