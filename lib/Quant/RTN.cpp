//===- RTN.cpp - Round-to-nearest weight quantization ---------------------===//
//
// The group rule (scale, zero point, clip search) shared with GPTQ, RTN
// itself, dequantization and the weighted error.
//
//===----------------------------------------------------------------------===//

#include "GroupQuantizer.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

namespace nibble::quant {

using detail::GroupParams;
using detail::GroupQuantizer;

const char *scaleStorageName(ScaleStorage s) {
  switch (s) {
  case ScaleStorage::F32:
    return "f32";
  case ScaleStorage::E8M0:
    return "e8m0";
  case ScaleStorage::E4M3:
    return "e4m3";
  }
  return "?";
}

std::optional<ScaleStorage> parseScaleStorage(const std::string &name) {
  for (ScaleStorage s :
       {ScaleStorage::F32, ScaleStorage::E8M0, ScaleStorage::E4M3})
    if (name == scaleStorageName(s))
      return s;
  return std::nullopt;
}

int scaleStorageBits(ScaleStorage s) { return s == ScaleStorage::F32 ? 32 : 8; }

double storedBitsPerWeight(const WeightScheme &scheme, int64_t rows,
                           int64_t cols, unsigned codeBits) {
  const double g = double(scheme.groupSize ? scheme.groupSize : cols);
  double perGroup = scaleStorageBits(scheme.scaleStorage);
  if (!scheme.symmetric)
    perGroup += 32.0; // f32 zero point
  double bits = double(codeBits ? codeBits : unsigned(scheme.format.bits())) +
                perGroup / g;
  if (scheme.scaleStorage == ScaleStorage::E4M3 && rows * cols > 0)
    bits += 32.0 / double(rows * cols);
  return bits;
}

//===----------------------------------------------------------------------===//
// GroupQuantizer
//===----------------------------------------------------------------------===//

std::optional<GroupQuantizer>
GroupQuantizer::create(const WeightScheme &scheme, int64_t cols, bool mseClip,
                       float minClip, int clipSteps, std::string &error) {
  const formats::Format &f = scheme.format;
  if (f.bits() > 8) {
    error = "format " + f.name() + " has " + std::to_string(f.bits()) +
            " bits; weight codes are at most 8 bits";
    return std::nullopt;
  }
  if (scheme.groupSize < 0) {
    error = "group size must be >= 0 (0: per output channel), got " +
            std::to_string(scheme.groupSize);
    return std::nullopt;
  }
  int64_t g = scheme.groupSize ? scheme.groupSize : cols;
  if (cols % g != 0) {
    error = "group size " + std::to_string(g) + " does not divide the " +
            std::to_string(cols) + " columns";
    return std::nullopt;
  }
  if (scheme.symmetric && !(f.lowestValue() < 0)) {
    error = "symmetric quantization needs a format with negative values; " +
            f.name() + " has none (use an asymmetric scheme)";
    return std::nullopt;
  }
  if (!scheme.symmetric && scheme.scaleStorage != ScaleStorage::F32) {
    error = std::string(scaleStorageName(scheme.scaleStorage)) +
            " scales need a symmetric scheme (no zero points)";
    return std::nullopt;
  }
  if (!scheme.symmetric && f.kind() != formats::Kind::Int) {
    error = "asymmetric quantization needs an integer format; " + f.name() +
            " is not one";
    return std::nullopt;
  }
  if (mseClip && !(minClip > 0 && minClip <= 1)) {
    error = "minClip must be in (0, 1], got " + std::to_string(minClip);
    return std::nullopt;
  }
  if (mseClip && clipSteps < 1) {
    error = "clipSteps must be >= 1, got " + std::to_string(clipSteps);
    return std::nullopt;
  }

  GroupQuantizer q(f);
  q.symmetric_ = scheme.symmetric;
  q.groupSize_ = g;
  q.qmin_ = f.lowestValue();
  q.qmax_ = f.maxValue();
  q.storage_ = scheme.scaleStorage;
  q.clips_.push_back(1.0f);
  if (mseClip)
    for (int s = 1; s < clipSteps; ++s)
      q.clips_.push_back(1.0f - (1.0f - minClip) * float(s) /
                                    float(clipSteps - 1));
  return q;
}

/// Keeps a computed scale usable: 0 (underflow) and Inf (overflow of the
/// range) would turn codes into NaN.
static float clampScale(float s) {
  if (!(s > 0))
    return std::numeric_limits<float>::denorm_min();
  return std::min(s, std::numeric_limits<float>::max());
}

static const formats::Format &e4m3() {
  static const formats::Format f =
      *formats::Format::byName("e4m3fn");
  return f;
}

void GroupQuantizer::setTensorScaleFor(MatrixView w) {
  if (storage_ != ScaleStorage::E4M3)
    return;
  float amax = 0;
  for (int64_t i = 0; i < w.rows * w.cols; ++i)
    amax = std::max(amax, std::fabs(w.data[i]));
  // The largest unclipped group scale is amax / qmax (symmetric schemes).
  tensorScale_ = amax > 0 ? clampScale(amax / qmax_ / e4m3().maxValue())
                          : 1.0f;
}

float GroupQuantizer::storedScale(float s) const {
  switch (storage_) {
  case ScaleStorage::F32:
    return s;
  case ScaleStorage::E8M0: {
    // s is positive and finite (clampScale); encodeE8M0 saturates.
    uint8_t code = *formats::encodeE8M0(s, formats::ScaleRounding::Ceil);
    return std::ldexp(1.0f, int(code) - 127);
  }
  case ScaleStorage::E4M3: {
    const formats::Format &f = e4m3();
    float v = f.decode(f.encode(s / tensorScale_));
    if (!(v > 0)) // underflow: the smallest subnormal
      v = f.decode(1);
    return v * tensorScale_;
  }
  }
  return s;
}

/// `lo`/`hi` are the group's range widened to contain 0 (asymmetric) or
/// -absmax/absmax (symmetric).
GroupParams GroupQuantizer::paramsForClip(float lo, float hi,
                                          float clip) const {
  GroupParams p;
  if (symmetric_) {
    if (hi != 0)
      p.scale = clampScale(clip * hi / qmax_);
    p.scale = storedScale(p.scale);
    return p;
  }
  if (hi != lo)
    p.scale = clampScale(clip * (hi - lo) / (qmax_ - qmin_));
  float zero = std::nearbyint(qmin_ - clip * lo / p.scale);
  p.zeroPoint = std::min(std::max(zero, qmin_), qmax_);
  return p;
}

GroupParams GroupQuantizer::params(const float *v,
                                   const float *importance) const {
  float lo = 0, hi = 0;
  if (symmetric_) {
    for (int64_t j = 0; j < groupSize_; ++j)
      hi = std::max(hi, std::fabs(v[j]));
    lo = -hi;
  } else {
    for (int64_t j = 0; j < groupSize_; ++j) {
      lo = std::min(lo, v[j]);
      hi = std::max(hi, v[j]);
    }
  }
  GroupParams best = paramsForClip(lo, hi, clips_[0]);
  if (clips_.size() == 1 || hi == lo)
    return best;

  auto groupError = [&](const GroupParams &p) {
    double e = 0;
    for (int64_t j = 0; j < groupSize_; ++j) {
      double d = double(v[j]) - double(value(code(v[j], p), p));
      e += (importance ? double(importance[j]) : 1.0) * d * d;
    }
    return e;
  };
  double bestError = groupError(best);
  for (size_t s = 1; s < clips_.size(); ++s) {
    GroupParams p = paramsForClip(lo, hi, clips_[s]);
    double e = groupError(p);
    if (e < bestError) {
      bestError = e;
      best = p;
    }
  }
  return best;
}

QuantizedWeight GroupQuantizer::makeOutput(int64_t rows, int64_t cols) const {
  QuantizedWeight q;
  q.rows = rows;
  q.cols = cols;
  q.groupSize = groupSize_;
  q.format = format_;
  q.scaleStorage = storage_;
  q.tensorScale = tensorScale_;
  q.codes.resize(size_t(rows * cols));
  q.scales.resize(size_t(rows * q.groups()));
  if (!symmetric_)
    q.zeroPoints.resize(q.scales.size());
  return q;
}

bool detail::checkWeights(MatrixView w, std::string &error) {
  if (w.rows < 1 || w.cols < 1 || !w.data) {
    error = "weight matrix is empty";
    return false;
  }
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) {
      float x = w.at(r, c);
      if (!std::isfinite(x)) {
        error = std::string("weight at row ") + std::to_string(r) +
                ", column " + std::to_string(c) + " is " +
                (std::isnan(x) ? "NaN" : "infinite");
        return false;
      }
    }
  return true;
}

//===----------------------------------------------------------------------===//
// Public API
//===----------------------------------------------------------------------===//

std::vector<float> QuantizedWeight::dequantize() const {
  std::vector<float> out(codes.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      int64_t g = r * groups() + c / groupSize;
      std::optional<float> zero;
      if (!zeroPoints.empty())
        zero = zeroPoints[g];
      out[r * cols + c] =
          formats::dequantizeScalar(format, codes[r * cols + c], scales[g], zero);
    }
  return out;
}

double weightedError(MatrixView w, const QuantizedWeight &q,
                     const std::vector<float> &importance) {
  assert(w.rows == q.rows && w.cols == q.cols);
  assert(importance.empty() || int64_t(importance.size()) == w.cols);
  std::vector<float> deq = q.dequantize();
  double total = 0;
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) {
      double d = double(w.at(r, c)) - double(deq[r * w.cols + c]);
      total += (importance.empty() ? 1.0 : double(importance[c])) * d * d;
    }
  return total;
}

std::optional<QuantizedWeight> quantizeRTN(MatrixView w,
                                           const WeightScheme &scheme,
                                           const RTNOptions &options,
                                           std::string &error) {
  std::optional<GroupQuantizer> qz =
      detail::quantizerFor(w, scheme, options, error);
  if (!qz)
    return std::nullopt;
  const std::vector<float> &imp = options.importance;
  if (!imp.empty()) {
    if (!options.mseClip) {
      error = "importance weights only steer the clip search; set mseClip";
      return std::nullopt;
    }
    if (int64_t(imp.size()) != w.cols) {
      error = "importance has " + std::to_string(imp.size()) +
              " entries for " + std::to_string(w.cols) + " columns";
      return std::nullopt;
    }
    for (size_t c = 0; c < imp.size(); ++c)
      if (!(std::isfinite(imp[c]) && imp[c] >= 0)) {
        error = "importance of column " + std::to_string(c) +
                " is not a finite value >= 0";
        return std::nullopt;
      }
  }

  QuantizedWeight q = qz->makeOutput(w.rows, w.cols);
  int64_t g = qz->groupSize();
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t gi = 0; gi < q.groups(); ++gi) {
      const float *v = w.data + r * w.cols + gi * g;
      GroupParams p = qz->params(v, imp.empty() ? nullptr : imp.data() + gi * g);
      q.scales[r * q.groups() + gi] = p.scale;
      if (p.zeroPoint)
        q.zeroPoints[r * q.groups() + gi] = *p.zeroPoint;
      uint8_t *codes = q.codes.data() + r * w.cols + gi * g;
      for (int64_t j = 0; j < g; ++j)
        codes[j] = qz->code(v[j], p);
    }
  return q;
}

} // namespace nibble::quant
