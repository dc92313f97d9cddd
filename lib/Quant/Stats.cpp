//===- Stats.cpp - Calibration statistics of linear-layer inputs ----------===//

#include "nibble/Quant/Stats.h"

#include "nibble/Model/MappedFile.h"
#include "nibble/Model/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

namespace nibble::quant {

// --- AbsHistogram -------------------------------------------------------------

void AbsHistogram::add(float v) {
  float a = std::fabs(v);
  int bin;
  if (a == 0.0f) {
    bin = 0;
  } else {
    int e;
    float m = std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1)
    // Octave index of a in [2^(e-1), 2^e), sub-bin by the mantissa.
    int octave = e - 1 - kMinExp;
    int sub = int((m - 0.5f) * 2.0f * kPerOctave);
    bin = 1 + octave * kPerOctave + std::min(sub, kPerOctave - 1);
    bin = std::clamp(bin, 1, kBins - 1);
  }
  ++bins_[size_t(bin)];
}

void AbsHistogram::merge(const AbsHistogram &o) {
  for (size_t i = 0; i < bins_.size(); ++i)
    bins_[i] += o.bins_[i];
}

int64_t AbsHistogram::count() const {
  int64_t n = 0;
  for (int64_t b : bins_)
    n += b;
  return n;
}

float AbsHistogram::upperEdge(int bin) {
  if (bin == 0)
    return 0.0f;
  if (bin >= kBins - 1)
    return std::numeric_limits<float>::infinity();
  int octave = (bin - 1) / kPerOctave, sub = (bin - 1) % kPerOctave;
  return std::ldexp(1.0f + float(sub + 1) / kPerOctave, kMinExp + octave);
}

float AbsHistogram::quantile(double q) const {
  int64_t total = count();
  if (total == 0)
    return 0.0f;
  double want = std::clamp(q, 0.0, 1.0) * double(total);
  int64_t seen = 0;
  for (int b = 0; b < kBins; ++b) {
    seen += bins_[size_t(b)];
    if (double(seen) >= want && seen > 0)
      return upperEdge(b);
  }
  return upperEdge(kBins - 1);
}

// --- LinearStats --------------------------------------------------------------

LinearStats::LinearStats(int64_t k, bool withHessian)
    : k_(k), min_(size_t(k), std::numeric_limits<float>::infinity()),
      max_(size_t(k), -std::numeric_limits<float>::infinity()),
      sumAbs_(size_t(k), 0.0), sumSq_(size_t(k), 0.0) {
  if (withHessian)
    hessian_ = std::make_unique<HessianAccumulator>(k);
}

void LinearStats::add(const float *x, int64_t n) {
  scratch_.resize(size_t(n * k_));
  int64_t kept = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float *row = x + t * k_;
    bool finite = true;
    for (int64_t j = 0; j < k_; ++j)
      finite = finite && std::isfinite(row[j]);
    if (!finite) {
      ++nonFinite_;
      continue;
    }
    for (int64_t j = 0; j < k_; ++j) {
      float v = row[j];
      min_[j] = std::min(min_[j], v);
      max_[j] = std::max(max_[j], v);
      sumAbs_[j] += std::fabs(v);
      sumSq_[j] += double(v) * v;
      hist_.add(v);
    }
    std::memcpy(scratch_.data() + kept * k_, row, size_t(k_) * sizeof(float));
    ++kept;
  }
  tokens_ += kept;
  if (hessian_ && kept > 0)
    hessian_->add(scratch_.data(), kept);
}

bool LinearStats::merge(const LinearStats &o, std::string &error) {
  if (o.k_ != k_ || o.hasHessian() != hasHessian()) {
    error = "cannot merge statistics with " + std::to_string(o.k_) +
            " channels" + (o.hasHessian() ? " and a Hessian" : "") +
            " into ones with " + std::to_string(k_) +
            (hasHessian() ? " and a Hessian" : "");
    return false;
  }
  for (int64_t j = 0; j < k_; ++j) {
    min_[j] = std::min(min_[j], o.min_[j]);
    max_[j] = std::max(max_[j], o.max_[j]);
    sumAbs_[j] += o.sumAbs_[j];
    sumSq_[j] += o.sumSq_[j];
  }
  hist_.merge(o.hist_);
  tokens_ += o.tokens_;
  nonFinite_ += o.nonFinite_;
  if (hessian_)
    hessian_->merge(*o.hessian_);
  return true;
}

std::unique_ptr<LinearStats>
LinearStats::scaled(const std::vector<float> &m, std::string &error) const {
  if (int64_t(m.size()) != k_) {
    error = "channel multiplier has " + std::to_string(m.size()) +
            " entries, the statistics " + std::to_string(k_) + " channels";
    return nullptr;
  }
  for (size_t j = 0; j < m.size(); ++j)
    if (!std::isfinite(m[j]) || m[j] < 0) {
      error = "channel multiplier " + std::to_string(j) + " is " +
              std::to_string(m[j]) + " (expected finite and >= 0)";
      return nullptr;
    }
  auto out = std::make_unique<LinearStats>(k_, hasHessian());
  out->tokens_ = tokens_;
  out->nonFinite_ = nonFinite_;
  for (int64_t j = 0; j < k_; ++j) {
    // Infinite min/max (no tokens) stay as they are; 0 * inf would be NaN.
    const float f = m[size_t(j)];
    out->min_[j] = tokens_ ? min_[j] * f : min_[j];
    out->max_[j] = tokens_ ? max_[j] * f : max_[j];
    out->sumAbs_[j] = sumAbs_[j] * f;
    out->sumSq_[j] = sumSq_[j] * double(f) * f;
  }
  if (hessian_) {
    std::vector<double> sum = hessian_->sum();
    for (int64_t i = 0; i < k_; ++i)
      for (int64_t j = 0; j < k_; ++j)
        sum[size_t(i * k_ + j)] *= double(m[size_t(i)]) * m[size_t(j)];
    out->hessian_->setSum(std::move(sum), hessian_->samples());
  }
  return out;
}

std::vector<float> LinearStats::absMax() const {
  std::vector<float> r(size_t(k_), 0.0f);
  if (tokens_ == 0)
    return r;
  for (int64_t j = 0; j < k_; ++j)
    r[j] = std::max(std::fabs(min_[j]), std::fabs(max_[j]));
  return r;
}

std::vector<float> LinearStats::meanAbs() const {
  std::vector<float> r(size_t(k_), 0.0f);
  for (int64_t j = 0; tokens_ > 0 && j < k_; ++j)
    r[j] = float(sumAbs_[j] / double(tokens_));
  return r;
}

std::vector<float> LinearStats::meanSq() const {
  std::vector<float> r(size_t(k_), 0.0f);
  for (int64_t j = 0; tokens_ > 0 && j < k_; ++j)
    r[j] = float(sumSq_[j] / double(tokens_));
  return r;
}

// --- StatsFile ------------------------------------------------------------------

LinearStats &StatsFile::layer(const std::string &name, int64_t k,
                              bool withHessian) {
  auto it = layers_.find(name);
  if (it == layers_.end())
    it = layers_
             .emplace(std::piecewise_construct, std::forward_as_tuple(name),
                      std::forward_as_tuple(k, withHessian))
             .first;
  return it->second;
}

const LinearStats *StatsFile::find(const std::string &name) const {
  auto it = layers_.find(name);
  return it == layers_.end() ? nullptr : &it->second;
}

bool StatsFile::merge(const StatsFile &o, std::string &error) {
  for (const auto &[name, s] : o.layers_) {
    LinearStats &mine = layer(name, s.k(), s.hasHessian());
    if (!mine.merge(s, error)) {
      error = "layer '" + name + "': " + error;
      return false;
    }
  }
  for (const auto &[k, v] : o.info_)
    info_.emplace(k, v);
  return true;
}

bool StatsFile::save(const std::string &path, std::string &error) const {
  using model::DType;
  std::vector<model::SafetensorsWriteEntry> entries;
  std::map<std::string, std::string> meta = info_;
  meta["format"] = "nibble-calibration-stats";
  meta["version"] = "1";
  std::vector<std::vector<double>> hessians; // kept alive until written
  hessians.reserve(layers_.size());
  for (const auto &[name, s] : layers_) {
    const int64_t k = s.k();
    meta[name + ".tokens"] = std::to_string(s.tokens());
    meta[name + ".non_finite"] = std::to_string(s.nonFinite());
    entries.push_back({name + ".min", DType::F32, {k}, s.min_.data()});
    entries.push_back({name + ".max", DType::F32, {k}, s.max_.data()});
    entries.push_back({name + ".sum_abs", DType::F64, {k}, s.sumAbs_.data()});
    entries.push_back({name + ".sum_sq", DType::F64, {k}, s.sumSq_.data()});
    entries.push_back({name + ".abs_hist", DType::I64,
                       {int64_t(AbsHistogram::kBins)},
                       s.hist_.bins().data()});
    if (s.hessian_) {
      hessians.push_back(s.hessian_->gram());
      entries.push_back({name + ".xtx", DType::F64, {k, k},
                         hessians.back().data()});
    }
  }
  return model::writeSafetensors(path, entries, error, meta);
}

std::optional<StatsFile> StatsFile::load(const std::string &path,
                                         std::string &error) {
  auto file = model::MappedFile::open(path, error);
  if (!file)
    return std::nullopt;
  auto header =
      model::parseSafetensors(file->data(), file->size(), path, error);
  if (!header)
    return std::nullopt;
  auto fmt = header->metadata.find("format");
  if (fmt == header->metadata.end() ||
      fmt->second != "nibble-calibration-stats") {
    error = path + ": not a calibration statistics file (metadata 'format' "
                   "is not 'nibble-calibration-stats')";
    return std::nullopt;
  }
  std::map<std::string, const model::SafetensorsEntry *> byName;
  for (const auto &e : header->entries)
    byName[e.name] = &e;
  auto tensor = [&](const std::string &name, model::DType dtype,
                    std::vector<int64_t> shape) -> const uint8_t * {
    auto it = byName.find(name);
    if (it == byName.end()) {
      error = path + ": tensor '" + name + "' is missing";
      return nullptr;
    }
    if (it->second->dtype != dtype || it->second->shape != shape) {
      error = path + ": tensor '" + name + "' must be " +
              std::string(model::dtypeName(dtype)) + " " +
              model::shapeString(shape);
      return nullptr;
    }
    return file->data() + header->dataOffset() + it->second->begin;
  };

  // Layers are named by their ".min" tensors; every other metadata entry
  // is provenance.
  StatsFile out;
  std::set<std::string> layerKeys = {"format", "version"};
  for (const auto &entry : header->entries) {
    const std::string suffix = ".min";
    const std::string &tn = entry.name;
    if (tn.size() <= suffix.size() ||
        tn.compare(tn.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string name = tn.substr(0, tn.size() - suffix.size());
    layerKeys.insert(name + ".tokens");
    layerKeys.insert(name + ".non_finite");
    auto tokIt = header->metadata.find(name + ".tokens");
    if (tokIt == header->metadata.end()) {
      error = path + ": metadata '" + name + ".tokens' is missing";
      return std::nullopt;
    }
    const std::string &key = tokIt->first, &value = tokIt->second;
    auto minIt = byName.find(name + ".min");
    if (minIt->second->shape.size() != 1) {
      error = path + ": tensor '" + name + ".min' must be 1-D";
      return std::nullopt;
    }
    const int64_t k = minIt->second->shape[0];
    bool withHessian = byName.count(name + ".xtx") != 0;
    LinearStats &s = out.layer(name, k, withHessian);
    char *end = nullptr;
    s.tokens_ = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || s.tokens_ < 0) {
      error = path + ": metadata '" + key + "' must be a token count";
      return std::nullopt;
    }
    auto nf = header->metadata.find(name + ".non_finite");
    if (nf != header->metadata.end())
      s.nonFinite_ = std::strtoll(nf->second.c_str(), nullptr, 10);
    const uint8_t *p;
    if (!(p = tensor(name + ".min", model::DType::F32, {k})))
      return std::nullopt;
    std::memcpy(s.min_.data(), p, size_t(k) * 4);
    if (!(p = tensor(name + ".max", model::DType::F32, {k})))
      return std::nullopt;
    std::memcpy(s.max_.data(), p, size_t(k) * 4);
    if (!(p = tensor(name + ".sum_abs", model::DType::F64, {k})))
      return std::nullopt;
    std::memcpy(s.sumAbs_.data(), p, size_t(k) * 8);
    if (!(p = tensor(name + ".sum_sq", model::DType::F64, {k})))
      return std::nullopt;
    std::memcpy(s.sumSq_.data(), p, size_t(k) * 8);
    if (!(p = tensor(name + ".abs_hist", model::DType::I64,
                     {int64_t(AbsHistogram::kBins)})))
      return std::nullopt;
    std::memcpy(s.hist_.bins().data(), p, size_t(AbsHistogram::kBins) * 8);
    if (withHessian) {
      if (!(p = tensor(name + ".xtx", model::DType::F64, {k, k})))
        return std::nullopt;
      std::vector<double> sum(size_t(k * k));
      std::memcpy(sum.data(), p, sum.size() * 8);
      s.hessian_->setSum(std::move(sum), s.tokens_);
    }
  }
  for (const auto &[key, value] : header->metadata)
    if (!layerKeys.count(key))
      out.info_[key] = value;
  return out;
}

} // namespace nibble::quant
