//===- BitAllocationTest.cpp - Per-layer format choice under a budget -----===//
//
// The dynamic program against brute force on small random problems (exact
// when the size step is 1 byte), the rounding guarantee on real-valued
// sizes, and errors.
//
//===----------------------------------------------------------------------===//

#include "nibble/Quant/BitAllocation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

using namespace nibble::quant;

namespace {

using Layers = std::vector<std::vector<AllocationChoice>>;

/// Random problem: sizes are integers, the cost falls as the size grows
/// (as a real layer's loss does) but not smoothly.
Layers randomLayers(std::mt19937 &rng, int layers, int choices) {
  std::uniform_int_distribution<int> size(1, 20);
  std::uniform_real_distribution<double> cost(0.0, 1.0);
  Layers out(static_cast<size_t>(layers));
  for (auto &l : out)
    for (int c = 0; c < choices; ++c)
      l.push_back({double(size(rng)), cost(rng)});
  return out;
}

/// Every assignment: the least bytes with cost <= maxCost, and the least
/// cost with bytes <= maxBytes.
void bruteForce(const Layers &layers, double maxCost, double maxBytes,
                double &bestBytes, double &bestCost) {
  bestBytes = bestCost = std::numeric_limits<double>::infinity();
  std::vector<int> idx(layers.size(), 0);
  while (true) {
    double b = 0, c = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      b += layers[l][size_t(idx[l])].bytes;
      c += layers[l][size_t(idx[l])].cost;
    }
    if (c <= maxCost)
      bestBytes = std::min(bestBytes, b);
    if (b <= maxBytes)
      bestCost = std::min(bestCost, c);
    size_t l = 0;
    while (l < layers.size() && ++idx[l] == int(layers[l].size()))
      idx[l++] = 0;
    if (l == layers.size())
      break;
  }
}

double maxTotal(const Layers &layers) {
  double t = 0;
  for (const auto &l : layers) {
    double m = 0;
    for (const auto &c : l)
      m = std::max(m, c.bytes);
    t += m;
  }
  return t;
}

TEST(BitAllocation, MatchesBruteForceWithByteSteps) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    Layers layers = randomLayers(rng, 1 + trial % 5, 1 + trial % 4);
    AllocationOptions o;
    o.buckets = int64_t(maxTotal(layers)); // a step of exactly one byte
    std::uniform_real_distribution<double> frac(0.0, 1.0);
    double maxCost = frac(rng) * double(layers.size());
    double maxBytes = std::floor(frac(rng) * maxTotal(layers));
    double wantBytes, wantCost;
    bruteForce(layers, maxCost, maxBytes, wantBytes, wantCost);
    std::string error;
    auto a = allocateForCost(layers, maxCost, error, o);
    ASSERT_EQ(bool(a), std::isfinite(wantBytes)) << trial << ": " << error;
    if (a) {
      EXPECT_EQ(a->bytes, wantBytes) << trial;
      EXPECT_LE(a->cost, maxCost) << trial;
      ASSERT_EQ(a->choice.size(), layers.size());
    }
    auto b = allocateForBytes(layers, maxBytes, error, o);
    ASSERT_EQ(bool(b), std::isfinite(wantCost)) << trial << ": " << error;
    if (b) {
      EXPECT_NEAR(b->cost, wantCost, 1e-12) << trial;
      EXPECT_LE(b->bytes, maxBytes) << trial;
    }
  }
}

TEST(BitAllocation, NeverWorseThanAUniformChoiceThatFits) {
  // Real-valued sizes and a coarse step: the answer still fits, and costs
  // no more than any uniform assignment whose rounded size fits.
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 50; ++trial) {
    Layers layers(12);
    for (auto &l : layers) {
      double scale = 1 + 9 * u(rng);
      for (int c = 0; c < 4; ++c) // sizes 1..4 bits, cost falling with bits
        l.push_back({scale * (c + 1) * 1000.5, scale * u(rng) / (c + 1)});
    }
    AllocationOptions o;
    o.buckets = 1000;
    for (int c = 0; c < 4; ++c) {
      double bytes = 0, cost = 0;
      for (const auto &l : layers) {
        bytes += l[size_t(c)].bytes;
        cost += l[size_t(c)].cost;
      }
      std::string error;
      // The budget of the uniform choice plus one step of rounding slack.
      auto a = allocateForBytes(layers, bytes + maxTotal(layers) / 1000 * 12,
                                error, o);
      ASSERT_TRUE(a) << error;
      EXPECT_LE(a->cost, cost + 1e-12) << trial << " uniform " << c;
      auto b = allocateForCost(layers, cost, error, o);
      ASSERT_TRUE(b) << error;
      EXPECT_LE(b->cost, cost + 1e-12);
      EXPECT_LE(b->bytes, bytes + maxTotal(layers) / 1000 * 12);
    }
  }
}

TEST(BitAllocation, PicksTheCheapLayersToShrink) {
  // Two layers of equal size: layer 0 loses little at 4 bits, layer 1 a
  // lot. A budget that allows one of them at 4 bits shrinks layer 0.
  Layers layers = {{{100, 0.0}, {50, 0.01}}, {{100, 0.0}, {50, 0.5}}};
  std::string error;
  auto a = allocateForCost(layers, 0.1, error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->choice, (std::vector<int>{1, 0}));
  EXPECT_DOUBLE_EQ(a->bytes, 150);
  auto b = allocateForBytes(layers, 150, error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->choice, (std::vector<int>{1, 0}));
  EXPECT_DOUBLE_EQ(b->cost, 0.01);
}

TEST(BitAllocation, Errors) {
  std::string error;
  EXPECT_FALSE(allocateForCost({}, 1.0, error));
  EXPECT_EQ(error, "no layers to allocate");
  EXPECT_FALSE(allocateForCost({{}}, 1.0, error));
  EXPECT_EQ(error, "layer 0 has no choices");
  EXPECT_FALSE(allocateForCost({{{-1, 0}}}, 1.0, error));
  EXPECT_NE(error.find("layer 0 choice 0"), std::string::npos);
  EXPECT_FALSE(allocateForCost({{{1, NAN}}}, 1.0, error));
  Layers layers = {{{100, 0.2}, {50, 0.3}}};
  EXPECT_FALSE(allocateForCost(layers, 0.1, error));
  EXPECT_NE(error.find("most accurate choice of every layer costs 0.2"),
            std::string::npos)
      << error;
  EXPECT_FALSE(allocateForBytes(layers, 49, error));
  EXPECT_NE(error.find("takes 50"), std::string::npos) << error;
}

} // namespace
