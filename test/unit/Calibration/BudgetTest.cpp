//===- BudgetTest.cpp - Per-layer formats for an accuracy budget ----------===//
//
// On the deterministic synthetic model (no ../shared needed) and its own
// text: the float baseline scores itself as unchanged; a size budget is
// met and beats every uniform candidate that fits it; a KL budget is met
// on the calibration slice; overlapping slices and bad specs are refused.
//
//===----------------------------------------------------------------------===//

#include "TestData.h"
#include "nibble/Calibration/Budget.h"
#include "nibble/Model/Synthetic.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

using namespace nibble;
using namespace nibble::calibration;

namespace {

struct Fixture {
  std::unique_ptr<model::Model> model;
  std::vector<int32_t> tokens;
};

Fixture load() {
  Fixture f;
  std::string error, dir = testdata::makeTempDir("budget");
  EXPECT_TRUE(model::writeSyntheticModel(dir, 3, error)) << error;
  auto m = model::Model::load(dir + "/model.bin", error);
  EXPECT_TRUE(m) << error;
  f.model = std::move(m);
  // Random in-vocabulary tokens: what matters is that both slices are
  // scored the same way.
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> tok(3, int32_t(
      f.model ? f.model->config().vocabSize - 1 : 3));
  for (int i = 0; i < 512; ++i)
    f.tokens.push_back(tok(rng));
  return f;
}

TEST(Budget, BaselineAgainstItselfIsUnchanged) {
  Fixture f = load();
  ASSERT_TRUE(f.model);
  std::string error;
  auto b = FloatBaseline::compute(*f.model, f.tokens, {0, 2, 32}, error);
  ASSERT_TRUE(b) << error;
  auto c = b->evaluate({}, error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->tokens, 64);
  EXPECT_NEAR(c->kl, 0.0, 1e-6);
  EXPECT_NEAR(c->deltaNll, 0.0, 1e-9);
  EXPECT_EQ(c->top1, 1.0);
  EXPECT_GT(b->meanNll(), 0.0);
}

TEST(Budget, SizeBudgetBeatsUniformCandidatesThatFit) {
  Fixture f = load();
  ASSERT_TRUE(f.model);
  std::string error;
  BudgetOptions o;
  o.candidates =
      *parseCandidates("int8/g0,int4/g32,int3/g32,int2/g32", Method::RTN,
                       error);
  o.calibration = {0, 2, 32};
  o.heldOut = {256, 2, 32};
  o.threads = 2;
  o.spec = *BudgetSpec::parse("bpw=4.5", error);
  auto r = allocateBudget(*f.model, f.tokens, o, error);
  ASSERT_TRUE(r) << error;
  EXPECT_LE(r->calibration.bitsPerWeight, 4.5);
  EXPECT_TRUE(r->met);
  ASSERT_EQ(r->choice.size(), r->linears.size());
  ASSERT_EQ(r->uniform.size(), 4u);
  // A mix: more than one candidate used.
  std::set<int> used(r->choice.begin(), r->choice.end());
  EXPECT_GT(used.size(), 1u);
  // The allocation minimises the summed per-layer KL, which tracks the
  // joint KL on the calibration slice: uniform choices that fit (int3,
  // int2) are no better there.
  for (const UniformResult &u : r->uniform)
    if (u.heldOut.bitsPerWeight <= 4.5)
      EXPECT_LT(r->heldOut.change.kl, u.heldOut.change.kl) << u.label;
}

TEST(Budget, KLBudgetIsMetOnTheCalibrationSlice) {
  Fixture f = load();
  ASSERT_TRUE(f.model);
  std::string error;
  BudgetOptions o;
  o.candidates = *parseCandidates("int8/g0,int4/g32,int2/g32", Method::RTNMse,
                                  error);
  o.calibration = {0, 2, 32};
  o.heldOut = {256, 2, 32};
  o.spec = *BudgetSpec::parse("kl=0.01", error);
  auto r = allocateBudget(*f.model, f.tokens, o, error);
  ASSERT_TRUE(r) << error;
  EXPECT_LE(r->predictedCost, r->effectiveBudget);
  if (r->rounds < o.maxRounds)
    EXPECT_LE(r->calibration.change.kl, 0.01);
  // Smaller than all-int8, the most accurate uniform choice.
  ASSERT_FALSE(r->uniform.empty());
  EXPECT_EQ(r->uniform[0].label, "int8/g0");
  EXPECT_LE(r->heldOut.bytes, r->uniform[0].heldOut.bytes);
}

TEST(Budget, RefusesBadInput) {
  Fixture f = load();
  ASSERT_TRUE(f.model);
  std::string error;
  BudgetOptions o;
  o.candidates = *parseCandidates("int8/g0", Method::RTN, error);
  o.spec = *BudgetSpec::parse("kl=0.1", error);
  o.calibration = {0, 2, 32};
  o.heldOut = {32, 2, 32};
  EXPECT_FALSE(allocateBudget(*f.model, f.tokens, o, error));
  EXPECT_EQ(error, "the held-out slice [32, 96) overlaps the calibration "
                   "slice [0, 64)");
  o.heldOut = {480, 2, 32};
  EXPECT_FALSE(allocateBudget(*f.model, f.tokens, o, error));
  EXPECT_NE(error.find("held-out slice: windows need tokens [480, 544)"),
            std::string::npos)
      << error;

  for (const char *bad : {"kl", "kl=-1", "ppl=1", "ppl=+x%", "bpw=4%", "x=1"}) {
    EXPECT_FALSE(BudgetSpec::parse(bad, error)) << bad;
    EXPECT_NE(error.find("expected kl=X"), std::string::npos) << error;
  }
  auto ppl = BudgetSpec::parse("ppl=+1.5%", error);
  ASSERT_TRUE(ppl);
  EXPECT_DOUBLE_EQ(ppl->value, 0.015);
  EXPECT_FALSE(parseCandidates("int4/32", Method::RTN, error));
  EXPECT_NE(error.find("the group is written g32"), std::string::npos);
  EXPECT_FALSE(parseCandidates("int9/g32", Method::RTN, error));
  EXPECT_FALSE(parseCandidates("e2m1fn/g32/e5m2", Method::RTN, error));
  EXPECT_NE(error.find("unknown scale storage e5m2"), std::string::npos);
  auto ok = parseCandidates("f32,e2m1fn/g16/e4m3", Method::GPTQ, error);
  ASSERT_TRUE(ok) << error;
  EXPECT_TRUE((*ok)[0].keepFloat);
  EXPECT_EQ((*ok)[1].spec.scheme.scaleStorage, quant::ScaleStorage::E4M3);
  EXPECT_EQ((*ok)[1].spec.method, Method::GPTQ);
}

TEST(Budget, StoredBytesCountScalesAndZeroPoints) {
  using formats::Format;
  EXPECT_EQ(storedBytes({Format::intN(4, true), 32, true}, 2, 64), 64 + 4 * 4);
  EXPECT_EQ(storedBytes({Format::intN(4, false), 32, false}, 2, 64),
            64 + 4 * 8);
  EXPECT_EQ(storedBytes({Format::e2m1fn(), 32, true,
                         quant::ScaleStorage::E8M0}, 2, 64), 64 + 4);
  EXPECT_EQ(storedBytes({Format::e2m1fn(), 16, true,
                         quant::ScaleStorage::E4M3}, 2, 64), 64 + 8 + 4);
  EXPECT_EQ(storedBytes({Format::intN(8, true), 0, true}, 2, 64), 128 + 8);
}

} // namespace
