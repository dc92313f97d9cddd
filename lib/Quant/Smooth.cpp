//===- Smooth.cpp - Activation-aware scaling and outlier handling ---------===//

#include "nibble/Quant/Smooth.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

namespace nibble::quant {

double outputError(MatrixView x, MatrixView w, MatrixView q) {
  // sum_t sum_n (x_t . (w_n - q_n))^2: one pass over the difference matrix.
  std::vector<float> d(size_t(w.rows * w.cols));
  for (int64_t i = 0; i < w.rows * w.cols; ++i)
    d[i] = w.data[i] - q.data[i];
  double total = 0;
  for (int64_t t = 0; t < x.rows; ++t) {
    const float *xr = x.data + t * x.cols;
    for (int64_t n = 0; n < w.rows; ++n) {
      const float *dr = d.data() + n * w.cols;
      double acc = 0;
      for (int64_t j = 0; j < w.cols; ++j)
        acc += double(xr[j]) * dr[j];
      total += acc * acc;
    }
  }
  return total;
}

double gramError(const std::vector<double> &gram, MatrixView w, MatrixView q) {
  // D = W - Q in double; sum_n d_n^T G d_n = sum(D .* (D G)), with D G one
  // BLAS GEMM (G is symmetric).
  const int64_t n = w.rows, k = w.cols;
  std::vector<double> d(static_cast<size_t>(n * k)), dg(d.size());
  for (int64_t i = 0; i < n * k; ++i)
    d[i] = double(w.data[i]) - double(q.data[i]);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(k), int(k),
              1.0, d.data(), int(k), gram.data(), int(k), 0.0, dg.data(),
              int(k));
  double total = 0;
  for (size_t i = 0; i < d.size(); ++i)
    total += d[i] * dg[i];
  return total;
}

namespace {

/// RTN of W * diag(s), returned as the effective float weights Q / s.
std::optional<std::vector<float>> scaledRTN(MatrixView w,
                                            const std::vector<float> &s,
                                            const WeightScheme &scheme,
                                            const RTNOptions &rtn,
                                            std::string &error) {
  std::vector<float> scaled(size_t(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t j = 0; j < w.cols; ++j)
      scaled[r * w.cols + j] = w.at(r, j) * s[j];
  auto q = quantizeRTN({scaled.data(), w.rows, w.cols}, scheme, rtn, error);
  if (!q)
    return std::nullopt;
  std::vector<float> eff = q->dequantize();
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t j = 0; j < w.cols; ++j)
      eff[r * w.cols + j] /= s[j];
  return eff;
}

} // namespace

using ErrorFn = std::function<double(MatrixView w, MatrixView q)>;

static std::optional<AWQResult>
searchAWQImpl(const std::vector<MatrixView> &weights, int64_t k,
              const ErrorFn &outputErr, const std::vector<float> &meanAbs,
              const WeightScheme &scheme, const AWQOptions &options,
              std::string &error) {
  if (int64_t(meanAbs.size()) != k) {
    error = "AWQ: mean |x| has " + std::to_string(meanAbs.size()) +
            " channels, the activations " + std::to_string(k);
    return std::nullopt;
  }
  for (const MatrixView &w : weights)
    if (w.cols != k) {
      error = "AWQ: a weight has " + std::to_string(w.cols) +
              " input channels, the activations " + std::to_string(k);
      return std::nullopt;
    }
  if (!options.channelClass.empty() &&
      int64_t(options.channelClass.size()) != k) {
    error = "AWQ: channelClass must have one entry per input channel";
    return std::nullopt;
  }
  // Per-channel statistic, averaged within classes.
  std::vector<float> stat = meanAbs;
  if (!options.channelClass.empty()) {
    std::map<int64_t, std::pair<double, int>> acc;
    for (int64_t j = 0; j < k; ++j) {
      auto &a = acc[options.channelClass[j]];
      a.first += meanAbs[j];
      a.second += 1;
    }
    for (int64_t j = 0; j < k; ++j) {
      const auto &a = acc[options.channelClass[j]];
      stat[j] = float(a.first / a.second);
    }
  }
  // Channels that never fire get the smallest positive statistic, so their
  // scale is finite and small (their weights matter least).
  float smallest = INFINITY;
  for (float v : stat)
    if (v > 0 && std::isfinite(v))
      smallest = std::min(smallest, v);
  if (!std::isfinite(smallest))
    smallest = 1.0f;
  for (float &v : stat)
    if (!(v > 0) || !std::isfinite(v))
      v = smallest;

  RTNOptions rtn;
  rtn.mseClip = options.clipSearch;
  AWQResult best;
  best.bestError = INFINITY;
  const int grid = std::max(1, options.gridSize);
  for (int g = 0; g < grid; ++g) {
    const float alpha = float(g) / float(grid);
    std::vector<float> s(static_cast<size_t>(k));
    float lo = INFINITY, hi = 0;
    for (int64_t j = 0; j < k; ++j) {
      s[j] = std::pow(stat[j], alpha);
      lo = std::min(lo, s[j]);
      hi = std::max(hi, s[j]);
    }
    // Normalise around 1 (geometric middle of the range), as AWQ does, so
    // the scaled weights stay in a sane range.
    const float mid = std::sqrt(lo * hi);
    for (float &v : s)
      v /= mid;
    double err = 0;
    for (const MatrixView &w : weights) {
      auto eff = scaledRTN(w, s, scheme, rtn, error);
      if (!eff)
        return std::nullopt;
      err += outputErr(w, {eff->data(), w.rows, w.cols});
    }
    if (g == 0)
      best.rtnError = err;
    if (err < best.bestError) {
      best.bestError = err;
      best.alpha = alpha;
      best.scales = s;
    }
  }
  return best;
}

std::optional<AWQResult> searchAWQ(const std::vector<MatrixView> &weights,
                                   MatrixView x,
                                   const std::vector<float> &meanAbs,
                                   const WeightScheme &scheme,
                                   const AWQOptions &options,
                                   std::string &error) {
  if (weights.empty() || x.rows == 0) {
    error = "AWQ needs at least one weight and one calibration sample";
    return std::nullopt;
  }
  return searchAWQImpl(
      weights, x.cols,
      [&](MatrixView w, MatrixView q) { return outputError(x, w, q); },
      meanAbs, scheme, options, error);
}

std::optional<AWQResult> searchAWQGram(const std::vector<MatrixView> &weights,
                                       const std::vector<double> &gram,
                                       const std::vector<float> &meanAbs,
                                       const WeightScheme &scheme,
                                       const AWQOptions &options,
                                       std::string &error) {
  const int64_t k = int64_t(meanAbs.size());
  if (weights.empty() || int64_t(gram.size()) != k * k) {
    error = "AWQ needs at least one weight and a k x k Gram matrix (k = " +
            std::to_string(k) + ")";
    return std::nullopt;
  }
  return searchAWQImpl(
      weights, k,
      [&](MatrixView w, MatrixView q) { return gramError(gram, w, q); },
      meanAbs, scheme, options, error);
}

std::optional<AWQQuantized> quantizeAWQ(MatrixView w,
                                        const std::vector<double> &gram,
                                        const std::vector<float> &meanAbs,
                                        const std::vector<float> &meanSq,
                                        const WeightScheme &scheme,
                                        std::string &error) {
  const int64_t k = w.cols;
  if (int64_t(meanSq.size()) != k) {
    error = "AWQ: mean x^2 has " + std::to_string(meanSq.size()) +
            " channels, the weight " + std::to_string(k);
    return std::nullopt;
  }
  auto r = searchAWQGram({w}, gram, meanAbs, scheme, {}, error);
  if (!r)
    return std::nullopt;
  RTNOptions clip;
  clip.mseClip = true;
  clip.importance = meanSq;
  for (int64_t j = 0; j < k; ++j)
    clip.importance[j] /= r->scales[j] * r->scales[j];
  std::vector<float> scaled(static_cast<size_t>(w.rows * k));
  for (int64_t n = 0; n < w.rows; ++n)
    for (int64_t j = 0; j < k; ++j)
      scaled[n * k + j] = w.at(n, j) * r->scales[j];
  auto q = quantizeRTN({scaled.data(), w.rows, k}, scheme, clip, error);
  if (!q)
    return std::nullopt;
  return AWQQuantized{std::move(*q), std::move(r->scales)};
}

std::vector<float> smoothQuantScales(const std::vector<MatrixView> &weights,
                                     const std::vector<float> &actAbsMax,
                                     float migration) {
  const int64_t k = int64_t(actAbsMax.size());
  std::vector<float> wMax(size_t(k), 0.0f);
  for (const MatrixView &w : weights)
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t j = 0; j < std::min(k, w.cols); ++j)
        wMax[j] = std::max(wMax[j], std::fabs(w.at(r, j)));
  std::vector<float> s(size_t(k), 1.0f);
  for (int64_t j = 0; j < k; ++j) {
    float a = actAbsMax[j], b = wMax[j];
    if (a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b))
      s[j] = std::pow(a, migration) / std::pow(b, 1.0f - migration);
  }
  return s;
}

std::vector<int64_t> outlierChannels(const std::vector<float> &actAbsMax,
                                     float threshold) {
  std::vector<int64_t> out;
  for (int64_t j = 0; j < int64_t(actAbsMax.size()); ++j)
    if (actAbsMax[j] > threshold)
      out.push_back(j);
  return out;
}

std::vector<SparseEntry> weightOutliers(MatrixView w, double fraction) {
  std::vector<SparseEntry> out;
  const int64_t keep =
      std::min(w.cols, int64_t(std::ceil(fraction * double(w.cols))));
  std::vector<int64_t> idx(size_t(w.cols));
  for (int64_t r = 0; r < w.rows && keep > 0; ++r) {
    for (int64_t j = 0; j < w.cols; ++j)
      idx[j] = j;
    // Largest |w| first; ties by column for determinism.
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(),
                      [&](int64_t a, int64_t b) {
                        float fa = std::fabs(w.at(r, a)),
                              fb = std::fabs(w.at(r, b));
                        return fa != fb ? fa > fb : a < b;
                      });
    std::sort(idx.begin(), idx.begin() + keep);
    for (int64_t i = 0; i < keep; ++i)
      out.push_back({r, idx[i], w.at(r, idx[i])});
  }
  return out;
}

static std::vector<float> fakeQuantizeRows(MatrixView x,
                                           const formats::Format &format,
                                           const float *fixedAbsMax) {
  std::vector<float> out(size_t(x.rows * x.cols));
  const float qmax = format.maxValue();
  for (int64_t t = 0; t < x.rows; ++t) {
    const float *row = x.data + t * x.cols;
    float amax = 0;
    if (fixedAbsMax) {
      amax = *fixedAbsMax;
    } else {
      for (int64_t j = 0; j < x.cols; ++j)
        amax = std::max(amax, std::fabs(row[j]));
    }
    float scale = amax > 0 ? amax / qmax : 1.0f;
    for (int64_t j = 0; j < x.cols; ++j)
      out[t * x.cols + j] = formats::dequantizeScalar(
          format, formats::quantizeScalar(format, row[j], scale), scale);
  }
  return out;
}

std::vector<float> fakeQuantizePerToken(MatrixView x,
                                        const formats::Format &format) {
  return fakeQuantizeRows(x, format, nullptr);
}

std::vector<float> fakeQuantizePerTensor(MatrixView x,
                                         const formats::Format &format,
                                         float absMax) {
  return fakeQuantizeRows(x, format, &absMax);
}

} // namespace nibble::quant
