//===- Stats.h - Calibration statistics of linear-layer inputs ------------===//
//
// What calibration records about the input x of one linear layer (keyed by
// the layer's name, e.g. "model.layers.0.self_attn.q_proj"), accumulated in
// streaming fashion over any number of tokens:
//
//   per input channel j: min x_j, max x_j, sum |x_j|, sum x_j^2
//   per tensor: a histogram of |x| on log-spaced bins (for percentile clips)
//   optionally: the GPTQ Hessian sum X^T X (k*k doubles: O(k^2) memory,
//               never O(tokens * k))
//
// Statistics merge across batches and files, so calibration and
// quantization run as separate steps. The file format is safetensors (see
// docs/calibration.md): for layer L, tensors "L.min", "L.max" (F32 [k]),
// "L.sum_abs", "L.sum_sq" (F64 [k]), "L.abs_hist" (I64 [bins]) and, when
// recorded, "L.xtx" (F64 [k, k]); metadata "L.tokens" (decimal), plus
// "format" = "nibble-calibration-stats" and "version" = "1".
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_QUANT_STATS_H
#define NIBBLE_QUANT_STATS_H

#include "nibble/Quant/Weights.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nibble::quant {

/// Counts of |x| on log2-spaced bins: bin 0 holds exact zeros, bins
/// 1..kBins-2 cover [2^kMinExp, 2^kMaxExp) with kPerOctave bins per octave,
/// the last bin everything above (and below the range, in bin 1).
class AbsHistogram {
public:
  static constexpr int kMinExp = -24, kMaxExp = 40, kPerOctave = 8;
  static constexpr int kBins = (kMaxExp - kMinExp) * kPerOctave + 2;

  void add(float v);
  void merge(const AbsHistogram &o);
  int64_t count() const;
  /// The smallest bin upper edge below which at least `q` (0..1] of the
  /// values lie (an over-estimate by at most one bin width, 9%).
  float quantile(double q) const;
  std::vector<int64_t> &bins() { return bins_; }
  const std::vector<int64_t> &bins() const { return bins_; }
  static float upperEdge(int bin);

private:
  std::vector<int64_t> bins_ = std::vector<int64_t>(kBins, 0);
};

class LinearStats {
public:
  LinearStats(int64_t k, bool withHessian);

  /// Adds `n` rows of `k` activations. Non-finite values are counted in
  /// nonFinite() and otherwise ignored (they would poison every statistic).
  void add(const float *x, int64_t n);
  /// Merges statistics of the same layer; false if k or the Hessian
  /// setting differ.
  bool merge(const LinearStats &o, std::string &error);

  int64_t k() const { return k_; }
  int64_t tokens() const { return tokens_; }
  int64_t nonFinite() const { return nonFinite_; }
  const std::vector<float> &min() const { return min_; }
  const std::vector<float> &max() const { return max_; }
  std::vector<float> absMax() const;
  std::vector<float> meanAbs() const;
  std::vector<float> meanSq() const;
  const AbsHistogram &histogram() const { return hist_; }
  bool hasHessian() const { return hessian_ != nullptr; }
  const HessianAccumulator *hessian() const { return hessian_.get(); }

  /// The statistics the same tokens would have given had every row been
  /// multiplied channel-wise by `multiplier` (size k, finite, >= 0), as a
  /// smoothing scale (1/s) or a channel mask (0) folded upstream does:
  /// min/max, sums of |x| and x^2 and the Hessian are transformed exactly.
  /// The per-tensor histogram cannot be, and is left empty (count 0).
  /// Returns null and sets `error` on a bad multiplier.
  std::unique_ptr<LinearStats> scaled(const std::vector<float> &multiplier,
                                      std::string &error) const;

private:
  friend class StatsFile;
  int64_t k_;
  int64_t tokens_ = 0;
  int64_t nonFinite_ = 0;
  std::vector<float> min_, max_;
  std::vector<double> sumAbs_, sumSq_;
  AbsHistogram hist_;
  std::unique_ptr<HessianAccumulator> hessian_;
  std::vector<float> scratch_;
};

/// Statistics of many layers, by name; reads and writes the file format.
class StatsFile {
public:
  /// The layer's statistics, created on first use.
  LinearStats &layer(const std::string &name, int64_t k, bool withHessian);
  const LinearStats *find(const std::string &name) const;
  const std::map<std::string, LinearStats> &layers() const { return layers_; }
  /// Free-form provenance (calibration text, slice, sha256, ...).
  std::map<std::string, std::string> &info() { return info_; }
  const std::map<std::string, std::string> &info() const { return info_; }

  bool merge(const StatsFile &o, std::string &error);
  bool save(const std::string &path, std::string &error) const;
  static std::optional<StatsFile> load(const std::string &path,
                                       std::string &error);

private:
  std::map<std::string, LinearStats> layers_;
  std::map<std::string, std::string> info_;
};

} // namespace nibble::quant

#endif // NIBBLE_QUANT_STATS_H
