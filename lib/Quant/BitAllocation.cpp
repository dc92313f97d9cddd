//===- BitAllocation.cpp - Multiple-choice knapsack over layer formats ----===//

#include "nibble/Quant/BitAllocation.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace nibble::quant {

namespace {

using Layers = std::vector<std::vector<AllocationChoice>>;

bool validate(const Layers &layers, std::string &error) {
  if (layers.empty()) {
    error = "no layers to allocate";
    return false;
  }
  for (size_t l = 0; l < layers.size(); ++l) {
    if (layers[l].empty()) {
      error = "layer " + std::to_string(l) + " has no choices";
      return false;
    }
    for (size_t c = 0; c < layers[l].size(); ++c) {
      const AllocationChoice &ch = layers[l][c];
      if (!(std::isfinite(ch.bytes) && ch.bytes >= 0) ||
          !std::isfinite(ch.cost)) {
        error = "layer " + std::to_string(l) + " choice " +
                std::to_string(c) +
                ": sizes must be finite and >= 0, costs finite";
        return false;
      }
    }
  }
  return true;
}

/// minCost[b]: the least total cost of an assignment whose rounded size is
/// exactly b buckets, with back-pointers to recover it.
struct Table {
  double step = 1;
  int64_t width = 0; ///< buckets + 1
  std::vector<double> minCost;
  std::vector<uint8_t> pick; ///< layers x width
  std::vector<std::vector<int64_t>> rounded;
};

Table solve(const Layers &layers, int64_t buckets) {
  Table t;
  double maxTotal = 0;
  for (const auto &choices : layers) {
    double m = 0;
    for (const AllocationChoice &c : choices)
      m = std::max(m, c.bytes);
    maxTotal += m;
  }
  t.step = maxTotal > 0 ? maxTotal / double(buckets) : 1.0;
  // Rounded sizes can add up to a little more than `buckets`.
  t.width = buckets + int64_t(layers.size()) + 1;
  const double inf = std::numeric_limits<double>::infinity();
  t.minCost.assign(size_t(t.width), inf);
  t.minCost[0] = 0;
  t.pick.assign(layers.size() * size_t(t.width), 0);
  for (size_t l = 0; l < layers.size(); ++l) {
    std::vector<int64_t> r;
    for (const AllocationChoice &c : layers[l])
      r.push_back(int64_t(std::ceil(c.bytes / t.step - 1e-9)));
    t.rounded.push_back(r);
    std::vector<double> next(size_t(t.width), inf);
    uint8_t *pick = t.pick.data() + l * size_t(t.width);
    for (int64_t b = 0; b < t.width; ++b) {
      if (t.minCost[size_t(b)] == inf)
        continue;
      for (size_t c = 0; c < layers[l].size(); ++c) {
        int64_t nb = b + r[c];
        if (nb >= t.width)
          continue;
        double cost = t.minCost[size_t(b)] + layers[l][c].cost;
        if (cost < next[size_t(nb)]) {
          next[size_t(nb)] = cost;
          pick[nb] = uint8_t(c);
        }
      }
    }
    t.minCost = std::move(next);
  }
  return t;
}

Allocation recover(const Layers &layers, const Table &t, int64_t bucket) {
  Allocation a;
  a.choice.assign(layers.size(), 0);
  int64_t b = bucket;
  for (size_t l = layers.size(); l-- > 0;) {
    int c = t.pick[l * size_t(t.width) + size_t(b)];
    a.choice[l] = c;
    b -= t.rounded[l][size_t(c)];
  }
  for (size_t l = 0; l < layers.size(); ++l) {
    a.bytes += layers[l][size_t(a.choice[l])].bytes;
    a.cost += layers[l][size_t(a.choice[l])].cost;
  }
  return a;
}

/// Sum over layers of each layer's least `field` (for error messages).
template <typename Field>
double sumOfLeast(const Layers &layers, Field field) {
  double total = 0;
  for (const auto &choices : layers) {
    double m = std::numeric_limits<double>::infinity();
    for (const AllocationChoice &c : choices)
      m = std::min(m, field(c));
    total += m;
  }
  return total;
}

bool checkChoiceCount(const Layers &layers, std::string &error) {
  for (const auto &choices : layers)
    if (choices.size() > 255) {
      error = "at most 255 choices per layer";
      return false;
    }
  return true;
}

} // namespace

std::optional<Allocation> allocateForCost(const Layers &layers, double maxCost,
                                          std::string &error,
                                          const AllocationOptions &options) {
  if (!validate(layers, error) || !checkChoiceCount(layers, error))
    return std::nullopt;
  if (!std::isfinite(maxCost)) {
    error = "the cost budget must be finite";
    return std::nullopt;
  }
  Table t = solve(layers, std::max<int64_t>(1, options.buckets));
  for (int64_t b = 0; b < t.width; ++b)
    if (t.minCost[size_t(b)] <= maxCost)
      return recover(layers, t, b);
  const double least =
      sumOfLeast(layers, [](const AllocationChoice &c) { return c.cost; });
  error = "no assignment meets the budget " + std::to_string(maxCost) +
          ": the most accurate choice of every layer costs " +
          std::to_string(least);
  return std::nullopt;
}

std::optional<Allocation> allocateForBytes(const Layers &layers,
                                           double maxBytes, std::string &error,
                                           const AllocationOptions &options) {
  if (!validate(layers, error) || !checkChoiceCount(layers, error))
    return std::nullopt;
  Table t = solve(layers, std::max<int64_t>(1, options.buckets));
  int64_t best = -1;
  const int64_t limit =
      std::min<int64_t>(t.width - 1, int64_t(std::floor(maxBytes / t.step)));
  for (int64_t b = 0; b <= limit; ++b)
    if (std::isfinite(t.minCost[size_t(b)]) &&
        (best < 0 || t.minCost[size_t(b)] < t.minCost[size_t(best)]))
      best = b;
  if (best < 0) {
    const double least =
        sumOfLeast(layers, [](const AllocationChoice &c) { return c.bytes; });
    error = "no assignment fits in " + std::to_string(int64_t(maxBytes)) +
            " bytes: the smallest choice of every layer takes " +
            std::to_string(int64_t(least));
    return std::nullopt;
  }
  return recover(layers, t, best);
}

} // namespace nibble::quant
