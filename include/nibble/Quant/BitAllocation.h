//===- BitAllocation.h - Per-layer formats under a budget (plain C++) -----===//
//
// Mixed-precision allocation as a multiple-choice knapsack: every layer
// picks one of its choices, each with a size in bytes and a cost (an
// accuracy loss measured for that layer alone, e.g. the KL divergence of
// the model's next-token distribution when only that layer is quantized).
// Costs are assumed additive over layers; the caller checks the joint
// result (calibration::Sensitivity measures it).
//
// Solver: dynamic programming over the total size rounded up to `buckets`
// equal steps of the largest possible total. It is exact for the rounded
// sizes: no assignment whose rounded size fits has a lower total cost (so a
// uniform assignment that fits is never beaten by less than its own cost),
// and the true size of the answer is at most its rounded size. Time
// O(layers x choices x buckets), memory O(layers x buckets) bytes.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_QUANT_BITALLOCATION_H
#define NIBBLE_QUANT_BITALLOCATION_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nibble::quant {

struct AllocationChoice {
  double bytes = 0; ///< >= 0
  double cost = 0;  ///< finite; may be negative (a layer that helps)
};

struct Allocation {
  std::vector<int> choice; ///< per layer, an index into its choices
  double bytes = 0;        ///< sum of the chosen sizes (exact)
  double cost = 0;         ///< sum of the chosen costs
};

struct AllocationOptions {
  int64_t buckets = 20000; ///< size resolution of the dynamic program
};

/// The smallest total size whose total cost is at most `maxCost`; among
/// equal sizes the lowest cost. nullopt (with `error`) when even the
/// cheapest-cost choice of every layer exceeds `maxCost`, or on bad input
/// (no layers, a layer without choices, negative or non-finite numbers).
std::optional<Allocation>
allocateForCost(const std::vector<std::vector<AllocationChoice>> &layers,
                double maxCost, std::string &error,
                const AllocationOptions &options = {});

/// The lowest total cost whose total size is at most `maxBytes`. nullopt
/// (with `error`) when the smallest choices already exceed it.
std::optional<Allocation>
allocateForBytes(const std::vector<std::vector<AllocationChoice>> &layers,
                 double maxBytes, std::string &error,
                 const AllocationOptions &options = {});

} // namespace nibble::quant

#endif // NIBBLE_QUANT_BITALLOCATION_H
