//===- Weights.h - Weight quantization algorithms (plain C++, no MLIR) ----===//
//
// Rounding algorithms that turn a float weight matrix W [rows = out, cols =
// in] (PyTorch Linear layout) into codes of a formats::Format plus group
// scales (and zero points): round-to-nearest (RTN), RTN with an MSE-optimal
// clip ratio per group, importance-weighted RTN (llama.cpp imatrix style),
// and GPTQ (second-order error compensation with a calibration Hessian).
//
// Semantics are the dialect's (nibble::formats::quantizeScalar):
//   code  = encode(w / scale + zero_point)
//   value = (decode(code) - zero_point) * scale
// A group is `groupSize` consecutive columns of one row (groupSize == cols:
// one scale per output channel). Symmetric schemes have no zero point and
// scale = clip * max|w| / max(format). Asymmetric schemes need an integer
// format (use the unsigned one, e.g. uint4): scale = clip * (max - min) /
// (qmax - qmin), zero_point = round(qmin - clip * min / scale) (ties to
// even), clamped to the code range, where [min, max] is the group's range
// widened to contain 0 (as GPTQ's quantizer does, so 0 is exact and the zero
// point is always in range). All of this is f32 arithmetic in that order.
// Symmetric schemes need a format with negative values (not uint4), every
// scheme a format of at most 8 bits (codes are bytes). A scale that would
// underflow to 0 or overflow to infinity is clamped to the positive finite
// float range.
//
// Bad input has defined results: an all-zero group gets scale 1 and codes
// of 0.0; NaN/Inf weights are rejected with an error naming the row and
// column; a Hessian with dead input channels (zero diagonal) gets those
// channels' weights zeroed and a unit diagonal, as GPTQ does; a Hessian that
// stays singular after dampening is an error.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_QUANT_WEIGHTS_H
#define NIBBLE_QUANT_WEIGHTS_H

#include "nibble/Formats/Format.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nibble::quant {

/// A read-only row-major view.
struct MatrixView {
  const float *data = nullptr;
  int64_t rows = 0, cols = 0;
  float at(int64_t r, int64_t c) const { return data[r * cols + c]; }
};

/// How group scales are stored. The rounding rules see the stored value, so
/// codes are chosen for the scale the kernels will really multiply by.
enum class ScaleStorage : uint8_t {
  F32,  ///< one f32 per group
  E8M0, ///< a power of two per group (OCP MX, e.g. MXFP4): the f32 scale
        ///< rounded up to 2^ceil(log2 s), so the group maximum never clips
        ///< (the clip search of rtn-mse / GPTQ can still pick the power
        ///< below)
  E4M3, ///< two levels (NVFP4-style): an e4m3fn code per group times one
        ///< f32 scale per tensor, T = max_g(s_g) / 448 over the matrix's
        ///< unclipped group scales; s_g is rounded to the nearest e4m3 value
        ///< times T (at least the smallest subnormal times T)
};
const char *scaleStorageName(ScaleStorage s); ///< "f32", "e8m0", "e4m3"
/// Parses "f32", "e8m0" or "e4m3"; nullopt otherwise.
std::optional<ScaleStorage> parseScaleStorage(const std::string &name);
/// Stored bits per group scale (32 or 8).
int scaleStorageBits(ScaleStorage s);

struct WeightScheme;
/// Bits per weight a scheme stores for a rows x cols matrix, everything
/// counted: `codeBits` per code (0: the format's width, the dense layout;
/// the CPU kernels' containers are formats::cpuKernelStorageBits), the
/// scale (and f32 zero point) of every group, and the one f32 tensor scale
/// of the two-level e4m3 scheme. The single definition behind the card's
/// bits per weight and the bit budget's sizes.
double storedBitsPerWeight(const WeightScheme &scheme, int64_t rows,
                           int64_t cols, unsigned codeBits = 0);

struct WeightScheme {
  formats::Format format = formats::Format::intN(4, true);
  /// Columns per group; 0 means the whole row (per output channel). Must
  /// divide the column count.
  int64_t groupSize = 0;
  /// false: asymmetric with a zero point per group (integer formats only).
  bool symmetric = true;
  /// Storage of the group scales; E8M0 and E4M3 need a symmetric scheme.
  ScaleStorage scaleStorage = ScaleStorage::F32;
};

struct QuantizedWeight {
  int64_t rows = 0, cols = 0;
  int64_t groupSize = 0; ///< effective (cols when per channel)
  formats::Format format = formats::Format::intN(4, true);
  std::vector<uint8_t> codes;      ///< rows * cols, one code per element
  std::vector<float> scales;       ///< rows * (cols / groupSize)
  std::vector<float> zeroPoints;   ///< same shape as scales; empty if symmetric
  /// Scales are exactly representable in this storage: for E8M0 powers of
  /// two, for E4M3 an e4m3fn value times `tensorScale`.
  ScaleStorage scaleStorage = ScaleStorage::F32;
  float tensorScale = 1.0f; ///< E4M3 only: the per-tensor f32 scale

  int64_t groups() const { return groupSize ? cols / groupSize : 0; }
  float scale(int64_t r, int64_t c) const {
    return scales[r * groups() + c / groupSize];
  }
  /// The float matrix the codes stand for (rows * cols).
  std::vector<float> dequantize() const;
};

/// Squared error sum_ij importance_j * (W_ij - Q_ij)^2 of a quantized
/// matrix against W (importance all ones when empty, else cols entries; W
/// and Q of the same shape).
double weightedError(MatrixView w, const QuantizedWeight &q,
                     const std::vector<float> &importance = {});

struct RTNOptions {
  /// Search the clip ratio per group on a grid from 1 down to `minClip`
  /// (`clipSteps` values) minimising the (importance-weighted) squared error.
  bool mseClip = false;
  float minClip = 0.5f;
  int clipSteps = 51;
  /// Per-input-column importance (e.g. mean x^2 from calibration): weights
  /// the error of the clip search (importance-weighted RTN). Empty: uniform.
  /// Needs mseClip (it only steers the search); cols finite values >= 0.
  std::vector<float> importance;
};

/// Round-to-nearest with optional MSE clip search and importance weighting.
/// Returns nullopt with `error` on bad input.
std::optional<QuantizedWeight> quantizeRTN(MatrixView w,
                                           const WeightScheme &scheme,
                                           const RTNOptions &options,
                                           std::string &error);

/// Accumulates H = 2/n * sum_t x_t x_t^T over calibration rows (the GPTQ
/// Hessian, up to the 1/n normalisation GPTQ uses), streaming: memory is
/// O(k^2) whatever the token count.
///
/// Precision: each add() runs an f32 SYRK (OpenBLAS cblas_ssyrk) over at
/// most kMaxFloatRows rows into a float scratch matrix and adds that partial
/// sum into the f64 running sum, so float rounding never spans more than
/// kMaxFloatRows products per entry (about 1e-6 relative) while the total
/// over any number of tokens is kept in double. Inputs are not checked: NaN
/// or Inf activations propagate into the sum.
class HessianAccumulator {
public:
  explicit HessianAccumulator(int64_t k);
  /// Adds `n` rows of `k` activations (row-major).
  void add(const float *x, int64_t n);
  /// Merges another accumulator of the same k (batches, files).
  void merge(const HessianAccumulator &other);
  /// Rows per float SYRK before the partial sum is added in double.
  static constexpr int64_t kMaxFloatRows = 1024;
  int64_t k() const { return k_; }
  int64_t samples() const { return samples_; }
  /// H (k*k, row-major, symmetric): 2 * X^T X / samples (all zeros while
  /// samples == 0).
  std::vector<double> hessian() const;
  /// X^T X as a full symmetric k*k matrix (the Gram matrix of the samples).
  std::vector<double> gram() const;
  /// Raw sum X^T X (upper triangle valid), for serialisation.
  const std::vector<double> &sum() const { return sum_; }
  /// Replaces the state; `sum` has k*k entries of which the upper triangle
  /// is used.
  void setSum(std::vector<double> sum, int64_t samples);

private:
  int64_t k_;
  int64_t samples_ = 0;
  std::vector<double> sum_;
  std::vector<float> scratch_; ///< k*k float partial sum of one SYRK
};

struct GPTQOptions {
  /// Dampening: lambda = damp * mean(diag(H)) added to the diagonal.
  double damp = 0.01;
  /// Columns per lazy batch update.
  int64_t blockSize = 128;
  /// Quantize columns in order of decreasing diag(H); group scales then come
  /// from a static group map computed on the original weights up front.
  bool actOrder = false;
  /// Search the clip ratio when a group's scale is computed (as RTN mseClip),
  /// on the same grid: clipSteps values from 1 down to minClip.
  bool mseClip = false;
  float minClip = 0.5f;
  int clipSteps = 51;
  /// Work in double precision (tests); float otherwise. The float path
  /// factors H in float like the reference implementation and falls back to
  /// a double factorization only if the float one breaks down.
  bool useDouble = false;
};

struct GPTQResult {
  QuantizedWeight weight;
  /// sum over columns of the GPTQ objective (w - q)^2 / [H^-1]_jj / 2.
  /// [H^-1]_jj is that of the columns not yet quantized when j is, i.e.
  /// U_jj^2 for U the upper Cholesky factor of H^-1; summed over all rows.
  double loss = 0;
  int64_t deadColumns = 0;
};

/// GPTQ (Frantar et al. 2022): column-by-column quantization with error
/// propagation through the Cholesky factor of H^-1, lazy block updates,
/// group scales computed as the columns are reached (or static with
/// actOrder). `hessian` is k*k row-major (k = cols), symmetric; only its
/// upper triangle is read.
///
/// A group's parameters always come from its fully error-updated weights
/// (the quantizer sees them rounded to f32): blocks never straddle a group
/// boundary (blockSize is rounded down to a multiple of groupSize, or cut at
/// group ends when groups are larger), so the result does not depend on
/// blockSize up to floating-point reassociation. An all-zero Hessian (no
/// calibration samples), a negative diagonal entry and a Hessian that is
/// not positive definite after dampening are errors.
std::optional<GPTQResult> quantizeGPTQ(MatrixView w,
                                       const std::vector<double> &hessian,
                                       const WeightScheme &scheme,
                                       const GPTQOptions &options,
                                       std::string &error);

} // namespace nibble::quant

#endif // NIBBLE_QUANT_WEIGHTS_H
