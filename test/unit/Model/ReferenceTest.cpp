//===- ReferenceTest.cpp - The C++ float forward pass ---------------------===//

#include "TestData.h"

#include "nibble/Model/Safetensors.h"
#include "nibble/Reference/LlamaReference.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace nibble;
using namespace nibble::model;
using nibble::reference::LlamaReference;

namespace {

std::unique_ptr<Model> load(const std::string &path) {
  std::string error;
  auto m = Model::load(path, error);
  EXPECT_TRUE(m) << error;
  return m;
}

std::string greedyText(const std::string &modelPath,
                       const std::string &tokPath, int64_t n) {
  auto m = load(modelPath);
  std::string error;
  auto tok = tokenizer::loadTokenizer(tokPath, error);
  EXPECT_TRUE(tok) << error;
  if (!m || !tok)
    return "";
  LlamaReference ref(*m);
  auto ids = reference::generateGreedy(ref, {m->config().bosId}, n, error);
  EXPECT_FALSE(ids.empty()) << error;
  return tok->decode(ids);
}

// The texts given in ../shared/models/README.md.
TEST(ReferenceTest, GreedyTextOfStories260K) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string text =
      greedyText(shared + "/models/stories260K/stories260K.bin",
                 shared + "/models/stories260K/tok512.bin", 40);
  EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily. "
                       "She loved to play outside in the park.",
                       0),
            0u)
      << text;
}

TEST(ReferenceTest, GreedyTextOfTinyStories656K) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string dir = shared + "/models/tinystories-656k";
  std::string text = greedyText(dir, dir + "/tokenizer.json", 40);
  EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily. "
                       "She had a toy car that she loved very much.",
                       0),
            0u)
      << text;
}

TEST(ReferenceTest, RejectsBadTokensAndAFullCache) {
  testdata::SyntheticSpec spec;
  std::string dir = testdata::makeTempDir("ref");
  std::string error;
  ASSERT_TRUE(testdata::writeSyntheticHF(dir, spec, DType::F32, 1, error));
  auto m = load(dir);
  ASSERT_TRUE(m);
  LlamaReference ref(*m, 2);
  std::vector<float> logits;
  EXPECT_FALSE(ref.step(int32_t(spec.vocab), logits, error));
  EXPECT_NE(error.find("outside the vocabulary"), std::string::npos);
  EXPECT_FALSE(ref.step(-1, logits, error));
  ASSERT_TRUE(ref.step(3, logits, error)) << error;
  ASSERT_TRUE(ref.step(4, logits, error)) << error;
  EXPECT_FALSE(ref.step(5, logits, error));
  EXPECT_NE(error.find("KV cache is full"), std::string::npos);
}

// The f16/bf16 twins of a checkpoint give bit-identical logits, and the KV
// cache gives the same logits as recomputing the prefix.
TEST(ReferenceTest, TwinsAndCacheAgree) {
  testdata::SyntheticSpec spec;
  std::vector<std::vector<float>> results;
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    std::string dir = testdata::makeTempDir("twin");
    std::string error;
    ASSERT_TRUE(testdata::writeSyntheticHF(dir, spec, t, 1, error)) << error;
    auto m = load(dir);
    ASSERT_TRUE(m);
    LlamaReference ref(*m);
    std::vector<float> all;
    ASSERT_TRUE(ref.prefill({1, 5, 9, 13, 7}, &all, error)) << error;
    results.push_back(all);
    // Recompute the last position's logits from a fresh cache.
    LlamaReference again(*m);
    std::vector<float> last;
    ASSERT_TRUE(again.prefill({1, 5, 9, 13, 7}, &last, error));
    EXPECT_EQ(all, last);
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

// Converting a llama2.c checkpoint to the Hugging Face layout permutes the
// rows of wq/wk so that interleaved RoPE pairs (2i, 2i+1) become
// rotate_half pairs (i, i + d/2). Both pairings must then give the same
// logits: this checks each RoPE variant against the other on real weights.
TEST(ReferenceTest, InterleavedAndRotateHalfPairingsAgree) {
  NIBBLE_REQUIRE_SHARED(shared);
  auto l2c = load(shared + "/models/stories260K/stories260K.bin");
  ASSERT_TRUE(l2c);
  const LlamaConfig &c = l2c->config();
  const int64_t hd = c.headDim;
  // Writes the llama2.c weights as a Hugging Face directory, with q/k rows
  // permuted (the correct conversion) or as stored (a wrong one).
  auto writeHF = [&](bool permute) -> std::unique_ptr<Model> {
    std::string dir = testdata::makeTempDir("permuted");
    char cfg[1024];
    std::snprintf(cfg, sizeof cfg,
                  R"({"model_type": "llama", "hidden_size": %ld,
  "intermediate_size": %ld, "num_hidden_layers": %ld,
  "num_attention_heads": %ld, "num_key_value_heads": %ld,
  "vocab_size": %ld, "max_position_embeddings": %ld, "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0, "tie_word_embeddings": true,
  "bos_token_id": 1, "eos_token_id": 2})",
                  long(c.dim), long(c.hiddenDim), long(c.numLayers),
                  long(c.numHeads), long(c.numKVHeads), long(c.vocabSize),
                  long(c.maxSeqLen));
    testdata::writeText(dir + "/config.json", cfg);
    std::vector<std::vector<float>> storage;
    std::vector<SafetensorsWriteEntry> entries;
    for (const auto &[name, t] : l2c->tensors()) {
      std::vector<float> v;
      EXPECT_TRUE(t.toFloat(v));
      bool isQK = name.find("q_proj") != std::string::npos ||
                  name.find("k_proj") != std::string::npos;
      if (isQK && permute) {
        // Row (h, 2i + p) of the llama2.c layout becomes row (h, p*d/2 + i).
        std::vector<float> p(v.size());
        int64_t cols = t.shape[1];
        for (int64_t row = 0; row < t.shape[0]; ++row) {
          int64_t h = row / hd, r = row % hd;
          int64_t to = h * hd + (r % 2) * (hd / 2) + r / 2;
          std::copy(v.begin() + row * cols, v.begin() + (row + 1) * cols,
                    p.begin() + to * cols);
        }
        v = p;
      }
      storage.push_back(std::move(v));
      entries.push_back({name, DType::F32, t.shape, storage.back().data()});
    }
    std::string error;
    EXPECT_TRUE(writeSafetensors(dir + "/model.safetensors", entries, error))
        << error;
    return load(dir);
  };

  std::vector<int32_t> tokens = {1};
  for (int i = 0; i < 47; ++i)
    tokens.push_back(int32_t(3 + (i * 37) % 500));
  auto maxDiff = [&](const Model &x, const Model &y, float &range) {
    LlamaReference a(x), b(y);
    std::vector<float> la, lb;
    std::string error;
    EXPECT_TRUE(a.prefill(tokens, &la, error)) << error;
    EXPECT_TRUE(b.prefill(tokens, &lb, error)) << error;
    float diff = 0;
    range = 0;
    for (size_t i = 0; i < la.size() && i < lb.size(); ++i) {
      range = std::max(range, std::fabs(la[i]));
      diff = std::max(diff, std::fabs(la[i] - lb[i]));
    }
    return diff;
  };
  auto hf = writeHF(/*permute=*/true);
  ASSERT_TRUE(hf);
  ASSERT_EQ(hf->config().ropePairing, RopePairing::RotateHalf);
  float range;
  float diff = maxDiff(*l2c, *hf, range);
  // Same math; only the order of the head-dimension sums differs.
  EXPECT_LE(diff, 1e-4f * range) << "max |diff| " << diff << " range " << range;
  // A conversion that forgets the permutation is caught by this comparison.
  auto wrong = writeHF(/*permute=*/false);
  ASSERT_TRUE(wrong);
  EXPECT_GT(maxDiff(*l2c, *wrong, range), 1e-2f * range);
}

} // namespace
