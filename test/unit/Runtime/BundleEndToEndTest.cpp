//===- BundleEndToEndTest.cpp - Real models through quant-compile + runtime
//===//
//
// The whole path a deployment team takes: quant-compile a shared model into
// a bundle, open it with the runtime's C API (no compiler in the process),
// and check what the model says and computes against the C++ float
// reference and the known greedy outputs of ../shared/models/README.md.
//
//===----------------------------------------------------------------------===//

#include "TestData.h"
#include "nibble/Model/Model.h"
#include "nibble/Model/Synthetic.h"
#include "nibble/Quant/Weights.h"
#include "nibble/Reference/LlamaReference.h"
#include "nibble/Runtime/nibble_runtime.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

using namespace nibble;

namespace {

/// Runs quant-compile on `model` with `args`; the bundle path or "" (and a
/// test failure) when it fails.
std::string compile(const std::string &model, const std::string &args,
                    const std::string &name) {
  std::string out = testdata::makeTempDir("e2e") + "/" + name + ".nbl";
  std::string cmd = std::string(QUANT_COMPILE_PATH) + " '" + model + "' " +
                    args + " --quiet -o '" + out + "' > /dev/null";
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd;
  return rc == 0 ? out : "";
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Greedy text of `n` tokens from BOS.
std::string greedyFromBos(nibble_bundle *b, int n) {
  nibble_session *s = nibble_session_create(b, 1);
  EXPECT_TRUE(s) << nibble_last_error();
  if (!s)
    return "";
  std::vector<int32_t> ids = {nibble_bundle_bos(b)};
  EXPECT_EQ(nibble_session_prefill(s, ids.data(), 1, nullptr), 0)
      << nibble_last_error();
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    int32_t next = nibble_sample(nibble_session_logits(s),
                                 nibble_bundle_vocab(b), 0.0f, 1.0f, nullptr);
    out.push_back(next);
    if (next == nibble_bundle_eos(b) || nibble_session_decode(s, next) != 0)
      break;
  }
  nibble_session_free(s);
  char *text = nibble_detokenize(b, out.data(), out.size());
  std::string r = text ? text : "";
  nibble_free_string(text);
  return r;
}

/// The bundle's logits `got` of `ids` against the C++ reference's (with
/// the same KV-cache rounding): max |difference| within `tolerance` of the
/// logit range.
/// `linears` (name -> f32 [out, in] weights) replace the checkpoint's.
void checkAgainstReference(
    const model::Model &m, const std::vector<int32_t> &ids,
    const std::vector<float> &got, float tolerance,
    std::optional<formats::Format> kvFormat = {},
    const std::map<std::string, std::vector<float>> &linears = {}) {
  reference::LlamaReference ref(m);
  ref.setKVCacheFormat(kvFormat);
  for (const auto &[name, w] : linears)
    ASSERT_TRUE(ref.overrideLinear(name, w.data())) << name;
  std::vector<float> want;
  std::string error;
  ASSERT_TRUE(ref.prefill(ids, &want, error)) << error;
  ASSERT_EQ(got.size(), want.size());
  float lo = INFINITY, hi = -INFINITY, diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    lo = std::min(lo, want[i]);
    hi = std::max(hi, want[i]);
    diff = std::max(diff, std::fabs(got[i] - want[i]));
  }
  EXPECT_LE(diff, tolerance * (hi - lo)) << "logit range " << hi - lo;
  std::printf("max |bundle - reference| %g over logit range %g\n", diff,
              hi - lo);
}

/// Max |logit difference| over the logit range, 64 tokens of dev text.
void compareWithReference(
    nibble_bundle *b, const model::Model &m, const std::string &shared,
    float tolerance, std::optional<formats::Format> kvFormat = {},
    const std::map<std::string, std::vector<float>> &linears = {}) {
  std::string text = testdata::readText(shared + "/data/tinystories_dev.txt");
  std::vector<int32_t> ids(64);
  int64_t n = nibble_tokenize(b, text.data(), 2000, 1, ids.data(), ids.size());
  ASSERT_GE(n, 64) << nibble_last_error();
  const int64_t V = nibble_bundle_vocab(b);
  nibble_session *s = nibble_session_create(b, 1);
  ASSERT_TRUE(s) << nibble_last_error();
  std::vector<float> got(size_t(64 * V));
  ASSERT_EQ(nibble_session_prefill(s, ids.data(), 64, got.data()), 0)
      << nibble_last_error();
  nibble_session_free(s);
  checkAgainstReference(m, ids, got, tolerance, kvFormat, linears);
}

struct SharedModel {
  const char *path; ///< under ../shared/models
  const char *greedy;
};
const SharedModel kStories260K = {
    "stories260K/stories260K.bin",
    "Once upon a time, there was a little girl named Lily. She loved to "
    "play outside in the park."};
const SharedModel kTinyStories656K = {
    "tinystories-656k",
    "Once upon a time, there was a little girl named Lily. She had a toy "
    "car that she loved very much."};

void checkFloatBundle(const SharedModel &sm) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string modelPath = shared + "/models/" + sm.path;
  std::string error;
  auto m = model::Model::load(modelPath, error);
  ASSERT_TRUE(m) << error;
  std::string path =
      compile(modelPath, "--format f32 --context 128 --prefill-chunk 4", "f32");
  ASSERT_FALSE(path.empty());
  nibble_bundle *b = nibble_bundle_open(path.c_str());
  ASSERT_TRUE(b) << nibble_last_error();
  std::string text = greedyFromBos(b, 40);
  EXPECT_EQ(text.substr(0, std::string(sm.greedy).size()), sm.greedy)
      << "generated: " << text;
  compareWithReference(b, *m, shared, 1e-3f);
  nibble_bundle_close(b);
}

TEST(BundleEndToEndTest, Stories260KFloatBundle) {
  checkFloatBundle(kStories260K);
}

TEST(BundleEndToEndTest, TinyStories656KFloatBundle) {
  checkFloatBundle(kTinyStories656K);
}

// Same inputs, same bytes: two compilations of a quantized bundle (generated
// kernels, externalized weights, linked code) are identical, and the bundle
// still tells the story.
TEST(BundleEndToEndTest, QuantizedBundleIsDeterministicAndCoherent) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string modelPath = shared + "/models/" + kTinyStories656K.path;
  const std::string args = "--format int8 --group 0 --context 128";
  std::string a = compile(modelPath, args, "a"),
              b = compile(modelPath, args, "b");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  std::string bytesA = readBytes(a);
  EXPECT_GT(bytesA.size(), 0u);
  EXPECT_TRUE(bytesA == readBytes(b)) << a << " and " << b << " differ";
  nibble_bundle *bundle = nibble_bundle_open(a.c_str());
  ASSERT_TRUE(bundle) << nibble_last_error();
  // The large matmuls' rows go over the session's pool: the logits do not
  // depend on the thread count.
  {
    std::vector<int32_t> ids = {nibble_bundle_bos(bundle), 300, 17, 99, 5};
    const int64_t V = nibble_bundle_vocab(bundle);
    std::vector<float> one(ids.size() * size_t(V)), two(one.size());
    for (auto [threads, out] : {std::make_pair(1, &one), std::make_pair(2, &two)}) {
      nibble_session *s = nibble_session_create(bundle, threads);
      ASSERT_TRUE(s) << nibble_last_error();
      ASSERT_EQ(nibble_session_prefill(s, ids.data(), ids.size(), out->data()), 0)
          << nibble_last_error();
      nibble_session_free(s);
    }
    EXPECT_TRUE(one == two) << "1 and 2 threads give different logits";
  }
  // The card says what each tensor lost and what it costs: int8 per
  // channel over 128 columns is 8 + 32/128 bits per weight.
  {
    std::string manifest = nibble_bundle_manifest(bundle);
    EXPECT_NE(manifest.find("\"bits_per_weight\": 8.25"), std::string::npos);
    EXPECT_NE(manifest.find("\"relative_error\": "), std::string::npos);
  }
  // int8 per channel keeps the first sentence of the float model's story.
  std::string text = greedyFromBos(bundle, 16);
  EXPECT_EQ(text.substr(0, 40),
            std::string(kTinyStories656K.greedy).substr(0, 40))
      << "generated: " << text;
  nibble_bundle_close(bundle);
}

// A float bundle with an int8 KV cache computes what the reference computes
// with the same cache rounding: the runtime hands the code and scale
// buffers to the entry points as the generated code expects. The card says
// how the cache is stored.
TEST(BundleEndToEndTest, QuantizedKVCacheBundleMatchesReference) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string modelPath = shared + "/models/" + kStories260K.path;
  std::string error;
  auto m = model::Model::load(modelPath, error);
  ASSERT_TRUE(m) << error;
  std::string path = compile(
      modelPath, "--format f32 --kv-cache int8 --context 128 --prefill-chunk 4",
      "kv8");
  ASSERT_FALSE(path.empty());
  nibble_bundle *b = nibble_bundle_open(path.c_str());
  ASSERT_TRUE(b) << nibble_last_error();
  std::string manifest = nibble_bundle_manifest(b);
  EXPECT_NE(manifest.find("\"dtype\": \"int8\""), std::string::npos);
  EXPECT_NE(manifest.find("f32 per (layer, position, kv head)"),
            std::string::npos);
  compareWithReference(b, *m, shared, 1e-3f, formats::Format::byName("int8"));
  std::string text = greedyFromBos(b, 12);
  EXPECT_EQ(text.substr(0, 30), std::string(kStories260K.greedy).substr(0, 30))
      << "generated: " << text;
  nibble_bundle_close(b);
}

// Lookup-table weights (NF4, through vector permutes) and W8A8 (the
// integer-dot kernels with activations quantized per token) compile into
// bundles whose temporaries are freed, and still tell the story.
TEST(BundleEndToEndTest, TableFormatAndW8A8BundlesRun) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string modelPath = shared + "/models/" + kTinyStories656K.path;
  // W8A8 with outlier channels split off into an f16 matmul (their index
  // table must stay in the code: it once crashed weight externalization).
  const std::string outliers =
      "--format int8 --group 0 --act int8 --outlier-threshold 3 --calib '" +
      shared + "/data/tinystories_dev.txt' --calib-sequences 2";
  for (const std::string &args :
       {std::string("--format nf4 --group 32"),
        std::string("--format int8 --group 0 --act int8"), outliers}) {
    SCOPED_TRACE(args);
    std::string path = compile(
        modelPath, args + " --context 64 --prefill-chunk 4", "q");
    ASSERT_FALSE(path.empty());
    nibble_bundle *b = nibble_bundle_open(path.c_str());
    ASSERT_TRUE(b) << nibble_last_error();
    std::string text = greedyFromBos(b, 8);
    EXPECT_EQ(text.substr(0, 20),
              std::string(kTinyStories656K.greedy).substr(0, 20))
        << "generated: " << text;
    nibble_bundle_close(b);
  }
}

// 8-bit group scales (MXFP4: E8M0 per 32; NVFP4-style: e4m3 per 16 times
// a per-tensor f32) and fp6 in the CPU kernels' 4+2 split layout: the
// bundle's logits are those of the reference run with the rounding
// library's dequantized weights, so the codes and scale codes in the
// bundle stand for exactly what the library chose.
TEST(BundleEndToEndTest, ScaleAndFp6BundlesMatchTheLibrary) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string modelPath = shared + "/models/" + kTinyStories656K.path;
  std::string error;
  auto m = model::Model::load(modelPath, error);
  ASSERT_TRUE(m) << error;
  struct Case {
    const char *args;
    quant::WeightScheme scheme;
  };
  for (const Case &c :
       {Case{"--format e2m1fn --group 32 --scale e8m0",
             {formats::Format::e2m1fn(), 32, true, quant::ScaleStorage::E8M0}},
        Case{"--format e2m1fn --group 16 --scale e4m3",
             {formats::Format::e2m1fn(), 16, true,
              quant::ScaleStorage::E4M3}},
        Case{"--format e2m3fn --group 64",
             {formats::Format::e2m3fn(), 64, true,
              quant::ScaleStorage::F32}}}) {
    SCOPED_TRACE(c.args);
    std::map<std::string, std::vector<float>> linears;
    for (const std::string &n : model::linearNames(m->config())) {
      const model::TensorView &t =
          n == "lm_head" ? m->lmHead() : m->get(n + ".weight");
      std::vector<float> w;
      ASSERT_TRUE(t.toFloat(w)) << n;
      auto q = quant::quantizeRTN({w.data(), t.shape[0], t.shape[1]},
                                  c.scheme, {}, error);
      ASSERT_TRUE(q) << n << ": " << error;
      linears[n] = q->dequantize();
    }
    std::string path = compile(
        modelPath, std::string(c.args) + " --context 128 --prefill-chunk 4",
        "scales");
    ASSERT_FALSE(path.empty());
    nibble_bundle *b = nibble_bundle_open(path.c_str());
    ASSERT_TRUE(b) << nibble_last_error();
    compareWithReference(b, *m, shared, 1e-3f, std::nullopt, linears);
    nibble_bundle_close(b);
  }
}

// The default model of a machine without ../shared: generated
// deterministically (same seed, same bytes), compiled into a float bundle
// whose logits are the C++ reference's, and generating text.
TEST(BundleEndToEndTest, SyntheticDefaultModelNeedsNoSharedData) {
  std::string error;
  std::string a = testdata::makeTempDir("synthetic-a"),
              b = testdata::makeTempDir("synthetic-b");
  ASSERT_TRUE(model::writeSyntheticModel(a, 1, error)) << error;
  ASSERT_TRUE(model::writeSyntheticModel(b, 1, error)) << error;
  for (const char *f : {"/model.bin", "/tokenizer.bin"})
    EXPECT_TRUE(readBytes(a + f) == readBytes(b + f)) << f;
  auto m = model::Model::load(a + "/model.bin", error);
  ASSERT_TRUE(m) << error;
  std::string path = compile(a + "/model.bin",
                             "--format f32 --context 64 --prefill-chunk 4",
                             "synthetic");
  ASSERT_FALSE(path.empty());
  nibble_bundle *bundle = nibble_bundle_open(path.c_str());
  ASSERT_TRUE(bundle) << nibble_last_error();
  std::vector<int32_t> ids(32);
  int64_t n = nibble_tokenize(bundle, "Once upon a time, the little girl",
                              33, 1, ids.data(), ids.size());
  ASSERT_GT(n, 4) << nibble_last_error();
  ids.resize(size_t(n));
  const int64_t V = nibble_bundle_vocab(bundle);
  nibble_session *s = nibble_session_create(bundle, 1);
  ASSERT_TRUE(s) << nibble_last_error();
  std::vector<float> got(ids.size() * size_t(V));
  ASSERT_EQ(nibble_session_prefill(s, ids.data(), ids.size(), got.data()), 0)
      << nibble_last_error();
  nibble_session_free(s);
  checkAgainstReference(*m, ids, got, 1e-3f);
  EXPECT_FALSE(greedyFromBos(bundle, 8).empty());
  nibble_bundle_close(bundle);
}

} // namespace
