//===- RuntimeTest.cpp - libnibble_runtime.so's C API on toy bundles ------===//

#include "nibble/Runtime/nibble_runtime.h"

#include "ToyBundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>

using namespace nibble::runtime::test;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

struct BundleCloser {
  void operator()(nibble_bundle *b) const { nibble_bundle_close(b); }
};
struct SessionFreer {
  void operator()(nibble_session *s) const { nibble_session_free(s); }
};
using BundlePtr = std::unique_ptr<nibble_bundle, BundleCloser>;
using SessionPtr = std::unique_ptr<nibble_session, SessionFreer>;

class RuntimeTest : public ::testing::Test {
protected:
  TempDir dir;
  ToyBundle toy;

  BundlePtr open(const ToyBundle &b, const std::string &name = "toy.nbl") {
    std::string path = b.write(dir.path, name);
    BundlePtr p(nibble_bundle_open(path.c_str()));
    EXPECT_TRUE(p) << nibble_last_error();
    return p;
  }
  /// The error opening `b` (empty if it opened).
  std::string openError(const ToyBundle &b) {
    std::string p = b.write(dir.path, "bad.nbl");
    BundlePtr bundle(nibble_bundle_open(p.c_str()));
    return bundle ? std::string() : std::string(nibble_last_error());
  }
  std::string bundlePath(const std::string &name = "bad.nbl") const {
    return dir.path + "/" + name;
  }
};

const int32_t V = toyVocab();

/// What the toy model writes for `token` with cached-token sum `sum`.
void expectToyRow(const float *row, int32_t token, int64_t sum, bool prefill,
                  const std::string &what) {
  const int32_t hot = (token + 1) % V, mark = (token + 2) % V;
  for (int32_t v = 0; v < V; ++v) {
    float want = v == hot    ? 1.0f + kToyWeight0 + float(sum % 8)
                 : v == mark ? (prefill ? 0.5f : 0.25f)
                             : 0.0f;
    if (row[v] != want) {
      ADD_FAILURE() << what << ": logit " << v << " is " << row[v]
                    << ", expected " << want << " (token " << token << ")";
      return;
    }
  }
}

//===----------------------------------------------------------------------===//
// Opening
//===----------------------------------------------------------------------===//

TEST_F(RuntimeTest, OpensAndReportsTheManifest) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  EXPECT_EQ(nibble_bundle_vocab(b.get()), V);
  EXPECT_EQ(nibble_bundle_context(b.get()), kToyContext);
  EXPECT_EQ(nibble_bundle_prefill_chunk(b.get()), kToyChunk);
  EXPECT_EQ(nibble_bundle_bos(b.get()), 1);
  EXPECT_EQ(nibble_bundle_eos(b.get()), 2);
  EXPECT_EQ(std::string(nibble_bundle_path(b.get())), bundlePath("toy.nbl"));
  EXPECT_EQ(std::string(nibble_bundle_manifest(b.get())), toy.manifestText);
}

TEST_F(RuntimeTest, TokenizesAndDetokenizes) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  const std::string text = "the band and the";
  int64_t n = nibble_tokenize(b.get(), text.data(), text.size(), 1, nullptr, 0);
  ASSERT_GT(n, 2);
  std::vector<int32_t> ids(static_cast<size_t>(n) + 1, -7);
  EXPECT_EQ(nibble_tokenize(b.get(), text.data(), text.size(), 1, ids.data(),
                            ids.size()),
            n);
  EXPECT_EQ(ids[0], 1); // BOS
  EXPECT_EQ(ids[size_t(n)], -7) << "wrote past the ids";
  EXPECT_EQ(ids[1], V - 10 + 5) << "\" the\" is one merged piece";
  // A short buffer gets its first `cap` ids and the full count.
  std::vector<int32_t> few(3, -7);
  EXPECT_EQ(
      nibble_tokenize(b.get(), text.data(), text.size(), 1, few.data(), 2), n);
  EXPECT_EQ(few[0], ids[0]);
  EXPECT_EQ(few[1], ids[1]);
  EXPECT_EQ(few[2], -7);
  char *back = nibble_detokenize(b.get(), ids.data(), size_t(n));
  ASSERT_TRUE(back) << nibble_last_error();
  EXPECT_EQ(std::string(back), text);
  nibble_free_string(back);
  // Without BOS; the empty text is no tokens.
  EXPECT_EQ(nibble_tokenize(b.get(), text.data(), text.size(), 0, nullptr, 0),
            n - 1);
  EXPECT_EQ(nibble_tokenize(b.get(), "", 0, 0, nullptr, 0), 0);
  EXPECT_EQ(nibble_tokenize(b.get(), nullptr, 0, 1, ids.data(), ids.size()), 1);
}

//===----------------------------------------------------------------------===//
// Sessions
//===----------------------------------------------------------------------===//

TEST_F(RuntimeTest, PrefillRunsWholeChunksThenDecodesTheRest) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  SessionPtr s(nibble_session_create(b.get(), 0));
  ASSERT_TRUE(s) << nibble_last_error();
  EXPECT_EQ(nibble_session_position(s.get()), 0);
  EXPECT_EQ(nibble_session_logits(s.get()), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_session_logits: no token has been run yet");

  // 10 tokens: two prefill chunks of 4, then two decodes.
  std::vector<int32_t> tokens = {1, 5, 9, 300, 7, 0, 2, 11, 13, 363};
  std::vector<float> all(tokens.size() * size_t(V), -9.0f);
  ASSERT_EQ(
      nibble_session_prefill(s.get(), tokens.data(), tokens.size(), all.data()),
      0)
      << nibble_last_error();
  EXPECT_EQ(nibble_session_position(s.get()), 10);
  int64_t sum = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    sum += tokens[i];
    expectToyRow(all.data() + i * size_t(V), tokens[i], sum, i < 8,
                 "row " + std::to_string(i));
  }
  const float *last = nibble_session_logits(s.get());
  ASSERT_TRUE(last);
  expectToyRow(last, tokens.back(), sum, false, "last logits");

  // Decode sees every cached token.
  ASSERT_EQ(nibble_session_decode(s.get(), 42), 0) << nibble_last_error();
  sum += 42;
  EXPECT_EQ(nibble_session_position(s.get()), 11);
  expectToyRow(nibble_session_logits(s.get()), 42, sum, false, "decode");

  // Chunks count from the call, not from position 0: 5 tokens at 11 are
  // one chunk (11..14) and one decode (15); without all_logits.
  std::vector<int32_t> more = {4, 4, 4, 4, 6};
  ASSERT_EQ(nibble_session_prefill(s.get(), more.data(), more.size(), nullptr),
            0)
      << nibble_last_error();
  sum += 22;
  EXPECT_EQ(nibble_session_position(s.get()), 16);
  expectToyRow(nibble_session_logits(s.get()), 6, sum, false, "after more");

  // A whole chunk at the end leaves the prefill logits as the last.
  ASSERT_EQ(nibble_session_prefill(s.get(), more.data(), 4, nullptr), 0);
  sum += 16;
  expectToyRow(nibble_session_logits(s.get()), 4, sum, true, "chunk last");

  // Zero tokens: nothing happens.
  EXPECT_EQ(nibble_session_prefill(s.get(), nullptr, 0, nullptr), 0);
  EXPECT_EQ(nibble_session_position(s.get()), 20);
}

TEST_F(RuntimeTest, ResetStartsFromAnEmptyCache) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  SessionPtr s(nibble_session_create(b.get(), 1));
  ASSERT_TRUE(s);
  std::vector<int32_t> tokens(13, 5);
  ASSERT_EQ(
      nibble_session_prefill(s.get(), tokens.data(), tokens.size(), nullptr),
      0);
  ASSERT_EQ(nibble_session_reset(s.get()), 0);
  EXPECT_EQ(nibble_session_position(s.get()), 0);
  EXPECT_EQ(nibble_session_logits(s.get()), nullptr);
  // The toy model checks that every position from pos on is zero; the sum
  // covers only the new tokens.
  std::vector<int32_t> fresh = {1, 3};
  std::vector<float> all(2 * size_t(V));
  ASSERT_EQ(nibble_session_prefill(s.get(), fresh.data(), 2, all.data()), 0);
  expectToyRow(all.data(), 1, 1, false, "row 0 after reset");
  expectToyRow(all.data() + V, 3, 4, false, "row 1 after reset");
}

TEST_F(RuntimeTest, RefusesTokensOutOfRangeAndRunsNothing) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  SessionPtr s(nibble_session_create(b.get(), 0));
  ASSERT_TRUE(s);
  std::vector<int32_t> tokens = {1, 2, V};
  EXPECT_NE(nibble_session_prefill(s.get(), tokens.data(), 3, nullptr), 0);
  EXPECT_EQ(std::string(nibble_last_error()),
            bundlePath("toy.nbl") + ": token " + std::to_string(V) +
                " at index 2 is out of range [0, " + std::to_string(V) + ")");
  EXPECT_EQ(nibble_session_position(s.get()), 0);
  EXPECT_NE(nibble_session_decode(s.get(), -1), 0);
  EXPECT_EQ(std::string(nibble_last_error()),
            bundlePath("toy.nbl") +
                ": token -1 at index 0 is out of range "
                "[0, " +
                std::to_string(V) + ")");
  EXPECT_EQ(nibble_session_position(s.get()), 0);
}

TEST_F(RuntimeTest, RefusesToRunPastTheContext) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  SessionPtr s(nibble_session_create(b.get(), 0));
  ASSERT_TRUE(s);
  std::vector<int32_t> tokens(kToyContext + 1, 7);
  EXPECT_NE(
      nibble_session_prefill(s.get(), tokens.data(), tokens.size(), nullptr),
      0);
  EXPECT_EQ(std::string(nibble_last_error()),
            bundlePath("toy.nbl") + ": 33 tokens at position 0 exceed the "
                                    "context of 32 (32 positions left)");
  EXPECT_EQ(nibble_session_position(s.get()), 0);
  ASSERT_EQ(nibble_session_prefill(s.get(), tokens.data(), 30, nullptr), 0);
  EXPECT_NE(nibble_session_prefill(s.get(), tokens.data(), 3, nullptr), 0);
  EXPECT_EQ(std::string(nibble_last_error()),
            bundlePath("toy.nbl") + ": 3 tokens at position 30 exceed the "
                                    "context of 32 (2 positions left)");
  ASSERT_EQ(nibble_session_decode(s.get(), 1), 0);
  ASSERT_EQ(nibble_session_decode(s.get(), 1), 0) << nibble_last_error();
  EXPECT_EQ(nibble_session_position(s.get()), kToyContext);
  EXPECT_NE(nibble_session_decode(s.get(), 1), 0);
  EXPECT_THAT(nibble_last_error(),
              HasSubstr("1 tokens at position 32 exceed the context of 32"));
}

TEST_F(RuntimeTest, SessionsAreIndependentAndOutliveTheirBundle) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  SessionPtr s1(nibble_session_create(b.get(), 0));
  SessionPtr s2(nibble_session_create(b.get(), 0));
  ASSERT_TRUE(s1 && s2);
  b.reset(); // the sessions keep the code loaded
  ASSERT_EQ(nibble_session_decode(s1.get(), 10), 0);
  ASSERT_EQ(nibble_session_decode(s2.get(), 20), 0);
  ASSERT_EQ(nibble_session_decode(s1.get(), 30), 0);
  expectToyRow(nibble_session_logits(s1.get()), 30, 40, false, "session 1");
  expectToyRow(nibble_session_logits(s2.get()), 20, 20, false, "session 2");
}

TEST_F(RuntimeTest, EachBundleRunsItsOwnCode) {
  ToyBundle shifted = toy;
  shifted.code = readBytes(NIBBLE_TOY_MODEL_SHIFTED_SO); // hot = token + 2
  for (int round = 0; round < 3; ++round) {
    BundlePtr a = open(toy, "a.nbl");
    BundlePtr c = open(shifted, "c.nbl");
    ASSERT_TRUE(a && c);
    SessionPtr sa(nibble_session_create(a.get(), 0));
    SessionPtr sc(nibble_session_create(c.get(), 0));
    ASSERT_EQ(nibble_session_decode(sa.get(), 10), 0);
    ASSERT_EQ(nibble_session_decode(sc.get(), 10), 0);
    EXPECT_EQ(nibble_sample(nibble_session_logits(sa.get()), V, 0, 1, nullptr),
              11);
    EXPECT_EQ(nibble_sample(nibble_session_logits(sc.get()), V, 0, 1, nullptr),
              12)
        << "round " << round;
  }
}

// Sessions take any positive thread count (0: one per hardware thread) and
// give the same logits whatever it is; a negative count is an error.
TEST_F(RuntimeTest, ThreadCounts) {
  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  const int64_t V = nibble_bundle_vocab(b.get());
  std::vector<int32_t> tokens = {1, 5, 9, 300, 7, 0};
  std::vector<float> want;
  for (int threads : {1, 4, 0}) {
    SessionPtr s(nibble_session_create(b.get(), threads));
    ASSERT_TRUE(s) << nibble_last_error();
    std::vector<float> got(tokens.size() * size_t(V));
    ASSERT_EQ(nibble_session_prefill(s.get(), tokens.data(), tokens.size(),
                                     got.data()),
              0);
    if (want.empty())
      want = got;
    EXPECT_TRUE(got == want) << threads << " threads";
  }
  EXPECT_EQ(nibble_session_create(b.get(), -1), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_session_create: threads = -1 (expected 0 for one per "
            "hardware thread, or a positive count)");
}

// Outside an entry-point call there is no session pool: the task runs once
// over all rows on the calling thread.
TEST_F(RuntimeTest, ParallelForWithoutASessionRunsOnce) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  nibble_parallel_for(
      [](void *ctx, int64_t b, int64_t e) {
        static_cast<std::vector<std::pair<int64_t, int64_t>> *>(ctx)
            ->emplace_back(b, e);
      },
      &ranges, 1000, 16);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0], std::make_pair(int64_t(0), int64_t(1000)));
}

TEST_F(RuntimeTest, NullHandlesAreErrorsNotCrashes) {
  EXPECT_EQ(nibble_bundle_open(nullptr), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_bundle_open: path is NULL");
  nibble_bundle_close(nullptr);
  nibble_session_free(nullptr);
  nibble_free_string(nullptr);
  EXPECT_EQ(nibble_bundle_manifest(nullptr), nullptr);
  EXPECT_EQ(nibble_bundle_path(nullptr), nullptr);
  EXPECT_EQ(nibble_bundle_vocab(nullptr), -1);
  EXPECT_EQ(nibble_bundle_context(nullptr), -1);
  EXPECT_EQ(nibble_bundle_prefill_chunk(nullptr), -1);
  EXPECT_EQ(nibble_bundle_bos(nullptr), -1);
  EXPECT_EQ(nibble_bundle_eos(nullptr), -1);
  EXPECT_EQ(nibble_tokenize(nullptr, "a", 1, 1, nullptr, 0), -1);
  EXPECT_EQ(nibble_detokenize(nullptr, nullptr, 0), nullptr);
  EXPECT_EQ(nibble_session_create(nullptr, 0), nullptr);
  EXPECT_NE(nibble_session_reset(nullptr), 0);
  EXPECT_EQ(nibble_session_position(nullptr), -1);
  EXPECT_NE(nibble_session_prefill(nullptr, nullptr, 0, nullptr), 0);
  EXPECT_NE(nibble_session_decode(nullptr, 1), 0);
  EXPECT_EQ(nibble_session_logits(nullptr), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_session_logits: session is NULL");

  BundlePtr b = open(toy);
  ASSERT_TRUE(b);
  EXPECT_EQ(nibble_tokenize(b.get(), nullptr, 3, 1, nullptr, 0), -1);
  EXPECT_EQ(std::string(nibble_last_error()), "nibble_tokenize: text is NULL");
  EXPECT_EQ(nibble_tokenize(b.get(), "abc", 3, 1, nullptr, 5), -1);
  EXPECT_EQ(nibble_detokenize(b.get(), nullptr, 2), nullptr);
  SessionPtr s(nibble_session_create(b.get(), 0));
  EXPECT_NE(nibble_session_prefill(s.get(), nullptr, 2, nullptr), 0);
}

//===----------------------------------------------------------------------===//
// Bad bundles: each refused with a message that names the file
//===----------------------------------------------------------------------===//

TEST_F(RuntimeTest, MissingFile) {
  std::string path = dir.path + "/nope.nbl";
  EXPECT_EQ(nibble_bundle_open(path.c_str()), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            path + ": cannot open: No such file or directory");
}

TEST_F(RuntimeTest, FlippedByteFailsTheChecksum) {
  std::string bytes = toy.bytes(), error;
  auto parsed = nibble::bundle::Bundle::fromMemory(
      "toy", reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(),
      error);
  ASSERT_TRUE(parsed) << error;
  uint64_t code = 0;
  for (const auto &s : parsed->sections())
    if (s.name == "code")
      code = s.offset;
  bytes[code + 100] ^= 0x01;
  std::string path = bundlePath();
  writeBytes(path, bytes);
  EXPECT_EQ(nibble_bundle_open(path.c_str()), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            path + ": section \"code\" at offset " + std::to_string(code) +
                " (size " + std::to_string(toy.code.size()) +
                "): checksum mismatch (the file is corrupt)");
}

TEST_F(RuntimeTest, TruncatedFile) {
  std::string bytes = toy.bytes();
  std::string path = bundlePath();
  writeBytes(path, bytes.substr(0, bytes.size() - 10));
  EXPECT_EQ(nibble_bundle_open(path.c_str()), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            path + ": truncated: header says " + std::to_string(bytes.size()) +
                " bytes, file has " + std::to_string(bytes.size() - 10));
}

TEST_F(RuntimeTest, NewerBundleVersion) {
  std::string bytes = toy.bytes();
  bytes[8] = 2; // format version major (docs/bundle.md)
  std::string path = bundlePath();
  writeBytes(path, bytes);
  EXPECT_EQ(nibble_bundle_open(path.c_str()), nullptr);
  EXPECT_EQ(std::string(nibble_last_error()),
            path + ": unsupported bundle version 2.0 (this runtime reads 1.x)");
}

TEST_F(RuntimeTest, MissingSection) {
  ToyBundle b = toy;
  b.omit = {"tokenizer"};
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b),
            path + ": missing section \"tokenizer\" (a bundle has manifest, "
                   "code, weights and tokenizer)");
}

TEST_F(RuntimeTest, MalformedManifestJsonGivesTheOffset) {
  ToyBundle b = toy;
  b.manifestText = "{\"nibble_bundle\": 1,\n \"model\": {\"vocab\": 12,}}";
  const std::string path = bundlePath();
  std::string error = openError(b);
  // The offending byte is the '}' after the trailing comma.
  size_t offset = b.manifestText.find(",}") + 1;
  EXPECT_THAT(error, StartsWith(path +
                                ": manifest: malformed JSON at byte "
                                "offset " +
                                std::to_string(offset) + ": "));
  EXPECT_THAT(error, HasSubstr("line 2"));
}

TEST_F(RuntimeTest, ManifestFieldErrors) {
  struct Case {
    std::function<void(json &)> edit;
    std::string message;
  } cases[] = {
      {[](json &m) { m.erase("nibble_bundle"); },
       "field \"nibble_bundle\" is missing"},
      {[](json &m) { m["nibble_bundle"] = 2; },
       "field \"nibble_bundle\" is 2: unsupported manifest version (this "
       "runtime reads 1)"},
      {[](json &m) { m["model"].erase("vocab"); },
       "field \"model.vocab\" is missing"},
      {[](json &m) { m["model"]["vocab"] = "512"; },
       "field \"model.vocab\" is string \"512\", expected an integer"},
      {[](json &m) { m["model"]["layers"] = 0; },
       "field \"model.layers\" is 0, expected 1..2147483647"},
      {[](json &m) { m["entry"]["prefill_chunk"] = 64; },
       "field \"entry.prefill_chunk\" is 64, larger than entry.context 32"},
      {[](json &m) {
         m["target"]["features"] = json::array({"avx2", 3});
       },
       "field \"target.features\" element 1 is number 3, expected a string"},
      {[](json &m) { m["kv_cache"]["dtype"] = "int8"; },
       "field \"kv_cache.code_bytes\" is missing"},
      {[](json &m) {
         m["kv_cache"]["dtype"] = "int8";
         m["kv_cache"]["code_bytes"] = 2;
         m["kv_cache"]["scales"] = "f32, layers x context x kv_heads";
       },
       "field \"kv_cache.code_bytes\" is 2 (this runtime stores one code per "
       "byte)"},
      {[](json &m) {
         m["kv_cache"]["dtype"] = "int8";
         m["kv_cache"]["code_bytes"] = 1;
         m["kv_cache"]["scales"] = "f16 per head";
       },
       "field \"kv_cache.scales\" is \"f16 per head\" (this runtime allocates "
       "\"f32, layers x context x kv_heads\")"},
      {[](json &m) { m["tokenizer"]["kind"] = "tiktoken"; },
       "field \"tokenizer.kind\" is \"tiktoken\", expected \"llama2c\", "
       "\"hf-bpe\" or \"sentencepiece\""},
      {[](json &m) { m["tokenizer"]["bos"] = toyVocab(); },
       "field \"tokenizer.bos\" is " + std::to_string(toyVocab()) +
           ", expected -1.." + std::to_string(toyVocab() - 1)},
      {[](json &m) { m["weights"]["bytes"] = 5; },
       "field \"weights.bytes\" is 5 but section \"weights\" has 4 bytes"},
  };
  for (const Case &c : cases) {
    json m = toyManifest();
    c.edit(m);
    ToyBundle b = toy;
    b.setManifest(m);
    const std::string path = bundlePath();
    std::string error = openError(b);
    EXPECT_EQ(error, path + ": manifest: " + c.message);
  }
  ToyBundle b = toy;
  b.manifestText = "[1, 2]";
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b),
            path + ": manifest: expected a JSON object, found array");
}

TEST_F(RuntimeTest, ForeignArchitecture) {
  json m = toyManifest();
  m["target"]["triple"] = foreignTriple();
  ToyBundle b = toy;
  b.setManifest(m);
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b), path + ": compiled for " + foreignTriple() +
                              ", this machine is " +
                              nibble::runtime::hostArch());
}

TEST_F(RuntimeTest, MissingCpuFeature) {
  // A feature in the runtime's table that this CPU lacks, if there is one.
  std::string absent;
  for (const std::string &f : nibble::runtime::detectableFeatures())
    if (!nibble::runtime::hostHasFeature(f))
      absent = f;
  if (absent.empty())
    GTEST_SKIP() << "this CPU has every feature the runtime detects";
  json m = toyManifest();
  m["target"]["features"] = {"+64bit", "-" + absent, "not-a-feature", absent};
  ToyBundle b = toy;
  b.setManifest(m);
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b), path +
                              ": compiled for CPU toy-cpu with "
                              "features this machine lacks: " +
                              absent);
}

TEST_F(RuntimeTest, MissingCpuFeatureThroughTheTestHook) {
  // Every machine of the architecture has these; the hook hides them.
  const bool x86 = std::string(nibble::runtime::hostArch()) == "x86_64";
  const std::string a = x86 ? "sse2" : "neon", c = x86 ? "sse" : "fp-armv8";
  json m = toyManifest();
  m["target"]["features"] = {"+" + a, c, "cx8"};
  ToyBundle b = toy;
  b.setManifest(m);
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b), "") << "the host has " << a << " and " << c;
  ::setenv("NIBBLE_CPU_FEATURES_DISABLE", (c + "," + a).c_str(), 1);
  std::string error = openError(b);
  ::unsetenv("NIBBLE_CPU_FEATURES_DISABLE");
  EXPECT_EQ(error, path +
                       ": compiled for CPU toy-cpu with features this "
                       "machine lacks: " +
                       a + " " + c);
}

TEST_F(RuntimeTest, MissingEntryPoint) {
  ToyBundle b = toy;
  b.code = readBytes(NIBBLE_TOY_MODEL_NO_PREFILL_SO);
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b),
            path + ": section \"code\" has no entry point "
                   "\"_mlir_ciface_nibble_prefill\" (manifest entry.prefill)");
  json m = toyManifest();
  m["entry"]["decode"] = "nibble_decode";
  b = toy;
  b.setManifest(m);
  EXPECT_EQ(openError(b),
            path + ": section \"code\" has no entry point \"nibble_decode\" "
                   "(manifest entry.decode)");
}

TEST_F(RuntimeTest, CodeThatIsNotForThisMachine) {
  ToyBundle b = toy;
  b.code = "#!/bin/sh\necho not a library\n" + std::string(64, ' ');
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b), path + ": section \"code\" is not an ELF file (" +
                              std::to_string(b.code.size()) +
                              " bytes, no \\x7fELF magic)");
  b.code = toy.code;
  const bool x86 = std::string(nibble::runtime::hostArch()) == "x86_64";
  b.code[18] = char(x86 ? 183 : 62); // e_machine
  b.code[19] = 0;
  EXPECT_EQ(openError(b),
            path + ": section \"code\" is an ELF shared object for " +
                (x86 ? "aarch64" : "x86_64") + ", this machine is " +
                nibble::runtime::hostArch());
  b.code = toy.code;
  b.code[16] = 1; // e_type ET_REL
  EXPECT_EQ(openError(b),
            path + ": section \"code\" is an ELF file of type 1, expected a "
                   "shared object (ET_DYN, 3)");
  // A valid ELF header over garbage: dlopen's own reason, with the path.
  b.code = toy.code.substr(0, 64) + std::string(4096, '\0');
  std::string error = openError(b);
  EXPECT_THAT(error, StartsWith(path + ": section \"code\": cannot load: "));
}

TEST_F(RuntimeTest, BadTokenizerSection) {
  ToyBundle b = toy;
  b.tokenizer = b.tokenizer.substr(0, 100);
  const std::string path = bundlePath();
  EXPECT_THAT(openError(b),
              StartsWith(path + ": section \"tokenizer\": token "));
  json m = toyManifest();
  m["tokenizer"]["kind"] = "hf-bpe";
  b = toy;
  b.setManifest(m);
  EXPECT_THAT(openError(b), StartsWith(path + ": section \"tokenizer\""));
}

TEST_F(RuntimeTest, SentencePieceTokenizerFromTheBundle) {
  std::string model =
      nibble::testdata::sharedDir() + "/models/stories260K/tok512.model";
  if (nibble::testdata::sharedDir().empty() || readBytes(model).empty())
    GTEST_SKIP() << "shared tok512.model not found";
  json m = toyManifest();
  m["tokenizer"]["kind"] = "sentencepiece";
  m["tokenizer"]["vocab"] = 512;
  ToyBundle b = toy;
  b.setManifest(m);
  b.tokenizer = readBytes(model);
  BundlePtr bundle = open(b);
  ASSERT_TRUE(bundle);
  const std::string text = "Once upon a time";
  int64_t n =
      nibble_tokenize(bundle.get(), text.data(), text.size(), 1, nullptr, 0);
  ASSERT_GT(n, 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  nibble_tokenize(bundle.get(), text.data(), text.size(), 1, ids.data(), n);
  char *back = nibble_detokenize(bundle.get(), ids.data(), ids.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(std::string(back), text);
  nibble_free_string(back);
  // A vocabulary that disagrees with the manifest is refused.
  m["tokenizer"]["vocab"] = 500;
  b.setManifest(m);
  const std::string path = bundlePath();
  EXPECT_EQ(openError(b),
            path + ": section \"tokenizer\": has 512 tokens, the manifest's "
                   "tokenizer.vocab says 500");
}

//===----------------------------------------------------------------------===//
// Sampling
//===----------------------------------------------------------------------===//

TEST(Sample, GreedyTakesTheLowestIdOfTheMaximum) {
  std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f, NAN};
  EXPECT_EQ(nibble_sample(l.data(), 5, 0, 1, nullptr), 1);
  l[0] = NAN;
  l[1] = NAN;
  EXPECT_EQ(nibble_sample(l.data(), 5, 0, 1, nullptr), 3);
  uint64_t rng = 5;
  l = {1.0f, INFINITY, 0.0f, INFINITY};
  EXPECT_EQ(nibble_sample(l.data(), 4, 1.0f, 1, &rng), 1);
  EXPECT_EQ(rng, 5u) << "a degenerate softmax draws nothing";
}

TEST(Sample, TheDocumentedGeneratorPicksTheDocumentedId) {
  // splitmix64 from 0: the first output is 0xE220A8397B1DCDAF, so u =
  // 0.883..., which falls in the fourth of four equal slices.
  std::vector<float> equal(4, 0.0f);
  uint64_t rng = 0;
  EXPECT_EQ(nibble_sample(equal.data(), 4, 1.0f, 1.0f, &rng), 3);
  EXPECT_EQ(rng, 0x9E3779B97F4A7C15ull);
  // The second output, 0x6E789E6AA1B965F4, gives u = 0.431: the second.
  EXPECT_EQ(nibble_sample(equal.data(), 4, 1.0f, 1.0f, &rng), 1);
}

TEST(Sample, SameSeedSameTokens) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i)
    l[i] = float(std::sin(double(i)) * 3);
  auto draw = [&](uint64_t seed, float t, float p) {
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i)
      out.push_back(nibble_sample(l.data(), 50, t, p, &seed));
    return out;
  };
  EXPECT_EQ(draw(42, 0.8f, 0.9f), draw(42, 0.8f, 0.9f));
  EXPECT_NE(draw(42, 0.8f, 0.9f), draw(43, 0.8f, 0.9f));
  for (int32_t id : draw(7, 1.0f, 1.0f))
    EXPECT_TRUE(id >= 0 && id < 50);
}

TEST(Sample, TemperatureFollowsTheSoftmax) {
  // p = {1/2, 1/4, 1/4} at temperature 1; at temperature 2 the logits
  // halve: p proportional to {sqrt 2, 1, 1}.
  std::vector<float> l = {float(std::log(2.0)), 0.0f, 0.0f};
  for (float t : {1.0f, 2.0f}) {
    uint64_t rng = 123;
    int counts[3] = {0, 0, 0};
    const int n = 40000;
    for (int i = 0; i < n; ++i)
      ++counts[nibble_sample(l.data(), 3, t, 1.0f, &rng)];
    double w0 = t == 1.0f ? 2.0 : std::sqrt(2.0);
    double expect0 = w0 / (w0 + 2);
    EXPECT_NEAR(counts[0] / double(n), expect0, 0.01) << "t = " << t;
    EXPECT_NEAR(counts[1] / double(n), (1 - expect0) / 2, 0.01) << "t = " << t;
  }
}

TEST(Sample, TopPKeepsTheSmallestNucleus) {
  // p = {0.2, 0.5, 0.3} (logits are log-probabilities).
  std::vector<float> l = {float(std::log(0.2)), float(std::log(0.5)),
                          float(std::log(0.3))};
  uint64_t rng = 9;
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 3000; ++i)
    ++counts[nibble_sample(l.data(), 3, 1.0f, 0.5f, &rng)];
  EXPECT_EQ(counts[1], 3000) << "0.5 alone reaches top_p 0.5";
  counts[0] = counts[1] = counts[2] = 0;
  for (int i = 0; i < 30000; ++i)
    ++counts[nibble_sample(l.data(), 3, 1.0f, 0.75f, &rng)];
  EXPECT_EQ(counts[0], 0) << "the nucleus is {1, 2}";
  EXPECT_NEAR(counts[1] / 30000.0, 0.5 / 0.8, 0.01);
  EXPECT_NEAR(counts[2] / 30000.0, 0.3 / 0.8, 0.01);
}

TEST(Sample, TopPOverFewIds) {
  // p = {0.4, 0.6}, top_p 0.9: the nucleus is both ids.
  std::vector<float> l = {float(std::log(0.4)), float(std::log(0.6))};
  uint64_t rng = 3;
  int counts[2] = {0, 0};
  for (int i = 0; i < 20000; ++i)
    ++counts[nibble_sample(l.data(), 2, 1.0f, 0.9f, &rng)];
  EXPECT_NEAR(counts[0] / 20000.0, 0.4, 0.015);
  // Nearly uniform over three ids with top_p 0.2: the most probable alone
  // (the candidate cut-off exceeds every probability but is capped at it).
  l = {0.0f, float(std::log(0.9)), float(std::log(0.9))};
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(nibble_sample(l.data(), 3, 1.0f, 0.2f, &rng), 0);
}

TEST(Sample, BadArgumentsAreErrors) {
  std::vector<float> l = {0.0f, 1.0f};
  uint64_t rng = 1;
  EXPECT_EQ(nibble_sample(nullptr, 2, 0, 1, &rng), -1);
  EXPECT_EQ(nibble_sample(l.data(), 0, 0, 1, &rng), -1);
  EXPECT_EQ(nibble_sample(l.data(), 2, -1.0f, 1, &rng), -1);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_sample: temperature must be finite and >= 0 (got "
            "-1.000000)");
  EXPECT_EQ(nibble_sample(l.data(), 2, NAN, 1, &rng), -1);
  EXPECT_EQ(nibble_sample(l.data(), 2, 1.0f, 0.0f, &rng), -1);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_sample: top_p must be in (0, 1] (got 0.000000)");
  EXPECT_EQ(nibble_sample(l.data(), 2, 1.0f, 1.5f, &rng), -1);
  EXPECT_EQ(nibble_sample(l.data(), 2, 1.0f, 1.0f, nullptr), -1);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_sample: temperature > 0 needs an rng_state");
  std::vector<float> nans(3, NAN);
  EXPECT_EQ(nibble_sample(nans.data(), 3, 0, 1, nullptr), -1);
  EXPECT_EQ(std::string(nibble_last_error()),
            "nibble_sample: all 3 logits are NaN");
}

} // namespace
