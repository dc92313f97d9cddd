//===- Sample.cpp - Greedy, temperature and nucleus sampling --------------===//
//
// The contract (and the generator) is documented on nibble_sample in
// nibble_runtime.h: every step is specified so that a seed reproduces the
// same tokens everywhere.
//
//===----------------------------------------------------------------------===//

#include "LoadedBundle.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nibble::runtime {
namespace {

uint64_t splitmix64(uint64_t &state) {
  state += 0x9E3779B97F4A7C15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The lowest id of the largest non-NaN logit; -1 when all are NaN.
int32_t argmax(const float *logits, int32_t vocab) {
  int32_t best = -1;
  for (int32_t i = 0; i < vocab; ++i)
    if (!std::isnan(logits[i]) && (best < 0 || logits[i] > logits[best]))
      best = i;
  return best;
}

} // namespace

int32_t sample(const float *logits, int32_t vocab, float temperature,
               float topP, uint64_t *rngState, std::string &error) {
  if (!logits || vocab <= 0) {
    error = "nibble_sample: need logits and vocab > 0 (got " +
            std::string(logits ? "logits" : "NULL logits") + ", vocab " +
            std::to_string(vocab) + ")";
    return -1;
  }
  if (!(temperature >= 0) || std::isinf(temperature)) {
    error = "nibble_sample: temperature must be finite and >= 0 (got " +
            std::to_string(temperature) + ")";
    return -1;
  }
  if (!(topP > 0 && topP <= 1)) {
    error = "nibble_sample: top_p must be in (0, 1] (got " +
            std::to_string(topP) + ")";
    return -1;
  }
  int32_t best = argmax(logits, vocab);
  if (best < 0) {
    error = "nibble_sample: all " + std::to_string(vocab) + " logits are NaN";
    return -1;
  }
  // An infinite maximum makes the softmax degenerate: the greedy answer.
  if (temperature == 0 || std::isinf(logits[best]))
    return best;
  if (!rngState) {
    error = "nibble_sample: temperature > 0 needs an rng_state";
    return -1;
  }

  const double maxLogit = logits[best], t = temperature;
  std::vector<double> p(size_t(vocab), 0.0);
  double sum = 0;
  for (int32_t i = 0; i < vocab; ++i)
    if (!std::isnan(logits[i]))
      sum += p[size_t(i)] = std::exp((double(logits[i]) - maxLogit) / t);
  const double u = double(splitmix64(*rngState) >> 11) * 0x1p-53;

  std::vector<int32_t> order;
  if (topP >= 1) {
    order.resize(size_t(vocab));
    for (int32_t i = 0; i < vocab; ++i)
      order[size_t(i)] = i;
  } else {
    // An id with p < (1 - top_p) / (vocab - 1) of the total cannot be in the
    // nucleus (all of them but the most probable, which p[best] = 1 always
    // keeps, together are below 1 - top_p): sort only the rest.
    const double cutoff = std::min(
        1.0, vocab > 1 ? (1.0 - double(topP)) / double(vocab - 1) * sum : 0.0);
    for (int32_t i = 0; i < vocab; ++i)
      if (p[size_t(i)] > 0 && p[size_t(i)] >= cutoff)
        order.push_back(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return p[size_t(a)] != p[size_t(b)] ? p[size_t(a)] > p[size_t(b)] : a < b;
    });
    double mass = 0;
    size_t keep = 0;
    while (keep < order.size()) {
      mass += p[size_t(order[keep++])];
      if (mass >= double(topP) * sum)
        break;
    }
    order.resize(keep);
  }
  double total = 0;
  for (int32_t id : order)
    total += p[size_t(id)];
  const double target = u * total;
  double cumulative = 0;
  int32_t chosen = best;
  for (int32_t id : order) {
    if (p[size_t(id)] <= 0)
      continue;
    chosen = id;
    cumulative += p[size_t(id)];
    if (target < cumulative)
      break;
  }
  return chosen;
}

} // namespace nibble::runtime
