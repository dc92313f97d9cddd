//===- Hessian.cpp - Streaming GPTQ Hessian accumulation ------------------===//
//
// X^T X by OpenBLAS SYRK: f32 SYRK over at most kMaxFloatRows rows into a
// float scratch matrix, then added to the f64 sum (upper triangle only).
//
//===----------------------------------------------------------------------===//

#include "nibble/Quant/Weights.h"

#include <cblas.h>

#include <algorithm>
#include <cassert>
#include <utility>

namespace nibble::quant {

HessianAccumulator::HessianAccumulator(int64_t k)
    : k_(k), sum_(size_t(k * k), 0.0) {}

void HessianAccumulator::add(const float *x, int64_t n) {
  if (n <= 0)
    return;
  scratch_.resize(sum_.size());
  for (int64_t t = 0; t < n; t += kMaxFloatRows) {
    int64_t m = std::min(kMaxFloatRows, n - t);
    // Row-major upper C = A^T A with A the m x k slab of rows.
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(k_), int(m), 1.0f,
                x + t * k_, int(k_), 0.0f, scratch_.data(), int(k_));
    for (int64_t i = 0; i < k_; ++i) {
      const float *src = scratch_.data() + i * k_;
      double *dst = sum_.data() + i * k_;
      for (int64_t j = i; j < k_; ++j)
        dst[j] += double(src[j]);
    }
  }
  samples_ += n;
}

void HessianAccumulator::merge(const HessianAccumulator &other) {
  assert(other.k_ == k_ && "merging Hessians of different sizes");
  for (size_t i = 0; i < sum_.size(); ++i)
    sum_[i] += other.sum_[i];
  samples_ += other.samples_;
}

/// f * the upper triangle of `sum`, mirrored into a full k*k matrix.
static std::vector<double> symmetricScaled(const std::vector<double> &sum,
                                           int64_t k, double f) {
  std::vector<double> h(sum.size(), 0.0);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i; j < k; ++j)
      h[i * k + j] = h[j * k + i] = f * sum[i * k + j];
  return h;
}

std::vector<double> HessianAccumulator::hessian() const {
  if (samples_ == 0)
    return std::vector<double>(sum_.size(), 0.0);
  return symmetricScaled(sum_, k_, 2.0 / double(samples_));
}

std::vector<double> HessianAccumulator::gram() const {
  return symmetricScaled(sum_, k_, 1.0);
}

void HessianAccumulator::setSum(std::vector<double> sum, int64_t samples) {
  assert(int64_t(sum.size()) == k_ * k_ && "setSum: wrong size");
  sum_ = std::move(sum);
  samples_ = samples;
}

} // namespace nibble::quant
