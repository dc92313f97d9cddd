//===- QuantRunTest.cpp - The quant-run tool on toy bundles ---------------===//

#include "nibble/Runtime/nibble_runtime.h"
#include "nibble/Support/Hash.h"

#include "ToyBundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

using namespace nibble::runtime::test;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

struct Result {
  int status = -1; ///< exit code; -1 when it did not exit normally
  std::string out, err;
};

class QuantRunTest : public ::testing::Test {
protected:
  TempDir dir;
  ToyBundle toy;
  std::string bundle;

  void SetUp() override { bundle = toy.write(dir.path); }

  /// Runs quant-run with `args`, capturing stdout and stderr.
  Result run(const std::vector<std::string> &args) {
    std::string outPath = dir.path + "/stdout", errPath = dir.path + "/stderr";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, outPath.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, errPath.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> all = {QUANT_RUN_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char *> argv;
    for (std::string &a : all)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    Result r;
    int rc = posix_spawn(&pid, QUANT_RUN_PATH, &actions, nullptr, argv.data(),
                         environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << QUANT_RUN_PATH;
      return r;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = readBytes(outPath);
    r.err = readBytes(errPath);
    return r;
  }

  json runJson(const std::vector<std::string> &args) {
    Result r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }
};

const int32_t V = toyVocab();

//===----------------------------------------------------------------------===//
// card
//===----------------------------------------------------------------------===//

TEST_F(QuantRunTest, CardReadsTheManifest) {
  Result r = run({bundle, "card"});
  ASSERT_EQ(r.status, 0) << r.err;
  const int64_t cache =
      2 * 4 * kToyLayers * kToyContext * kToyKvHeads * kToyHeadDim;
  for (const std::string &line : std::vector<std::string>{
           "bundle: " + bundle, std::string("compiler: toy (runtime tests)"),
        std::string("model: toy (from test/unit/Runtime/ToyModel.c)"),
        std::string("  layers: 2"), "  vocab: " + std::to_string(V),
        "target: native (" + hostTriple() + ", cpu toy-cpu)",
        std::string("  features: none"),
        std::string("entry: decode _mlir_ciface_nibble_decode, prefill "
                    "_mlir_ciface_nibble_prefill (chunk 4), context 32"),
        "kv cache: f32, layers x context x kv_heads x head_dim (" +
            std::to_string(cache) + " bytes per session, K and V)",
        std::string("weights: 4 bytes"),
        "tokenizer: llama2c, vocab " + std::to_string(V) + ", bos 1, eos 2",
        std::string("card:\n  weights:\n    method: none (toy)\n    format: "
                    "int8\n    tensors:\n      - name: w0, type: int8\n"
                    "      - name: w1, type: f32\n  activations: not measured\n"
                    "  calibration:\n    text: none\n  evaluation: not "
                    "measured")})
    EXPECT_THAT(r.out, HasSubstr(line + "\n"));

  json m = toyManifest();
  m["model"].erase("dim");
  m.erase("card");
  toy.setManifest(m);
  toy.write(dir.path);
  r = run({bundle, "card"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("  dim: not measured\n"));
  EXPECT_THAT(r.out, HasSubstr("card:\n  weights: not measured\n  "
                               "activations: not measured\n  calibration: "
                               "not measured\n  evaluation: not measured\n"));
}

TEST_F(QuantRunTest, CardJsonIsTheManifest) {
  json j = runJson({bundle, "card", "--json"});
  EXPECT_EQ(j, toyManifest());
}

//===----------------------------------------------------------------------===//
// generate
//===----------------------------------------------------------------------===//

TEST_F(QuantRunTest, GenerateGreedy) {
  // " the" is piece V - 5; the toy model predicts token + 1.
  json j = runJson({bundle, "generate", "--prompt", "the", "--max-tokens",
                    "3", "--json"});
  EXPECT_EQ(j["prompt_tokens"], json({1, V - 5}));
  EXPECT_EQ(j["tokens"], json({V - 4, V - 3, V - 2}));
  EXPECT_EQ(j["text"], "in t a");
  EXPECT_EQ(j["stop"], "max-tokens");
  EXPECT_EQ(j["prefill"]["tokens"], 2);
  EXPECT_EQ(j["decode"]["tokens"], 2);
  EXPECT_GT(j["decode"]["tokens_per_second"].get<double>(), 0);

  Result r = run({bundle, "generate", "--prompt=the", "--max-tokens=3"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("thein t a\n\nprefill: 2 tokens, "));
  EXPECT_THAT(r.out, HasSubstr(" tokens/s; decode: 2 tokens, "));
  EXPECT_THAT(r.out, HasSubstr(" tokens/s; stop: max-tokens\n"));
}

TEST_F(QuantRunTest, GenerateStopsAtEos) {
  // " and" is the last piece: then <unk> (0), BOS (1), EOS (2).
  json j = runJson({bundle, "generate", "--prompt", "and", "--json"});
  EXPECT_EQ(j["prompt_tokens"], json({1, V - 1}));
  EXPECT_EQ(j["tokens"], json({0, 1}));
  EXPECT_EQ(j["stop"], "eos");
}

TEST_F(QuantRunTest, GenerateSamplesDeterministicallyFromTheSeed) {
  auto tokens = [&](const std::string &seed) {
    return runJson({bundle, "generate", "--prompt", "hello", "--temperature",
                    "1", "--top-p", "0.95", "--seed", seed, "--max-tokens",
                    "20", "--json"})["tokens"];
  };
  json a = tokens("5");
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a, tokens("5"));
  EXPECT_NE(a, tokens("6"));
}

//===----------------------------------------------------------------------===//
// perplexity
//===----------------------------------------------------------------------===//

/// Perplexity by the documented method, through the C API.
double expectedPerplexity(const std::string &bundlePath,
                          const std::vector<int32_t> &tokens, int64_t first,
                          int64_t windows, int64_t window) {
  nibble_bundle *b = nibble_bundle_open(bundlePath.c_str());
  nibble_session *s = nibble_session_create(b, 0);
  double nll = 0;
  std::vector<float> logits(size_t(window * V));
  for (int64_t w = 0; w < windows; ++w) {
    std::vector<int32_t> in = {1};
    const int32_t *win = tokens.data() + first + w * window;
    in.insert(in.end(), win, win + window - 1);
    nibble_session_reset(s);
    EXPECT_EQ(nibble_session_prefill(s, in.data(), in.size(), logits.data()),
              0);
    for (int64_t i = 0; i < window; ++i) {
      const float *row = logits.data() + i * V;
      double sum = 0;
      for (int32_t v = 0; v < V; ++v)
        sum += std::exp(double(row[v]));
      nll += std::log(sum) - row[win[i]];
    }
  }
  nibble_session_free(s);
  nibble_bundle_close(b);
  return std::exp(nll / double(windows * window));
}

TEST_F(QuantRunTest, PerplexityScoresWindowsWithBos) {
  std::string text;
  for (int i = 0; i < 12; ++i)
    text += "the band and the hand in the sand " + std::to_string(i) + "\n";
  std::string textPath = dir.path + "/eval.txt";
  writeBytes(textPath, text);
  nibble_bundle *b = nibble_bundle_open(bundle.c_str());
  ASSERT_TRUE(b);
  std::vector<int32_t> tokens(512);
  tokens.resize(size_t(nibble_tokenize(b, text.data(), text.size(), 0,
                                       tokens.data(), tokens.size())));
  nibble_bundle_close(b);
  const int64_t n = int64_t(tokens.size());
  ASSERT_GT(n, 40);

  json j = runJson({bundle, "perplexity", textPath, "--context", "8",
                    "--first-token", "3", "--max-tokens", "30", "--json"});
  EXPECT_EQ(j["text"], "eval.txt");
  EXPECT_EQ(j["sha256"], nibble::support::sha256Hex(text.data(), text.size()));
  EXPECT_EQ(j["text_tokens"], n);
  EXPECT_EQ(j["first_token"], 3);
  EXPECT_EQ(j["end_token"], 27);
  EXPECT_EQ(j["windows"], 3);
  EXPECT_EQ(j["window_tokens"], 8);
  EXPECT_EQ(j["bos"], 1);
  EXPECT_EQ(j["tokens_scored"], 24);
  EXPECT_EQ(j["calibration"]["same_text"], false);
  const double want = expectedPerplexity(bundle, tokens, 3, 3, 8);
  EXPECT_NEAR(j["perplexity"].get<double>(), want, want * 1e-9);

  // Text: the method, then the value on the last line.
  Result r = run({bundle, "perplexity", textPath, "--context", "8",
                  "--first-token", "3", "--max-tokens", "30"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("slice: tokens [3, 27): 3 windows x 8 tokens "
                               "(the last 6 tokens of tokens [3, 33) fill no "
                               "window)\n"));
  EXPECT_THAT(r.out, HasSubstr("method: each window from an empty cache with "
                               "BOS (id 1) prepended; every window token "
                               "scored"));
  EXPECT_THAT(r.out, HasSubstr("calibration: \"none\" (no sha256 recorded), "
                               "not this one\n"));
  size_t lastLine = r.out.rfind("perplexity: ");
  ASSERT_NE(lastLine, std::string::npos);
  EXPECT_EQ(r.out.substr(lastLine).back(), '\n');
  double printed = std::stod(r.out.substr(lastLine + 12));
  EXPECT_NEAR(printed, want, want * 1e-5);

  // The default window: min(context - 1, 256) = 31.
  j = runJson({bundle, "perplexity", textPath, "--json"});
  EXPECT_EQ(j["window_tokens"], 31);
  EXPECT_EQ(j["windows"], n / 31);
  EXPECT_EQ(j["first_token"], 0);
}

TEST_F(QuantRunTest, PerplexityStaysOffTheCalibrationSlice) {
  std::string text;
  for (int i = 0; i < 12; ++i)
    text += "the band and the hand in the sand " + std::to_string(i) + "\n";
  std::string textPath = dir.path + "/eval.txt";
  writeBytes(textPath, text);
  json m = toyManifest();
  m["card"]["calibration"] = {
      {"text", "eval.txt"},
      {"sha256", nibble::support::sha256Hex(text.data(), text.size())},
      {"first_token", 0},
      {"end_token", 16}};
  toy.setManifest(m);
  toy.write(dir.path);

  json j = runJson({bundle, "perplexity", textPath, "--context", "8",
                    "--json"});
  EXPECT_EQ(j["first_token"], 16) << "the default starts after calibration";
  EXPECT_EQ(j["calibration"]["disjoint"], true);
  Result r = run({bundle, "perplexity", textPath, "--context", "8"});
  EXPECT_THAT(r.out, HasSubstr("calibration: tokens [0, 16) of this text; "
                               "disjoint from tokens [16, "));

  r = run({bundle, "perplexity", textPath, "--context", "8", "--first-token",
           "8"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, StartsWith("quant-run: " + textPath +
                                ": tokens [8, "));
  EXPECT_THAT(r.err, HasSubstr(") overlap the calibration slice tokens [0, "
                               "16) of this text (recorded in the bundle's "
                               "card); evaluate on tokens from 16 on (the "
                               "default)\n"));
  EXPECT_EQ(r.out, "");
  // An explicit slice starting where calibration ends is fine.
  j = runJson({bundle, "perplexity", textPath, "--context", "8",
               "--first-token", "16", "--max-tokens", "8", "--json"});
  EXPECT_EQ(j["end_token"], 24);
}

TEST_F(QuantRunTest, PerplexityErrors) {
  std::string textPath = dir.path + "/short.txt";
  writeBytes(textPath, "the band");
  Result r = run({bundle, "perplexity", textPath, "--context", "8"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, StartsWith("quant-run: " + textPath + ": tokens [0, "));
  EXPECT_THAT(r.err, HasSubstr("hold fewer than one window of 8 tokens"));
  r = run({bundle, "perplexity", textPath, "--context", "32"});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, StartsWith("quant-run: --context 32: a window of 32 "
                                "tokens plus BOS needs 33 positions, the "
                                "bundle's context is 32\n"));
  r = run({bundle, "perplexity", dir.path + "/missing.txt"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quant-run: " + dir.path +
                       "/missing.txt: cannot read: No such file or "
                       "directory\n");
}

//===----------------------------------------------------------------------===//
// bench
//===----------------------------------------------------------------------===//

TEST_F(QuantRunTest, BenchReportsRatesAndMemory) {
  json j = runJson({bundle, "bench", "--prompt-tokens", "9", "--decode-tokens",
                    "5", "--repeat", "3", "--json"});
  EXPECT_EQ(j["prompt_tokens"], 9);
  EXPECT_EQ(j["decode_tokens"], 5);
  EXPECT_EQ(j["prefill_tokens_per_second"]["runs"].size(), 3u);
  EXPECT_GT(j["prefill_tokens_per_second"]["median"].get<double>(), 0);
  EXPECT_GT(j["decode_tokens_per_second"]["median"].get<double>(), 0);
  EXPECT_GT(j["peak_rss_bytes"].get<int64_t>(), 0);
  Result r = run({bundle, "bench", "--repeat", "1", "--prompt-tokens", "30",
                  "--decode-tokens", "3"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quant-run: " + bundle +
                       ": --prompt-tokens 30 + --decode-tokens 3 exceed the "
                       "bundle's context of 32\n");
  r = run({bundle, "bench", "--repeat", "1", "--prompt-tokens", "8",
           "--decode-tokens", "2"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("prefill: 8 tokens, median "));
  EXPECT_THAT(r.out, HasSubstr("decode: 2 tokens, median "));
  EXPECT_THAT(r.out, HasSubstr("peak RSS: "));
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//
// eval
//===----------------------------------------------------------------------===//

// A bundle against a byte-identical copy of itself: no divergence, the same
// perplexity, the same greedy outputs; workload matching follows the
// example's rule (the expected strings come from the bundle's own greedy
// output, so the test does not hard-code the toy model's text).
TEST_F(QuantRunTest, EvalAgainstAnIdenticalBundle) {
  std::string copy = dir.path + "/copy.nbl";
  writeBytes(copy, readBytes(bundle));
  std::string text;
  for (int i = 0; i < 12; ++i)
    text += "the band and the hand in the sand " + std::to_string(i) + "\n";
  std::string textPath = dir.path + "/eval.txt";
  writeBytes(textPath, text);
  json g = runJson({bundle, "generate", "--prompt", "the", "--max-tokens", "3",
                    "--json"});
  const std::string out = g["text"].get<std::string>();
  ASSERT_FALSE(out.empty());
  std::string wl = dir.path + "/w.jsonl";
  writeBytes(wl,
             json({{"prompt", "the"}, {"expected", out}, {"match", "exact"},
                   {"max_tokens", 3}})
                     .dump() +
                 "\n" +
                 json({{"prompt", "the"},
                       {"expected", out.substr(0, 1)},
                       {"max_tokens", 3}})
                     .dump() +
                 "\n\n" +
                 json({{"prompt", "the"}, {"expected", ".+"},
                       {"match", "regex"}, {"max_tokens", 3}})
                     .dump() +
                 "\n" +
                 json({{"prompt", "the"}, {"expected", "zzz never"},
                       {"max_tokens", 3}})
                     .dump() +
                 "\n");
  json j = runJson({bundle, "eval", "--reference", copy, "--text", textPath,
                    "--workload", wl, "--json"});
  const json &t = j["text"];
  EXPECT_GT(t["tokens_scored"].get<int64_t>(), 0);
  EXPECT_EQ(t["kl_mean"].get<double>(), 0.0);
  EXPECT_EQ(t["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(t["perplexity"].get<double>(),
            t["reference_perplexity"].get<double>());
  const json &w = j["workload"];
  EXPECT_EQ(w["examples"].get<int64_t>(), 4);
  EXPECT_EQ(w["pass_rate"].get<double>(), 0.75);
  EXPECT_EQ(w["reference_pass_rate"].get<double>(), 0.75);
  EXPECT_EQ(w["outputs_differing"].get<int64_t>(), 0);
  EXPECT_EQ(w["results"][3]["line"].get<int64_t>(), 5) << "blank lines count";
  EXPECT_FALSE(w["results"][3]["pass"].get<bool>());
  // The markdown report has the side-by-side tables.
  Result r = run({bundle, "eval", "--reference", copy, "--text", textPath,
                  "--workload", wl});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("| top-1 agreement with the reference | 100.00% |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| pass rate | 75.0% | 75.0% |"), std::string::npos);

  // --write-card stores the results in the bundle (which still opens and
  // runs), with the command that produced them; bench stores its speed
  // with the machine.
  const std::string before = readBytes(bundle);
  runJson({bundle, "eval", "--reference", copy, "--text", textPath,
           "--workload", wl, "--write-card", "--json"});
  EXPECT_NE(readBytes(bundle), before);
  runJson({bundle, "bench", "--repeat", "1", "--prompt-tokens", "4",
           "--decode-tokens", "2", "--write-card", "--json"});
  json card = runJson({bundle, "card", "--json"})["card"];
  const json &e = card["evaluation"];
  EXPECT_EQ(e["reference"].get<std::string>(), "copy.nbl");
  EXPECT_EQ(e["text"]["kl_mean"].get<double>(), 0.0);
  EXPECT_EQ(e["workload"]["pass_rate"].get<double>(), 0.75);
  EXPECT_FALSE(e["workload"].contains("results"));
  EXPECT_NE(e["command"].get<std::string>().find("eval --reference"),
            std::string::npos);
  const json &sp = card["speed"];
  EXPECT_GT(sp["prefill_tokens_per_second"].get<double>(), 0.0);
  EXPECT_FALSE(sp["machine"]["cpu"].get<std::string>().empty());
  EXPECT_EQ(sp["prompt_tokens"].get<int64_t>(), 4);
  Result bad = run({bundle, "generate", "--prompt", "the", "--write-card"});
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.err, StartsWith("quant-run: generate: --write-card is for "
                                "eval and bench"));
}

// --plot draws the card's per-tensor weight error (log scale) and bits per
// weight; a card without them is an error, and no file is left.
TEST_F(QuantRunTest, EvalPlotsTheCardsWeightErrors) {
  std::string svg = dir.path + "/err.svg";
  Result r = run({bundle, "eval", "--reference", bundle, "--plot", svg});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err, StartsWith("quant-run: " + svg +
                                ": the bundle's card records no per-tensor "
                                "weight error"));
  EXPECT_TRUE(readBytes(svg).empty());
  json m = toyManifest();
  m["card"]["weights"] = {
      {"tensors",
       {{{"name", "a.weight"}, {"relative_error", 0.02},
         {"bits_per_weight", 4.5}},
        {{"name", "b<c>.weight"}, {"relative_error", 3e-5},
         {"bits_per_weight", 8.25}}}}};
  ToyBundle t = toy;
  t.setManifest(m);
  std::string plotted = t.write(dir.path, "plotted.nbl");
  r = run({plotted, "eval", "--reference", plotted, "--plot", svg});
  EXPECT_EQ(r.status, 0) << r.err;
  std::string out = readBytes(svg);
  EXPECT_EQ(out.rfind("<svg", 0), 0u) << out;
  EXPECT_NE(out.find(">a.weight</text>"), std::string::npos);
  EXPECT_NE(out.find(">b&lt;c&gt;.weight</text>"), std::string::npos);
  EXPECT_NE(out.find(">4.50 b/w</text>"), std::string::npos);
  EXPECT_NE(out.find(">1e-5</text>"), std::string::npos) << "axis from 1e-5";
  EXPECT_NE(out.find(">1e-1</text>"), std::string::npos) << "axis to 1e-1";
}

TEST_F(QuantRunTest, EvalWorkloadErrorsNameTheLine) {
  std::string wl = dir.path + "/bad.jsonl";
  struct Case {
    std::string line, message;
  };
  const Case cases[] = {
      {"{\"prompt\": \"a\"", "expected one JSON object per line"},
      {"{\"prompt\": 1, \"expected\": \"b\"}",
       "field \"prompt\" must be a string"},
      {"{\"prompt\": \"a\", \"expected\": \"b\", \"match\": \"fuzzy\"}",
       "field \"match\" is \"fuzzy\", expected exact, contains or regex"},
      {"{\"prompt\": \"a\", \"expected\": \"(\", \"match\": \"regex\"}",
       "field \"expected\" is not a valid regex"},
      {"{\"prompt\": \"a\", \"expected\": \"b\", \"max_tokens\": 0}",
       "field \"max_tokens\" must be an integer in [1, 4096]"},
      {"{\"prompt\": \"a\", \"expected\": \"b\", \"extra\": 1}",
       "unknown field \"extra\""},
  };
  for (const Case &c : cases) {
    writeBytes(wl, "{\"prompt\": \"a\", \"expected\": \"b\"}\n" + c.line + "\n");
    Result r = run({bundle, "eval", "--reference", bundle, "--workload", wl});
    EXPECT_EQ(r.status, 1);
    EXPECT_THAT(r.err, StartsWith("quant-run: " + wl + ":2: " + c.message))
        << r.err;
  }
  Result r = run({bundle, "eval", "--workload", wl});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.err,
              StartsWith("quant-run: eval: --reference FLOAT_BUNDLE is required"));
}

//===----------------------------------------------------------------------===//

TEST_F(QuantRunTest, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{}, "missing BUNDLE and COMMAND"},
      {{bundle}, "missing COMMAND"},
      {{bundle, "run"},
       "unknown command \"run\" (expected generate, perplexity, card, bench "
       "or eval)"},
      {{bundle, "generate"}, "generate: --prompt TEXT is required"},
      {{bundle, "generate", "--prompt"}, "--prompt needs a value"},
      {{bundle, "generate", "--prompt", "a", "--context", "3"},
       "generate: unknown option --context"},
      {{bundle, "generate", "--prompt", "a", "--max-tokens", "ten"},
       "--max-tokens: expected an integer >= 0, got \"ten\""},
      {{bundle, "generate", "--prompt", "a", "--top-p", "0"},
       "--top-p: expected a number in (0, 1], got \"0\""},
      {{bundle, "generate", "--prompt", "a", "--threads", "5000"},
       "--threads: expected an integer in [0, 1024], got \"5000\""},
      {{bundle, "generate", "--prompt", "a", "--seed", "-1"},
       "--seed: expected an integer in [0, 2^64), got \"-1\""},
      {{bundle, "generate", "--prompt", "a", "--prompt", "b"},
       "--prompt given twice"},
      {{bundle, "card", "extra"},
       "card: expected no positional arguments, got 1 (\"extra\")"},
      {{bundle, "perplexity"},
       "perplexity: expected one TEXT file, got 0"},
      {{bundle, "card", "--json=yes"}, "--json takes no value"},
  };
  for (const Case &c : cases) {
    Result r = run(c.args);
    EXPECT_EQ(r.status, 1);
    EXPECT_THAT(r.err, StartsWith("quant-run: " + c.message + "\nusage: "))
        << r.err;
  }
  Result r = run({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.out, StartsWith("usage: quant-run BUNDLE COMMAND"));
}

TEST_F(QuantRunTest, BundleErrorsNameTheFile) {
  Result r = run({dir.path + "/nope.nbl", "card"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quant-run: " + dir.path +
                       "/nope.nbl: cannot open: No such file or directory\n");
  json m = toyManifest();
  m["target"]["triple"] = foreignTriple();
  toy.setManifest(m);
  toy.write(dir.path);
  r = run({bundle, "generate", "--prompt", "a"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "quant-run: " + bundle + ": compiled for " +
                       foreignTriple() + ", this machine is " +
                       nibble::runtime::hostArch() + "\n");
  EXPECT_EQ(r.out, "");
}

} // namespace
