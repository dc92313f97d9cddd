//===- Smooth.h - Activation-aware scaling and outlier handling -----------===//
//
// Algorithms that move difficulty between activations and weights before
// rounding, all computing per-input-channel factors s_j that the caller
// applies as W[:, j] *= s_j and folds as x_j /= s_j into the op that
// produces x (an RMSNorm weight, or the rows of a preceding linear):
//
//  - AWQ (Lin et al. 2023): s = mean|x|^alpha (normalised), alpha searched
//    on a grid to minimise the output error of the linears that share the
//    input, measured on calibration activations. alpha = 0 is plain RTN, so
//    the search never does worse than RTN on the data it sees.
//  - SmoothQuant (Xiao et al. 2022): s_j = max|x_j|^a / max|w_j|^(1-a) with a
//    fixed migration strength a, for W8A8.
//  - Outlier channels (LLM.int8()-style, static): input channels whose
//    calibrated max |x| exceeds a threshold keep their weight columns in high
//    precision; the matmul becomes a small high-precision one plus the
//    quantized one.
//  - Weight outliers: the largest p% of |w| per row kept in high precision
//    as a sparse side matrix.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_QUANT_SMOOTH_H
#define NIBBLE_QUANT_SMOOTH_H

#include "nibble/Quant/Weights.h"

#include <optional>
#include <string>
#include <vector>

namespace nibble::quant {

/// Output error sum ||X W^T - X Q^T||^2 (double accumulation), X [t, k],
/// W and Q [n, k] (Q given as a dense float matrix).
double outputError(MatrixView x, MatrixView w, MatrixView q);

struct AWQOptions {
  int gridSize = 20; ///< alpha in {0, 1/g, ..., (g-1)/g}
  /// After scaling, search an MSE clip ratio per group (RTN mseClip).
  bool clipSearch = false;
  /// Optional class per input channel: channels of one class get one scale
  /// (their mean |x| is averaged). With grouped-query attention, o_proj's
  /// input channel (h, d) must share its scale with every query head h that
  /// reads the same key/value head, or the inverse cannot fold into
  /// v_proj's rows. Empty: every channel is free.
  std::vector<int64_t> channelClass;
};

struct AWQResult {
  std::vector<float> scales; ///< s_j, multiply W[:, j] by it
  float alpha = 0;
  double rtnError = 0;  ///< output error of plain RTN on the samples
  double bestError = 0; ///< output error with the chosen scales
};

/// Searches one scale vector for the linears `weights` (each [n_i, k]) that
/// share the input whose calibration samples are `x` [t, k] and whose
/// per-channel mean |x| is `meanAbs` (from the statistics of all tokens).
std::optional<AWQResult> searchAWQ(const std::vector<MatrixView> &weights,
                                   MatrixView x,
                                   const std::vector<float> &meanAbs,
                                   const WeightScheme &scheme,
                                   const AWQOptions &options,
                                   std::string &error);

/// The same search with the output error computed from the Gram matrix
/// G = X^T X (k*k, row-major, from calibration statistics) instead of
/// samples: ||X D^T||^2 = sum_n d_n^T G d_n. No activations need be kept.
std::optional<AWQResult> searchAWQGram(const std::vector<MatrixView> &weights,
                                       const std::vector<double> &gram,
                                       const std::vector<float> &meanAbs,
                                       const WeightScheme &scheme,
                                       const AWQOptions &options,
                                       std::string &error);

/// AWQ's whole pipeline for one weight: the scale search on the Gram matrix
/// G = X^T X, then a clip search on W * diag(s) weighting column j's error by
/// the mean square of its scaled-down input, meanSq_j / s_j^2. `weight`
/// quantizes W * diag(scales); its dequantized values divided by scales_j
/// (or the input multiplied by 1/scales_j) stand for W.
struct AWQQuantized {
  QuantizedWeight weight;
  std::vector<float> scales;
};
std::optional<AWQQuantized> quantizeAWQ(MatrixView w,
                                        const std::vector<double> &gram,
                                        const std::vector<float> &meanAbs,
                                        const std::vector<float> &meanSq,
                                        const WeightScheme &scheme,
                                        std::string &error);

/// sum_n d_n^T G d_n for D = W - Q (double; G must be full and symmetric).
/// Equals outputError(X, W, Q) when G = X^T X.
double gramError(const std::vector<double> &gram, MatrixView w, MatrixView q);

/// SmoothQuant factors for the linears sharing an input with per-channel
/// max |x| `actAbsMax`: s_j = actAbsMax_j^a / max_i |W_i[:, j]|^(1 - a),
/// with s_j = 1 where either side is zero.
std::vector<float> smoothQuantScales(const std::vector<MatrixView> &weights,
                                     const std::vector<float> &actAbsMax,
                                     float migration);

/// Input channels whose calibrated max |x| exceeds `threshold`, ascending.
std::vector<int64_t> outlierChannels(const std::vector<float> &actAbsMax,
                                     float threshold);

/// The largest `fraction` of |w| in each row of `w`: (row, col, value)
/// triples in row-major order; those entries are to be zeroed before
/// quantization and added back in high precision.
struct SparseEntry {
  int64_t row, col;
  float value;
};
std::vector<SparseEntry> weightOutliers(MatrixView w, double fraction);

/// Per-token dynamic activation quantization (symmetric, to `format`):
/// each row scaled by max|x_row| / max(format), as nibble.matmul's
/// act_format does; returns the fake-quantized rows.
std::vector<float> fakeQuantizePerToken(MatrixView x,
                                        const formats::Format &format);
/// Static per-tensor activation quantization with a calibrated `absMax`.
std::vector<float> fakeQuantizePerTensor(MatrixView x,
                                         const formats::Format &format,
                                         float absMax);

} // namespace nibble::quant

#endif // NIBBLE_QUANT_SMOOTH_H
