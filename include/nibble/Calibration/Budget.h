//===- Budget.h - Per-layer formats chosen for an accuracy budget ---------===//
//
// quant-compile --budget: measure each linear's sensitivity to each
// candidate scheme on the calibration slice (only that linear quantized),
// pick per-layer schemes with the smallest total size whose summed cost
// meets the budget (or the least cost within a size), check the joint
// choice on the calibration slice and tighten the budget if interactions
// broke it, then measure the result, and every uniform candidate for
// comparison, on a disjoint held-out slice.
//
//   kl=X     mean KL(float || quantized) <= X nats per token
//   ppl=+P%  perplexity at most (1 + P/100) x the float model's
//   bpw=B    at most B stored bits per weight over the linears (codes,
//            scales, zero points), least KL within that
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_CALIBRATION_BUDGET_H
#define NIBBLE_CALIBRATION_BUDGET_H

#include "nibble/Calibration/Sensitivity.h"

#include <optional>
#include <string>
#include <vector>

namespace nibble::calibration {

struct BudgetSpec {
  enum class Kind { KL, Perplexity, BitsPerWeight } kind = Kind::KL;
  double value = 0; ///< nats, a fraction (0.01 for +1%), or bits
  std::string text; ///< as given
  /// "kl=0.01", "ppl=+1%", "bpw=4.5"; nullopt with `error` otherwise.
  static std::optional<BudgetSpec> parse(const std::string &text,
                                         std::string &error);
};

/// A candidate list "int8/g0,int4/g32,nf4/g32,e2m1fn/g32/e8m0,f32": format,
/// group (g0: per output channel) and optional scale storage; "f32" keeps a
/// layer in float. Every entry rounds with `method`.
std::optional<std::vector<Candidate>>
parseCandidates(const std::string &list, Method method, std::string &error);

/// What the allocation measured on one slice.
struct MixResult {
  double bytes = 0, bitsPerWeight = 0;
  OutputChange change;
};

struct UniformResult {
  std::string label;
  MixResult heldOut;
};

struct BudgetResult {
  /// Per linear (order of `linears`): index into the candidates.
  std::vector<std::string> linears;
  std::vector<int> choice;
  std::vector<LayerSensitivity> sensitivity;
  double predictedCost = 0;       ///< sum of the chosen per-layer costs
  double effectiveBudget = 0;     ///< after tightening (KL / ppl budgets)
  int rounds = 0;                 ///< allocation rounds run
  MixResult calibration, heldOut; ///< the chosen mix, measured jointly
  bool met = false;               ///< on the held-out slice
  std::vector<UniformResult> uniform; ///< candidates that fit every layer
};

struct BudgetOptions {
  BudgetSpec spec;
  std::vector<Candidate> candidates;
  Windows calibration, heldOut; ///< disjoint slices of `tokens`
  const quant::StatsFile *stats = nullptr;
  int threads = 1;
  int maxRounds = 4;
  /// Bits a scheme's code occupies in the bundle (e.g. 4-bit containers
  /// for 3-bit codes in the CPU kernels' layout); unset: the format width.
  std::function<unsigned(const quant::WeightScheme &)> codeBits;
  std::function<void(const std::string &, int64_t, int64_t)> progress;
};

std::optional<BudgetResult> allocateBudget(const model::Model &model,
                                           const std::vector<int32_t> &tokens,
                                           const BudgetOptions &options,
                                           std::string &error);

} // namespace nibble::calibration

#endif // NIBBLE_CALIBRATION_BUDGET_H
