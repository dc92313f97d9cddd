//===- GPTQ.cpp - GPTQ weight quantization --------------------------------===//
//
// Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers" (2022). Columns are quantized one at a time in
// processing order; the error of column i, scaled by 1 / U[i][i], is
// propagated to the later columns through row i of U, the upper Cholesky
// factor of H^-1 (U^T U = H^-1). Inside a sub-block of 16 columns the
// propagation is immediate (rank-1 updates); to the rest of the block it is
// one GEMM per sub-block, and to the columns after the block one GEMM per
// block (the "lazy batch" update), which carries almost all of the flops.
// Rows are independent given U, so a block is held transposed and each
// column is processed as a vector over all rows.
//
//===----------------------------------------------------------------------===//

#include "GroupQuantizer.h"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

namespace nibble::quant {

using detail::GroupParams;
using detail::GroupQuantizer;

namespace {

// C -= A^T * B, row-major; C: m x p, A: n x m, B: n x p.
void gemmSub(int64_t m, int64_t p, int64_t n, const float *a, int64_t lda,
             const float *b, int64_t ldb, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(m), int(p), int(n),
              -1.0f, a, int(lda), b, int(ldb), 1.0f, c, int(ldc));
}
void gemmSub(int64_t m, int64_t p, int64_t n, const double *a, int64_t lda,
             const double *b, int64_t ldb, double *c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(m), int(p), int(n),
              -1.0, a, int(lda), b, int(ldb), 1.0, c, int(ldc));
}

// Column-major upper Cholesky / triangular inverse (see upperInverseFactor).
lapack_int potrf(float *a, int64_t k) {
  return LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', lapack_int(k), a,
                             lapack_int(k));
}
lapack_int potrf(double *a, int64_t k) {
  return LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', lapack_int(k), a,
                             lapack_int(k));
}
lapack_int trtri(float *a, int64_t k) {
  return LAPACKE_strtri_work(LAPACK_COL_MAJOR, 'U', 'N', lapack_int(k), a,
                             lapack_int(k));
}
lapack_int trtri(double *a, int64_t k) {
  return LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'U', 'N', lapack_int(k), a,
                             lapack_int(k));
}

/// Turns `a` (k*k row-major, symmetric positive definite) into U, the upper
/// Cholesky factor of its inverse (U^T U = a^-1), in place. Only U's upper
/// triangle is meaningful afterwards. Returns false if `a` is not positive
/// definite (numerically).
///
/// Route: with J the reversal permutation, J a J = L L^T (Cholesky) gives
/// a^-1 = J L^-T L^-1 J = U^T U for U = J L^-1 J, which is upper triangular
/// and has a positive diagonal, hence is the factor. One Cholesky and one
/// triangular inverse (2k^3/3 flops) instead of the textbook Cholesky,
/// inverse, Cholesky (4k^3/3). Reversing both indices of a row-major matrix
/// is reversing its array; and LAPACK's column-major upper triangle is the
/// row-major lower one, so 'U' on the column-major view yields L, then L^-1.
template <typename T> bool upperInverseFactor(std::vector<T> &a, int64_t k) {
  std::reverse(a.begin(), a.end());
  if (potrf(a.data(), k) != 0 || trtri(a.data(), k) != 0)
    return false;
  std::reverse(a.begin(), a.end());
  for (int64_t i = 0; i < k; ++i) {
    T d = a[i * k + i];
    if (!(std::isfinite(d) && d > 0))
      return false;
  }
  return true;
}

/// Everything quantizeGPTQ derives from its inputs before the column loop.
struct Setup {
  MatrixView w;
  const std::vector<double> *hessian; ///< read in its upper triangle
  std::vector<bool> dead;
  std::vector<int64_t> order; ///< processing position -> original column
  double damp = 0;            ///< absolute, added to the diagonal
};

/// The permuted, dampened Hessian in precision T, dead diagonal set to 1.
/// Only the upper triangle is filled: it is all upperInverseFactor reads.
template <typename T> std::vector<T> permutedHessian(const Setup &s) {
  int64_t k = s.w.cols;
  const std::vector<double> &h = *s.hessian;
  std::vector<T> a(size_t(k * k));
  for (int64_t i = 0; i < k; ++i) {
    int64_t oi = s.order[i];
    a[i * k + i] = T((s.dead[oi] ? 1.0 : h[oi * k + oi]) + s.damp);
    for (int64_t j = i + 1; j < k; ++j) {
      int64_t oj = s.order[j];
      a[i * k + j] = T(h[std::min(oi, oj) * k + std::max(oi, oj)]);
    }
  }
  return a;
}

/// Columns per sub-block inside a block: the immediate rank-1 updates stay
/// within a sub-block; the rest of the block gets a GEMM per sub-block.
constexpr int64_t kSubBlock = 16;
/// Rows per tile when transposing a block in and its codes out.
constexpr int64_t kTile = 16;

/// End of the range of columns starting at x: at most `size` columns, not
/// past `limit`. Without static groups, a group's parameters are computed
/// when its first column is reached and must see every earlier error, so
/// (`cut`) a range may not end inside a group that starts after x; it is
/// cut back to that group's start.
int64_t rangeEnd(int64_t x, int64_t limit, int64_t size, int64_t g,
                 bool cut) {
  int64_t y = std::min(x + size, limit);
  int64_t lastStart = (y - 1) / g * g;
  if (cut && lastStart > x && lastStart + g > y)
    y = lastStart;
  return y;
}

template <typename T>
bool runGPTQ(const Setup &s, const GroupQuantizer &qz,
             const GPTQOptions &options, GPTQResult &result,
             std::string &error) {
  const int64_t rows = s.w.rows, k = s.w.cols, g = qz.groupSize();
  const bool staticGroups = options.actOrder;

  std::vector<T> u = permutedHessian<T>(s);
  bool factored = upperInverseFactor(u, k);
  if constexpr (std::is_same_v<T, float>) {
    if (!factored) { // float broke down: try again in double
      std::vector<double> ud = permutedHessian<double>(s);
      factored = upperInverseFactor(ud, k);
      std::copy(ud.begin(), ud.end(), u.begin());
    }
  }
  if (!factored) {
    error = "Hessian is not positive definite after dampening (damp " +
            std::to_string(options.damp) + ")";
    return false;
  }

  // Working weights in processing order; dead input channels carry no
  // signal, their weights become 0.
  std::vector<T> wk(size_t(rows * k));
  for (int64_t r = 0; r < rows; ++r) {
    const float *src = s.w.data + r * k;
    for (int64_t i = 0; i < k; ++i)
      wk[r * k + i] = s.dead[s.order[i]] ? T(0) : T(src[s.order[i]]);
  }

  QuantizedWeight &q = result.weight;
  q = qz.makeOutput(rows, k);
  std::vector<float> groupValues(static_cast<size_t>(g)); // quantizer is f32
  auto computeParams = [&](int64_t idx) {
    GroupParams p = qz.params(groupValues.data(), nullptr);
    q.scales[idx] = p.scale;
    if (p.zeroPoint)
      q.zeroPoints[idx] = *p.zeroPoint;
  };
  auto loadParams = [&](int64_t idx) {
    GroupParams p;
    p.scale = q.scales[idx];
    if (!q.zeroPoints.empty())
      p.zeroPoint = q.zeroPoints[idx];
    return p;
  };
  if (staticGroups) // from the original weights (dead channels zeroed)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t gi = 0; gi < q.groups(); ++gi) {
        for (int64_t j = 0; j < g; ++j)
          groupValues[j] = s.dead[gi * g + j] ? 0.0f : s.w.at(r, gi * g + j);
        computeParams(r * q.groups() + gi);
      }

  // The current block transposed (block column c is row c here, contiguous
  // over the weight rows, so a column's rows are processed as a vector), and
  // its scaled errors and codes in the same layout.
  const int64_t maxBlock = std::min(options.blockSize, k);
  std::vector<T> wb(size_t(maxBlock * rows)), errT(size_t(maxBlock * rows));
  std::vector<uint8_t> codesT(size_t(maxBlock * rows));
  double loss = 0;
  for (int64_t b = 0, e; b < k; b = e) {
    e = rangeEnd(b, k, options.blockSize, g, !staticGroups);
    const int64_t nb = e - b;
    for (int64_t r0 = 0; r0 < rows; r0 += kTile) // tiled transpose
      for (int64_t c = 0; c < nb; ++c)
        for (int64_t r = r0; r < std::min(r0 + kTile, rows); ++r)
          wb[c * rows + r] = wk[r * k + b + c];

    for (int64_t sb = b, se; sb < e; sb = se) {
      se = rangeEnd(sb, e, kSubBlock, g, !staticGroups);
      for (int64_t i = sb; i < se; ++i) {
        T *x = wb.data() + (i - b) * rows;
        T *ei = errT.data() + (i - b) * rows;
        uint8_t *codes = codesT.data() + (i - b) * rows;
        const int64_t gi = s.order[i] / g;
        if (!staticGroups && i % g == 0) {
          // The group's current weights: at the block start they are wk's
          // (possibly reaching past the block); later in the block they are
          // all inside it (rangeEnd) and current in wb.
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t j = 0; j < g; ++j)
              groupValues[j] = float(i == b ? wk[r * k + i + j]
                                            : wb[(i - b + j) * rows + r]);
            computeParams(r * q.groups() + gi);
          }
        }
        const T *ui = u.data() + i * k;
        const T d = ui[i];
        double columnLoss = 0;
        for (int64_t r = 0; r < rows; ++r) {
          GroupParams p = loadParams(r * q.groups() + gi);
          codes[r] = qz.code(float(x[r]), p);
          ei[r] = (x[r] - T(qz.value(codes[r], p))) / d;
          columnLoss += double(ei[r]) * double(ei[r]);
        }
        loss += columnLoss / 2;
        for (int64_t j = i + 1; j < se; ++j) {
          T *xj = wb.data() + (j - b) * rows;
          const T uij = ui[j];
          for (int64_t r = 0; r < rows; ++r)
            xj[r] -= ei[r] * uij;
        }
      }
      // Rest of the block: W[:, se:e] -= Err[:, sb:se] * U[sb:se, se:e],
      // transposed.
      if (se < e)
        gemmSub(e - se, rows, se - sb, u.data() + sb * k + se, k,
                errT.data() + (sb - b) * rows, rows,
                wb.data() + (se - b) * rows, rows);
    }
    for (int64_t r0 = 0; r0 < rows; r0 += kTile)
      for (int64_t c = 0; c < nb; ++c)
        for (int64_t r = r0; r < std::min(r0 + kTile, rows); ++r)
          q.codes[r * k + s.order[b + c]] = codesT[c * rows + r];
    // Lazy batch update: W[:, e:] -= Err[:, b:e] * U[b:e, e:].
    if (e < k)
      gemmSub(rows, k - e, nb, errT.data(), rows, u.data() + b * k + e, k,
              wk.data() + e, k);
  }
  result.loss = loss;
  return true;
}

} // namespace

std::optional<GPTQResult> quantizeGPTQ(MatrixView w,
                                       const std::vector<double> &hessian,
                                       const WeightScheme &scheme,
                                       const GPTQOptions &options,
                                       std::string &error) {
  std::optional<GroupQuantizer> qz =
      detail::quantizerFor(w, scheme, options, error);
  if (!qz)
    return std::nullopt;
  const int64_t k = w.cols;
  if (int64_t(hessian.size()) != k * k) {
    error = "Hessian has " + std::to_string(hessian.size()) +
            " entries; expected " + std::to_string(k) + " x " +
            std::to_string(k) + " for the weight's columns";
    return std::nullopt;
  }
  if (!(std::isfinite(options.damp) && options.damp >= 0)) {
    error = "damp must be a finite value >= 0";
    return std::nullopt;
  }
  if (options.blockSize < 1) {
    error = "blockSize must be >= 1";
    return std::nullopt;
  }
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i; j < k; ++j)
      if (!std::isfinite(hessian[i * k + j])) {
        error = "Hessian entry (" + std::to_string(i) + ", " +
                std::to_string(j) + ") is not finite";
        return std::nullopt;
      }

  Setup s;
  s.w = w;
  s.hessian = &hessian;
  s.dead.resize(size_t(k));
  std::vector<double> diag(static_cast<size_t>(k));
  int64_t deadCount = 0;
  for (int64_t j = 0; j < k; ++j) {
    double d = hessian[j * k + j];
    if (d < 0) {
      error = "Hessian diagonal entry " + std::to_string(j) +
              " is negative; not positive semidefinite";
      return std::nullopt;
    }
    s.dead[j] = d == 0;
    deadCount += d == 0;
    diag[j] = d == 0 ? 1.0 : d;
  }
  if (deadCount == k) {
    error = "Hessian is zero (no calibration samples)";
    return std::nullopt;
  }
  s.order.resize(size_t(k));
  std::iota(s.order.begin(), s.order.end(), int64_t(0));
  if (options.actOrder)
    std::stable_sort(s.order.begin(), s.order.end(),
                     [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });
  s.damp = options.damp * std::accumulate(diag.begin(), diag.end(), 0.0) /
           double(k);

  GPTQResult result;
  result.deadColumns = deadCount;
  bool ok = options.useDouble
                ? runGPTQ<double>(s, *qz, options, result, error)
                : runGPTQ<float>(s, *qz, options, result, error);
  if (!ok)
    return std::nullopt;
  return result;
}

} // namespace nibble::quant
