//===- GroupQuantizer.h - The RTN rule for one group (internal) -----------===//
//
// Shared by RTN and GPTQ: input validation and the computation of a group's
// scale / zero point (optionally with the clip-ratio search), exactly as
// documented in include/nibble/Quant/Weights.h.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_QUANT_GROUPQUANTIZER_H
#define NIBBLE_LIB_QUANT_GROUPQUANTIZER_H

#include "nibble/Quant/Weights.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nibble::quant::detail {

/// Scale and (asymmetric only) zero point of one group.
struct GroupParams {
  float scale = 1.0f;
  std::optional<float> zeroPoint;
};

/// A validated scheme for a given column count plus the clip grid.
class GroupQuantizer {
public:
  /// Checks the scheme against `cols` and the clip options (only when
  /// mseClip); nullopt with `error` when something is wrong.
  static std::optional<GroupQuantizer> create(const WeightScheme &scheme,
                                              int64_t cols, bool mseClip,
                                              float minClip, int clipSteps,
                                              std::string &error);

  const formats::Format &format() const { return format_; }
  bool symmetric() const { return symmetric_; }
  /// Effective group size (cols for per-channel).
  int64_t groupSize() const { return groupSize_; }

  /// Parameters of the group v[0 .. groupSize): the clip ratio of the grid
  /// with the least importance-weighted squared error (the largest one on
  /// ties); `importance` may be null (uniform).
  GroupParams params(const float *v, const float *importance) const;

  uint8_t code(float x, const GroupParams &p) const {
    return uint8_t(formats::quantizeScalar(format_, x, p.scale, p.zeroPoint));
  }
  float value(uint8_t code, const GroupParams &p) const {
    return formats::dequantizeScalar(format_, code, p.scale, p.zeroPoint);
  }

  /// E4M3 storage: the per-tensor scale for the matrix `w` (the largest
  /// unclipped group scale maps to e4m3's 448). No effect otherwise.
  void setTensorScaleFor(MatrixView w);
  float tensorScale() const { return tensorScale_; }

  /// An empty QuantizedWeight of this scheme for a rows x cols matrix
  /// (codes, scales and zero points sized, not filled).
  QuantizedWeight makeOutput(int64_t rows, int64_t cols) const;

private:
  explicit GroupQuantizer(formats::Format format)
      : format_(std::move(format)) {}
  GroupParams paramsForClip(float lo, float hi, float clip) const;
  /// The stored value nearest a computed scale (the storage's rounding).
  float storedScale(float s) const;

  formats::Format format_;
  bool symmetric_ = true;
  int64_t groupSize_ = 0;
  float qmin_ = 0, qmax_ = 0;
  std::vector<float> clips_; ///< 1 first, then decreasing
  ScaleStorage storage_ = ScaleStorage::F32;
  float tensorScale_ = 1.0f;
};

/// Rejects an empty matrix and NaN/Inf weights (the error names the first
/// bad element's row and column).
bool checkWeights(MatrixView w, std::string &error);

/// checkWeights, then the group quantizer for `w` with the clip options of
/// `options` (RTNOptions, GPTQOptions): what every rounding method starts
/// with.
template <typename ClipOptions>
std::optional<GroupQuantizer> quantizerFor(MatrixView w,
                                           const WeightScheme &scheme,
                                           const ClipOptions &options,
                                           std::string &error) {
  if (!checkWeights(w, error))
    return std::nullopt;
  auto q = GroupQuantizer::create(scheme, w.cols, options.mseClip,
                                  options.minClip, options.clipSteps, error);
  if (q)
    q->setTensorScaleFor(w);
  return q;
}

} // namespace nibble::quant::detail

#endif // NIBBLE_LIB_QUANT_GROUPQUANTIZER_H
