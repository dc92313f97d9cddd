//===- quant-run.cpp - Run a compiled bundle ------------------------------===//
//
//   quant-run BUNDLE generate --prompt TEXT [--max-tokens N] [--temperature T]
//                             [--top-p P] [--seed S] [--threads N] [--json]
//   quant-run BUNDLE perplexity TEXT [--first-token N] [--max-tokens N]
//                             [--context L] [--json]
//   quant-run BUNDLE card [--json]
//   quant-run BUNDLE bench [--prompt-tokens N] [--decode-tokens N]
//                          [--repeat R] [--json]
//
// Uses only the runtime's C API (libnibble_runtime.so): no MLIR, no LLVM,
// nothing is compiled. docs/runtime.md describes each command; errors are
// "quant-run: PATH: what" on stderr with exit code 1.
//
//===----------------------------------------------------------------------===//

#include "nibble/Bundle/Bundle.h"
#include "nibble/Runtime/nibble_runtime.h"
#include "nibble/Support/File.h"
#include "nibble/Support/Hash.h"
#include "nibble/Support/Progress.h"
#include "nibble/Support/Strings.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <tuple>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

const char *kUsage =
    "usage: quant-run BUNDLE COMMAND [options]\n"
    "  generate --prompt TEXT [--max-tokens N=64] [--temperature T=0]\n"
    "           [--top-p P=1] [--seed S=0] [--threads N=1] [--json]\n"
    "  perplexity TEXT [--first-token N] [--max-tokens N=16384] [--context L]\n"
    "           [--threads N=1] [--json]\n"
    "  card [--json]\n"
    "  bench [--prompt-tokens N=64] [--decode-tokens N=64] [--repeat R=3]\n"
    "        [--threads N=1] [--write-card] [--json]\n"
    "  eval --reference FLOAT_BUNDLE [--text FILE] [--workload FILE.jsonl]\n"
    "       [--first-token N] [--max-tokens N=4096] [--threads N=1]\n"
    "       [--plot FILE.svg] [--write-card] [--json]\n"
    "  --threads: workers for the large matmuls (0: one per hardware "
    "thread)\n";

/// A failure reported as "quant-run: MESSAGE" with exit code 1.
struct Failure {
  std::string message;
};
[[noreturn]] void fail(std::string message) {
  throw Failure{std::move(message)};
}
/// A command-line mistake: the message, then the usage text.
struct UsageError {
  std::string message;
};
[[noreturn]] void usage(std::string message) {
  throw UsageError{std::move(message)};
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
double rate(int64_t tokens, double s) { return s > 0 ? double(tokens) / s : 0; }

/// --json output: one indented object; invalid UTF-8 (a path, a piece of
/// generated text) is replaced rather than thrown on.
void printJson(const json &j) {
  std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

std::string fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}

//===----------------------------------------------------------------------===//
// Arguments
//===----------------------------------------------------------------------===//

struct Args {
  std::string bundle, command;
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  bool json = false;
  bool writeCard = false;
  std::string commandLine; ///< as typed, for the card

  bool has(const std::string &name) const { return options.count(name) != 0; }

  int64_t integer(const std::string &name, int64_t fallback, int64_t min,
                  int64_t max = INT64_MAX) const {
    auto it = options.find(name);
    if (it == options.end())
      return fallback;
    const std::string &text = it->second;
    errno = 0;
    char *end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end || errno == ERANGE || v < min || v > max)
      usage("--" + name + ": expected an integer" +
            (max == INT64_MAX ? " >= " + std::to_string(min)
                              : " in [" + std::to_string(min) + ", " +
                                    std::to_string(max) + "]") +
            ", got \"" + text + "\"");
    return v;
  }
  uint64_t unsignedInteger(const std::string &name, uint64_t fallback) const {
    auto it = options.find(name);
    if (it == options.end())
      return fallback;
    const std::string &text = it->second;
    errno = 0;
    char *end = nullptr;
    unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || text[0] == '-' || *end || errno == ERANGE)
      usage("--" + name + ": expected an integer in [0, 2^64), got \"" + text +
            "\"");
    return v;
  }
  float real(const std::string &name, float fallback, float min,
             float max) const {
    auto it = options.find(name);
    if (it == options.end())
      return fallback;
    const std::string &text = it->second;
    char *end = nullptr;
    float v = std::strtof(text.c_str(), &end);
    if (text.empty() || *end || !(v >= min && v <= max))
      usage("--" + name + ": expected a number in [" + fixed(min, 1) + ", " +
            fixed(max, 1) + "], got \"" + text + "\"");
    return v;
  }
};

/// Options each command takes (besides --json), and its positional count.
struct CommandSpec {
  const char *name;
  std::vector<std::string> options;
  size_t positional;
};
const CommandSpec kCommands[] = {
    {"generate",
     {"prompt", "max-tokens", "temperature", "top-p", "seed", "threads"},
     0},
    {"perplexity", {"first-token", "max-tokens", "context", "threads"}, 1},
    {"card", {}, 0},
    {"bench", {"prompt-tokens", "decode-tokens", "repeat", "threads"}, 0},
    {"eval",
     {"reference", "text", "workload", "first-token", "max-tokens", "threads",
      "plot"},
     0},
};

Args parseArgs(int argc, char **argv) {
  Args a;
  a.commandLine = "quant-run";
  for (int i = 1; i < argc; ++i)
    a.commandLine += std::string(" ") + argv[i];
  if (argc < 3)
    usage(argc < 2 ? "missing BUNDLE and COMMAND" : "missing COMMAND");
  a.bundle = argv[1];
  a.command = argv[2];
  const CommandSpec *spec = nullptr;
  for (const CommandSpec &c : kCommands)
    if (a.command == c.name)
      spec = &c;
  if (!spec)
    usage("unknown command \"" + a.command +
          "\" (expected generate, perplexity, card, bench or eval)");
  for (int i = 3; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      a.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool inlineValue = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inlineValue = true;
    }
    if (name == "json") {
      if (inlineValue)
        usage("--json takes no value");
      a.json = true;
      continue;
    }
    if (name == "write-card") {
      if (inlineValue)
        usage("--write-card takes no value");
      if (a.command != "eval" && a.command != "bench")
        usage(a.command + ": --write-card is for eval and bench");
      a.writeCard = true;
      continue;
    }
    if (std::find(spec->options.begin(), spec->options.end(), name) ==
        spec->options.end())
      usage(a.command + ": unknown option --" + name);
    if (!inlineValue) {
      if (i + 1 >= argc)
        usage("--" + name + " needs a value");
      value = argv[++i];
    }
    if (a.options.count(name))
      usage("--" + name + " given twice");
    a.options[name] = value;
  }
  if (a.positional.size() != spec->positional)
    usage(a.command + ": expected " +
          (spec->positional ? std::string("one TEXT file")
                            : std::string("no positional arguments")) +
          ", got " + std::to_string(a.positional.size()) +
          (a.positional.empty() ? "" : " (\"" + a.positional[0] + "\")"));
  return a;
}

//===----------------------------------------------------------------------===//
// C API wrappers
//===----------------------------------------------------------------------===//

[[noreturn]] void failRuntime() { fail(nibble_last_error()); }

struct Bundle {
  nibble_bundle *handle;
  int32_t vocab;
  int64_t context;
  int32_t bos, eos;
  json manifest;

  explicit Bundle(const std::string &path) {
    handle = nibble_bundle_open(path.c_str());
    if (!handle)
      failRuntime();
    vocab = nibble_bundle_vocab(handle);
    context = nibble_bundle_context(handle);
    bos = nibble_bundle_bos(handle);
    eos = nibble_bundle_eos(handle);
    manifest = json::parse(nibble_bundle_manifest(handle));
  }
  ~Bundle() { nibble_bundle_close(handle); }

  std::vector<int32_t> tokenize(const std::string &text, bool addBos) const {
    int64_t n =
        nibble_tokenize(handle, text.data(), text.size(), addBos, nullptr, 0);
    if (n < 0)
      failRuntime();
    std::vector<int32_t> ids(static_cast<size_t>(n));
    if (n && nibble_tokenize(handle, text.data(), text.size(), addBos,
                             ids.data(), ids.size()) != n)
      failRuntime();
    return ids;
  }
  std::string detokenize(const std::vector<int32_t> &ids) const {
    char *s = nibble_detokenize(handle, ids.data(), ids.size());
    if (!s)
      failRuntime();
    std::string text(s);
    nibble_free_string(s);
    return text;
  }
};

struct Session {
  nibble_session *handle;
  Session(const Bundle &b, int threads) {
    handle = nibble_session_create(b.handle, threads);
    if (!handle)
      failRuntime();
  }
  ~Session() { nibble_session_free(handle); }
  void prefill(const std::vector<int32_t> &ids, float *all = nullptr) {
    if (nibble_session_prefill(handle, ids.data(), ids.size(), all) != 0)
      failRuntime();
  }
  void decode(int32_t id) {
    if (nibble_session_decode(handle, id) != 0)
      failRuntime();
  }
  const float *logits() const {
    const float *l = nibble_session_logits(handle);
    if (!l)
      failRuntime();
    return l;
  }
  void reset() { nibble_session_reset(handle); }
};

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    fail(path + ": cannot read: " + std::strerror(errno));
  return ss.str();
}

std::string baseName(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// The manifest value at a dotted path, or nullptr.
const json *lookup(const json &root, const std::string &path) {
  const json *node = &root;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string key = path.substr(start, dot - start);
    if (!node->is_object() || !node->contains(key))
      return nullptr;
    node = &(*node)[key];
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  return node;
}

//===----------------------------------------------------------------------===//
// generate
//===----------------------------------------------------------------------===//

int generate(const Args &args) {
  if (!args.has("prompt"))
    usage("generate: --prompt TEXT is required");
  const std::string prompt = args.options.at("prompt");
  const int64_t maxTokens = args.integer("max-tokens", 64, 0);
  const float temperature = args.real("temperature", 0.0f, 0.0f, 100.0f);
  const float topP = args.real("top-p", 1.0f, 0.0f, 1.0f);
  if (!(topP > 0))
    usage("--top-p: expected a number in (0, 1], got \"" +
          args.options.at("top-p") + "\"");
  const uint64_t seed = args.unsignedInteger("seed", 0);
  const int threads = int(args.integer("threads", 1, 0, 1024));

  Bundle b(args.bundle);
  Session s(b, threads);
  std::vector<int32_t> promptIds = b.tokenize(prompt, true);
  if (promptIds.empty())
    fail(args.bundle + ": the prompt encodes to no tokens (the tokenizer has "
                       "no BOS and the prompt is empty)");
  if (int64_t(promptIds.size()) > b.context)
    fail(args.bundle + ": the prompt is " + std::to_string(promptIds.size()) +
         " tokens, the bundle's context is " + std::to_string(b.context));

  auto t0 = Clock::now();
  s.prefill(promptIds);
  auto t1 = Clock::now();

  // Stream text: print what the ids decode to beyond what is printed, as
  // long as earlier text does not change (it cannot for these tokenizers
  // except mid-way through a multi-byte character).
  std::vector<int32_t> all = promptIds, generated;
  std::string printed = b.detokenize(promptIds);
  if (!args.json) {
    std::cout << printed << std::flush;
  }
  const std::string promptText = printed;
  uint64_t rng = seed;
  std::string stop = "max-tokens";
  double decodeSeconds = 0;
  int64_t decodeCalls = 0;
  while (int64_t(generated.size()) < maxTokens) {
    int32_t next = nibble_sample(s.logits(), b.vocab, temperature, topP, &rng);
    if (next < 0)
      failRuntime();
    if (next == b.eos) {
      stop = "eos";
      break;
    }
    generated.push_back(next);
    all.push_back(next);
    if (!args.json) {
      std::string text = b.detokenize(all);
      if (text.size() > printed.size() &&
          text.compare(0, printed.size(), printed) == 0) {
        std::cout << text.substr(printed.size()) << std::flush;
        printed = std::move(text);
      }
    }
    if (int64_t(generated.size()) == maxTokens)
      break;
    if (nibble_session_position(s.handle) >= b.context) {
      stop = "context";
      break;
    }
    auto d0 = Clock::now();
    s.decode(next);
    decodeSeconds += seconds(d0, Clock::now());
    ++decodeCalls;
  }
  std::string full = b.detokenize(all);
  std::string continuation = full.compare(0, promptText.size(), promptText) == 0
                                 ? full.substr(promptText.size())
                                 : b.detokenize(generated);
  const double prefillSeconds = seconds(t0, t1);
  const int64_t promptCount = int64_t(promptIds.size());
  if (args.json) {
    json out;
    out["bundle"] = args.bundle;
    out["prompt"] = prompt;
    out["prompt_tokens"] = promptIds;
    out["tokens"] = generated;
    out["text"] = continuation;
    out["stop"] = stop;
    out["temperature"] = temperature;
    out["top_p"] = topP;
    out["seed"] = seed;
    out["prefill"] = {{"tokens", promptCount},
                      {"seconds", prefillSeconds},
                      {"tokens_per_second", rate(promptCount, prefillSeconds)}};
    out["decode"] = {{"tokens", decodeCalls},
                     {"seconds", decodeSeconds},
                     {"tokens_per_second", rate(decodeCalls, decodeSeconds)}};
    printJson(out);
    return 0;
  }
  if (full != printed) // text that could not be streamed
    std::cout << full.substr(std::min(printed.size(), full.size()));
  std::cout << "\n\nprefill: " << promptCount << " tokens, "
            << fixed(rate(promptCount, prefillSeconds), 1)
            << " tokens/s; decode: " << decodeCalls << " tokens, "
            << fixed(rate(decodeCalls, decodeSeconds), 1)
            << " tokens/s; stop: " << stop << "\n";
  return 0;
}

//===----------------------------------------------------------------------===//
// perplexity
//===----------------------------------------------------------------------===//

/// The calibration slice recorded in the card (docs/runtime.md).
struct Calibration {
  std::string text, sha256;
  std::optional<int64_t> first, end;
};
std::optional<Calibration> cardCalibration(const json &manifest) {
  const json *c = lookup(manifest, "card.calibration");
  if (!c || !c->is_object())
    return std::nullopt;
  Calibration cal;
  if (c->contains("text") && (*c)["text"].is_string())
    cal.text = (*c)["text"].get<std::string>();
  if (c->contains("sha256") && (*c)["sha256"].is_string())
    cal.sha256 = (*c)["sha256"].get<std::string>();
  if (c->contains("first_token") && (*c)["first_token"].is_number_integer())
    cal.first = (*c)["first_token"].get<int64_t>();
  if (c->contains("end_token") && (*c)["end_token"].is_number_integer())
    cal.end = (*c)["end_token"].get<int64_t>();
  return cal;
}

std::string slice(int64_t a, int64_t b) {
  return "tokens [" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

/// The tokens a scoring window of `window` tokens runs: BOS, t0 .. t(L-2)
/// (predicting t0 .. t(L-1)); without BOS (bos < 0), t0 .. t(L-2)
/// (predicting t1 .. t(L-1)). `input` has the run length.
void windowInput(const int32_t *win, int64_t window, int32_t bos,
                 std::vector<int32_t> &input) {
  if (bos >= 0) {
    input[0] = bos;
    std::copy(win, win + window - 1, input.begin() + 1);
  } else {
    std::copy(win, win + window - 1, input.begin());
  }
}

/// log(sum_v exp(row[v])) in double, shifted by the maximum.
double logSumExp(const float *row, int32_t vocab) {
  double mx = -INFINITY;
  for (int32_t v = 0; v < vocab; ++v)
    mx = std::max(mx, double(row[v]));
  double sum = 0;
  for (int32_t v = 0; v < vocab; ++v)
    sum += std::exp(double(row[v]) - mx);
  return mx + std::log(sum);
}

int perplexity(const Args &args) {
  const std::string textPath = args.positional[0];
  const int64_t maxTokens = args.integer("max-tokens", 16384, 1);
  Bundle b(args.bundle);
  const bool bos = b.bos >= 0;
  // A window of L tokens uses L positions with BOS prepended (the last
  // token is scored, never run) -- but calibration ran BOS + L tokens, so
  // the same limit as calibration applies: L + 1 <= context.
  const int64_t maxWindow = bos ? b.context - 1 : b.context;
  if (maxWindow < (bos ? 1 : 2))
    fail(args.bundle + ": the bundle's context of " +
         std::to_string(b.context) + " is too short to score a token");
  const int64_t window =
      args.integer("context", std::min<int64_t>(maxWindow, 256), bos ? 1 : 2);
  if (window > maxWindow)
    usage("--context " + std::to_string(window) + ": a window of " +
          std::to_string(window) + " tokens" + (bos ? " plus BOS" : "") +
          " needs " + std::to_string(bos ? window + 1 : window) +
          " positions, the bundle's context is " + std::to_string(b.context));

  const std::string text = readText(textPath);
  const std::string sha = nibble::support::sha256Hex(text.data(), text.size());
  std::vector<int32_t> tokens = b.tokenize(text, false);
  const int64_t total = int64_t(tokens.size());

  std::optional<Calibration> cal = cardCalibration(b.manifest);
  const bool sameText = cal && !cal->sha256.empty() && cal->sha256 == sha;
  const bool calSlice = sameText && cal->first && cal->end;
  int64_t first = args.integer("first-token", calSlice ? *cal->end : 0, 0);
  if (first >= total)
    fail(textPath + ": --first-token " + std::to_string(first) +
         " is not before the end of the text (" + std::to_string(total) +
         " tokens)" +
         (calSlice && !args.has("first-token")
              ? " (the default skips the calibration slice " +
                    slice(*cal->first, *cal->end) + ")"
              : ""));
  const int64_t end = std::min(total, first + std::min(maxTokens, total));
  const int64_t windows = (end - first) / window;
  if (windows == 0)
    fail(textPath + ": " + slice(first, end) +
         " hold fewer than one window of " + std::to_string(window) +
         " tokens");
  const int64_t scoredEnd = first + windows * window;
  if (calSlice && first < *cal->end && *cal->first < scoredEnd)
    fail(textPath + ": " + slice(first, scoredEnd) +
         " overlap the calibration slice " + slice(*cal->first, *cal->end) +
         " of this text (recorded in the bundle's card); evaluate on tokens "
         "from " +
         std::to_string(*cal->end) + " on (the default)" +
         (*cal->first > 0 ? " or before " + std::to_string(*cal->first)
                          : std::string()));

  Session s(b, int(args.integer("threads", 1, 0, 1024)));
  const int64_t runTokens = bos ? window : window - 1;
  std::vector<float> logits(size_t(runTokens) * size_t(b.vocab));
  std::vector<int32_t> input(static_cast<size_t>(runTokens));
  double nll = 0;
  int64_t scored = 0;
  nibble::support::Progress progress("perplexity", windows,
                                     args.json || !::isatty(2));
  auto t0 = Clock::now();
  for (int64_t w = 0; w < windows; ++w) {
    const int32_t *win = tokens.data() + first + w * window;
    windowInput(win, window, b.bos, input);
    s.reset();
    s.prefill(input, logits.data());
    for (int64_t i = 0; i < runTokens; ++i) {
      const float *row = logits.data() + i * b.vocab;
      const int32_t target = win[bos ? i : i + 1];
      nll += logSumExp(row, b.vocab) - double(row[target]);
      ++scored;
    }
    progress.update(w + 1);
  }
  progress.finish();
  const double elapsed = seconds(t0, Clock::now());
  const double meanNll = nll / double(scored);
  const double ppl = std::exp(meanNll);

  std::string calText;
  json calJson = nullptr;
  if (!cal) {
    calText = "not recorded in the bundle's card";
  } else if (calSlice) {
    calText = slice(*cal->first, *cal->end) + " of this text; disjoint from " +
              slice(first, scoredEnd);
    calJson = {{"text", cal->text},
               {"first_token", *cal->first},
               {"end_token", *cal->end},
               {"same_text", true},
               {"disjoint", true}};
  } else if (sameText) {
    calText = "this text, slice not recorded (disjointness not checked)";
    calJson = {{"text", cal->text}, {"same_text", true}, {"disjoint", nullptr}};
  } else {
    calText = (cal->text.empty() ? std::string("another text")
                                 : "\"" + cal->text + "\"") +
              (cal->sha256.empty() ? " (no sha256 recorded)"
                                   : " (sha256 " + cal->sha256 + ")") +
              ", not this one";
    calJson = {
        {"text", cal->text},
        {"sha256", cal->sha256.empty() ? json(nullptr) : json(cal->sha256)},
        {"same_text", false}};
  }

  if (args.json) {
    json out;
    out["bundle"] = args.bundle;
    out["text"] = baseName(textPath);
    out["path"] = textPath;
    out["sha256"] = sha;
    out["text_tokens"] = total;
    out["first_token"] = first;
    out["end_token"] = scoredEnd;
    out["windows"] = windows;
    out["window_tokens"] = window;
    out["bos"] = bos ? json(b.bos) : json(nullptr);
    out["tokens_scored"] = scored;
    out["nll_sum"] = nll;
    out["mean_nll"] = meanNll;
    out["perplexity"] = ppl;
    out["calibration"] = calJson;
    out["seconds"] = elapsed;
    printJson(out);
    return 0;
  }
  std::cout << "bundle: " << args.bundle << "\n"
            << "text: " << baseName(textPath) << " (sha256 " << sha << ", "
            << total << " tokens with the bundle's tokenizer, no BOS)\n"
            << "slice: " << slice(first, scoredEnd) << ": " << windows
            << " windows x " << window << " tokens";
  if (end > scoredEnd)
    std::cout << " (the last " << end - scoredEnd << " tokens of "
              << slice(first, end) << " fill no window)";
  std::cout << "\n";
  if (bos)
    std::cout << "method: each window from an empty cache with BOS (id "
              << b.bos
              << ") prepended; every window token scored, predicted "
                 "from BOS and the tokens before it\n";
  else
    std::cout << "method: each window from an empty cache (the tokenizer has "
                 "no BOS); every token after the first scored, predicted from "
                 "the tokens before it\n";
  std::cout << "calibration: " << calText << "\n"
            << "scored: " << scored << " tokens, mean NLL " << fixed(meanNll, 6)
            << " nats, " << fixed(elapsed, 2) << " s\n"
            << "perplexity: " << fixed(ppl, 6) << "\n";
  return 0;
}

//===----------------------------------------------------------------------===//
// card
//===----------------------------------------------------------------------===//

std::string scalar(const json &v) {
  if (v.is_null())
    return "not measured";
  if (v.is_string())
    return v.get<std::string>();
  return v.dump();
}

/// `key: value` lines, nested objects indented; arrays of scalars joined.
void printTree(std::ostream &os, const std::string &key, const json &v,
               int indent) {
  std::string pad(size_t(indent), ' ');
  if (v.is_object()) {
    os << pad << key << ":";
    if (v.empty()) {
      os << " not measured\n";
      return;
    }
    os << "\n";
    for (const auto &[k, child] : v.items())
      printTree(os, k, child, indent + 2);
    return;
  }
  if (v.is_array()) {
    bool scalars = std::all_of(v.begin(), v.end(), [](const json &e) {
      return !e.is_object() && !e.is_array();
    });
    if (scalars) {
      std::string line;
      for (const json &e : v)
        line += (line.empty() ? "" : ", ") + scalar(e);
      os << pad << key << ": " << (v.empty() ? "none" : line) << "\n";
      return;
    }
    os << pad << key << ":\n";
    for (size_t i = 0; i < v.size(); ++i) {
      // A flat object (e.g. one tensor of the card) reads best on one line.
      const json &e = v[i];
      bool flat =
          e.is_object() && std::all_of(e.begin(), e.end(), [](const json &x) {
            return !x.is_object() && !x.is_array();
          });
      if (!flat) {
        printTree(os, "[" + std::to_string(i) + "]", e, indent + 2);
        continue;
      }
      std::string line;
      for (const auto &[k, x] : e.items())
        line += (line.empty() ? "" : ", ") + k + ": " + scalar(x);
      os << pad << "  - " << line << "\n";
    }
    return;
  }
  os << pad << key << ": " << scalar(v) << "\n";
}

/// Bytes of weights one decoded token reads on a CUDA bundle: every tensor
/// of the manifest's `gpu` section (linears' codes and scales, norms, the
/// lm_head) except the embedding and RoPE tables, of which it reads one row
/// each. Nullopt for a bundle without a `gpu` section (the CPU manifest
/// does not break its weights down).
std::optional<int64_t> gpuWeightBytesPerToken(const json &manifest) {
  if (!manifest.contains("gpu") || !manifest["gpu"].is_object())
    return std::nullopt;
  const json &gpu = manifest["gpu"];
  int64_t total = 0;
  // Sums every {"bytes": N} below `j`.
  std::function<void(const json &)> add = [&](const json &j) {
    if (j.is_object()) {
      if (j.contains("bytes") && j["bytes"].is_number_integer())
        total += j["bytes"].get<int64_t>();
      for (const auto &[key, value] : j.items())
        if (key != "bytes")
          add(value);
    } else if (j.is_array()) {
      for (const json &v : j)
        add(v);
    }
  };
  add(gpu.value("layers", json::array()));
  add(gpu.value("lm_head", json::object()));
  const json &tensors = gpu.value("tensors", json::object());
  const json &model = manifest.value("model", json::object());
  const int64_t vocab = model.value("vocab", int64_t(0)),
                context = model.value("max_seq_len", int64_t(0));
  for (const auto &[name, t] : tensors.items()) {
    if (!t.is_object() || !t.contains("bytes"))
      continue;
    const int64_t bytes = t["bytes"].get<int64_t>();
    if (name == "embed" && vocab > 0)
      total += bytes / vocab;
    else if ((name == "rope_cos" || name == "rope_sin") && context > 0)
      total += bytes / context;
    else
      total += bytes;
  }
  return total;
}

int card(const Args &args) {
  Bundle b(args.bundle);
  const json &m = b.manifest;
  if (args.json) {
    printJson(m);
    return 0;
  }
  auto field = [&](const std::string &path) {
    const json *v = lookup(m, path);
    return v ? scalar(*v) : std::string("not measured");
  };
  std::ostream &os = std::cout;
  os << "bundle: " << args.bundle << "\n"
     << "compiler: " << field("compiler") << "\n"
     << "model: " << field("model.name") << " (from " << field("model.source")
     << ")\n";
  for (const char *k : {"dim", "hidden_dim", "layers", "heads", "kv_heads",
                        "head_dim", "vocab", "max_seq_len"})
    os << "  " << k << ": " << field(std::string("model.") + k) << "\n";
  os << "target: " << field("target.spec") << " (" << field("target.triple")
     << ", cpu " << field("target.cpu") << ")\n";
  const json *features = lookup(m, "target.features");
  printTree(os, "features", features ? *features : json(nullptr), 2);
  os << "entry: decode " << field("entry.decode") << ", prefill "
     << field("entry.prefill") << " (chunk " << field("entry.prefill_chunk")
     << "), context " << field("entry.context") << "\n";
  // Per cache: one element per (layer, position, kv head, dim), 4 bytes as
  // f32 or one code byte plus an f32 scale per (layer, position, kv head).
  const int64_t rows = m.at("model").at("layers").get<int64_t>() * b.context *
                       m.at("model").at("kv_heads").get<int64_t>();
  const int64_t headDim = m.at("model").at("head_dim").get<int64_t>();
  const bool quantKV = field("kv_cache.dtype") != "f32";
  const int64_t cacheBytes = 2 * rows * (quantKV ? headDim + 4 : 4 * headDim);
  os << "kv cache: " << field("kv_cache.dtype") << ", "
     << field("kv_cache.layout") << " (" << cacheBytes
     << " bytes per session, K and V)\n"
     << "weights: " << field("weights.bytes") << " bytes";
  if (std::optional<int64_t> perToken = gpuWeightBytesPerToken(m))
    os << " (" << *perToken << " read per decoded token)";
  os << "\n"
     << "tokenizer: " << field("tokenizer.kind") << ", vocab "
     << field("tokenizer.vocab") << ", bos " << field("tokenizer.bos")
     << ", eos " << field("tokenizer.eos") << "\n";
  // The card: its usual sections first (absent ones read "not measured"),
  // then any others in the order the compiler wrote them.
  const json *cardJson = lookup(m, "card");
  os << "card:\n";
  const char *usual[] = {"weights", "activations", "calibration", "evaluation"};
  for (const char *k : usual) {
    const json *v = cardJson && cardJson->is_object() && cardJson->contains(k)
                        ? &(*cardJson)[k]
                        : nullptr;
    printTree(os, k, v ? *v : json(nullptr), 2);
  }
  if (cardJson && cardJson->is_object())
    for (const auto &[k, v] : cardJson->items())
      if (std::find_if(std::begin(usual), std::end(usual), [&](const char *u) {
            return k == u;
          }) == std::end(usual))
        printTree(os, k, v, 2);
  return 0;
}

//===----------------------------------------------------------------------===//
// bench
//===----------------------------------------------------------------------===//

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void writeCardFields(const std::string &path, const json &fields);
json machineDescription();

int bench(const Args &args) {
  const int64_t promptTokens = args.integer("prompt-tokens", 64, 1);
  const int64_t decodeTokens = args.integer("decode-tokens", 64, 0);
  const int64_t repeat = args.integer("repeat", 3, 1);
  Bundle b(args.bundle);
  if (promptTokens + decodeTokens > b.context)
    fail(args.bundle + ": --prompt-tokens " + std::to_string(promptTokens) +
         " + --decode-tokens " + std::to_string(decodeTokens) +
         " exceed the bundle's context of " + std::to_string(b.context));
  // A fixed pseudo-random prompt (BOS first when there is one): the
  // measurement does not depend on the text.
  std::vector<int32_t> prompt(static_cast<size_t>(promptTokens));
  uint64_t state = 1;
  for (int64_t i = 0; i < promptTokens; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    prompt[size_t(i)] = int32_t((state >> 33) % uint64_t(b.vocab));
  }
  if (b.bos >= 0)
    prompt[0] = b.bos;
  Session s(b, int(args.integer("threads", 1, 0, 1024)));
  std::vector<double> prefillRates, decodeRates;
  for (int64_t r = 0; r < repeat; ++r) {
    s.reset();
    auto t0 = Clock::now();
    s.prefill(prompt);
    auto t1 = Clock::now();
    for (int64_t i = 0; i < decodeTokens; ++i)
      s.decode(nibble_sample(s.logits(), b.vocab, 0, 1, nullptr));
    auto t2 = Clock::now();
    prefillRates.push_back(rate(promptTokens, seconds(t0, t1)));
    decodeRates.push_back(rate(decodeTokens, seconds(t1, t2)));
  }
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  const int64_t rssBytes = int64_t(usage.ru_maxrss) * 1024;
  // What a decoded token streams, for comparing with a bandwidth bound: the
  // weights (CUDA bundles, whose manifest breaks them down), and the f32 KV
  // cache at the mean decoded position (K and V of every layer).
  const std::optional<int64_t> weightBytes =
      gpuWeightBytesPerToken(b.manifest);
  const json &model = b.manifest.value("model", json::object());
  const double meanPosition =
      double(promptTokens) + double(std::max<int64_t>(decodeTokens - 1, 0)) / 2;
  const double kvBytes = double(model.value("layers", int64_t(0))) * 2 *
                         double(model.value("kv_heads", int64_t(0))) *
                         double(model.value("head_dim", int64_t(0))) * 4 *
                         (meanPosition + 1);
  const double decodeRate = decodeTokens ? median(decodeRates) : 0;
  if (args.writeCard)
    writeCardFields(
        args.bundle,
        {{"speed",
          {{"command", args.commandLine},
           {"machine", machineDescription()},
           {"threads", args.integer("threads", 1, 0, 1024)},
           {"prompt_tokens", promptTokens},
           {"decode_tokens", decodeTokens},
           {"repeat", repeat},
           {"prefill_tokens_per_second", median(prefillRates)},
           {"decode_tokens_per_second",
            decodeTokens ? json(median(decodeRates)) : json(nullptr)},
           {"peak_rss_bytes", rssBytes}}}});
  if (args.json) {
    json out;
    out["bundle"] = args.bundle;
    out["prompt_tokens"] = promptTokens;
    out["decode_tokens"] = decodeTokens;
    out["repeat"] = repeat;
    out["prefill_tokens_per_second"] = {{"median", median(prefillRates)},
                                        {"runs", prefillRates}};
    out["decode_tokens_per_second"] = {
        {"median", decodeTokens ? json(median(decodeRates)) : json(nullptr)},
        {"runs", decodeRates}};
    out["peak_rss_bytes"] = rssBytes;
    out["weight_bytes_per_token"] =
        weightBytes ? json(*weightBytes) : json(nullptr);
    out["kv_cache_bytes_per_token"] = kvBytes;
    printJson(out);
    return 0;
  }
  auto runs = [](const std::vector<double> &v) {
    std::string s;
    for (double x : v)
      s += (s.empty() ? "" : ", ") + fixed(x, 1);
    return s;
  };
  std::cout << "bundle: " << args.bundle << "\n"
            << "prefill: " << promptTokens << " tokens, median "
            << fixed(median(prefillRates), 1) << " tokens/s over " << repeat
            << " runs (" << runs(prefillRates) << ")\n";
  if (decodeTokens)
    std::cout << "decode: " << decodeTokens << " tokens, median "
              << fixed(decodeRate, 1) << " tokens/s ("
              << fixed(1e3 / decodeRate, 3) << " ms/token) over " << repeat
              << " runs (" << runs(decodeRates) << ")\n";
  if (weightBytes) {
    std::cout << "read per decoded token: weights "
              << fixed(double(*weightBytes) / 1e6, 1) << " MB, KV cache "
              << fixed(kvBytes / 1e6, 1) << " MB (mean position)";
    if (decodeTokens)
      std::cout << "; at the median decode rate, "
                << fixed((double(*weightBytes) + kvBytes) * decodeRate / 1e9,
                         1)
                << " GB/s";
    std::cout << "\n";
  }
  std::cout << "peak RSS: " << fixed(double(rssBytes) / (1 << 20), 1)
            << " MiB\n";
  return 0;
}

//===----------------------------------------------------------------------===//
// Writing results into the card
//===----------------------------------------------------------------------===//

using nibble::support::trim;

/// Rewrites `path` with card[key] = value for each entry of `fields`, every
/// other section unchanged (same order and alignment), atomically: a
/// temporary file in the same directory, then a rename.
void writeCardFields(const std::string &path, const json &fields) {
  std::string error;
  auto bundle = nibble::bundle::Bundle::open(path, error);
  if (!bundle)
    fail(error);
  json manifest =
      json::parse(bundle->section("manifest"), nullptr, /*exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_object())
    fail(path + ": section \"manifest\" is not a JSON object");
  for (auto it = fields.begin(); it != fields.end(); ++it)
    manifest["card"][it.key()] = it.value();
  const std::string text =
      manifest.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  nibble::bundle::BundleWriter writer;
  for (const nibble::bundle::SectionInfo &info : bundle->sections()) {
    bool ok = info.name == "manifest"
                  ? writer.add(info.name, text, error, info.alignment)
                  : writer.addView(info.name, bundle->section(info.name), error,
                                   info.alignment);
    if (!ok)
      fail(path + ": " + error);
  }
  if (!writer.write(path, error))
    fail(error);
}

/// This machine, for measured speed: CPU model and hardware threads.
json machineDescription() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown";
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos)
        model = trim(line.substr(colon + 1));
      break;
    }
  return {{"cpu", model},
          {"hardware_threads", int64_t(::sysconf(_SC_NPROCESSORS_ONLN))}};
}

//===----------------------------------------------------------------------===//
// eval
//===----------------------------------------------------------------------===//

std::string xmlEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

/// An SVG bar chart of the card's per-tensor weight error (log scale) and
/// bits per weight, written atomically to `path`.
void writeErrorPlot(const std::string &path, const json &manifest,
                    const std::string &title) {
  const json *tensors = lookup(manifest, "card.weights.tensors");
  std::vector<std::tuple<std::string, double, double>> rows;
  if (tensors && tensors->is_array())
    for (const json &t : *tensors)
      if (t.contains("relative_error") && t["relative_error"].is_number())
        rows.emplace_back(t.value("name", std::string("?")),
                          t["relative_error"].get<double>(),
                          t.value("bits_per_weight", 0.0));
  if (rows.empty())
    fail(path + ": the bundle's card records no per-tensor weight error "
                "(a float bundle, or compiled before quant-compile recorded "
                "it)");
  double lo = 1e300, hi = 0;
  for (auto &[n, e, b] : rows) {
    lo = std::min(lo, std::max(e, 1e-12));
    hi = std::max(hi, std::max(e, 1e-12));
  }
  const double l0 = std::floor(std::log10(lo)), l1 = std::ceil(std::log10(hi));
  const double span = std::max(1.0, l1 - l0);
  const int rowH = 16, left = 330, width = 420, top = 40;
  const int height = top + int(rows.size()) * rowH + 40;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << left + width + 90
      << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
      << "<text x=\"8\" y=\"18\" font-size=\"13\">" << xmlEscape(title)
      << ": relative weight error ||W - Q||^2 / ||W||^2 per tensor (log "
         "scale) and bits per weight</text>\n";
  for (int d = 0; d <= int(span); ++d) {
    double x = left + width * d / span;
    svg << "<line x1=\"" << x << "\" y1=\"" << top - 6 << "\" x2=\"" << x
        << "\" y2=\"" << height - 30 << "\" stroke=\"#ddd\"/>"
        << "<text x=\"" << x - 10 << "\" y=\"" << height - 16 << "\">1e"
        << int(l0) + d << "</text>\n";
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    auto &[name, err, bpw] = rows[i];
    double y = top + double(i) * rowH;
    double w = width * (std::log10(std::max(err, 1e-12)) - l0) / span;
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + 11
        << "\" text-anchor=\"end\">" << xmlEscape(name) << "</text>"
        << "<rect x=\"" << left << "\" y=\"" << y + 2 << "\" width=\""
        << std::max(1.0, w) << "\" height=\"" << rowH - 4
        << "\" fill=\"#4a7bb7\"/>"
        << "<text x=\"" << left + width + 6 << "\" y=\"" << y + 11 << "\">"
        << fixed(bpw, 2) << " b/w</text>\n";
  }
  svg << "</svg>\n";
  const std::string text = svg.str();
  std::string error;
  if (!nibble::support::writeFileAtomic(path, text.data(), text.size(), error))
    fail(error);
}

/// One workload example (a JSONL line).
struct Example {
  int64_t line = 0;
  std::string prompt, expected, match;
  int64_t maxTokens = 16;
};

std::vector<Example> readWorkload(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail(path + ": cannot read: " + std::strerror(errno));
  std::vector<Example> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    const std::string where = path + ":" + std::to_string(n);
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      fail(where + ": expected one JSON object per line");
    Example e;
    e.line = n;
    for (const char *key : {"prompt", "expected"}) {
      if (!j.contains(key) || !j[key].is_string())
        fail(where + ": field \"" + key + "\" must be a string");
    }
    e.prompt = j["prompt"].get<std::string>();
    e.expected = j["expected"].get<std::string>();
    e.match = j.value("match", std::string("contains"));
    if (e.match != "exact" && e.match != "contains" && e.match != "regex")
      fail(where + ": field \"match\" is \"" + e.match +
           "\", expected exact, contains or regex");
    if (e.match == "regex") {
      try {
        std::regex check(e.expected);
      } catch (const std::regex_error &err) {
        fail(where +
             ": field \"expected\" is not a valid regex: " + err.what());
      }
    }
    if (j.contains("max_tokens")) {
      if (!j["max_tokens"].is_number_integer() ||
          j["max_tokens"].get<int64_t>() < 1 ||
          j["max_tokens"].get<int64_t>() > 4096)
        fail(where + ": field \"max_tokens\" must be an integer in [1, 4096]");
      e.maxTokens = j["max_tokens"].get<int64_t>();
    }
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "prompt" && it.key() != "expected" &&
          it.key() != "match" && it.key() != "max_tokens" && it.key() != "id")
        fail(where + ": unknown field \"" + it.key() + "\"");
    out.push_back(std::move(e));
  }
  if (out.empty())
    fail(path + ": no examples");
  return out;
}

bool matches(const Example &e, const std::string &out) {
  if (e.match == "exact")
    return trim(out) == trim(e.expected);
  if (e.match == "contains")
    return out.find(e.expected) != std::string::npos;
  return std::regex_search(out, std::regex(e.expected));
}

/// Greedy continuation of `prompt` (BOS first), at most `n` tokens or EOS.
std::string greedy(const Bundle &b, Session &s, const std::string &prompt,
                   int64_t n) {
  std::vector<int32_t> ids = b.tokenize(prompt, true);
  if (int64_t(ids.size()) + n > b.context)
    n = std::max<int64_t>(0, b.context - int64_t(ids.size()));
  s.reset();
  s.prefill(ids);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i) {
    int32_t t = nibble_sample(s.logits(), b.vocab, 0.0f, 1.0f, nullptr);
    if (t < 0)
      failRuntime();
    if (t == b.eos)
      break;
    out.push_back(t);
    if (i + 1 < n)
      s.decode(t);
  }
  return b.detokenize(out);
}

/// Token-level comparison of two bundles on a text: both bundles' log
/// probabilities of every scored position.
struct TextComparison {
  int64_t first = 0, end = 0, window = 0, scored = 0;
  double nllQ = 0, nllRef = 0, kl = 0, klMax = 0;
  int64_t top1Agree = 0;
};

TextComparison compareOnText(const Bundle &q, const Bundle &ref,
                             const std::vector<int32_t> &tokens, int64_t first,
                             int64_t maxTokens, int threads) {
  TextComparison r;
  const bool bos = q.bos >= 0;
  r.window =
      std::min<int64_t>(std::min(q.context, ref.context) - (bos ? 1 : 0), 256);
  const int64_t total = int64_t(tokens.size());
  const int64_t end = std::min(total, first + maxTokens);
  const int64_t windows = (end - first) / r.window;
  if (windows <= 0)
    fail("eval: " + slice(first, end) + " hold fewer than one window of " +
         std::to_string(r.window) + " tokens");
  r.first = first;
  r.end = first + windows * r.window;
  const int64_t run = bos ? r.window : r.window - 1;
  std::vector<float> lq(size_t(run) * size_t(q.vocab)),
      lr(size_t(run) * size_t(q.vocab));
  std::vector<int32_t> input(static_cast<size_t>(run), 0);
  Session sq(q, threads), sr(ref, threads);
  std::vector<double> pq(size_t(q.vocab)), pr(size_t(q.vocab));
  auto logSoftmax = [&](const float *row, std::vector<double> &out) {
    const double lse = logSumExp(row, q.vocab);
    for (int32_t v = 0; v < q.vocab; ++v)
      out[size_t(v)] = double(row[v]) - lse;
  };
  for (int64_t w = 0; w < windows; ++w) {
    const int32_t *win = tokens.data() + first + w * r.window;
    windowInput(win, r.window, q.bos, input);
    sq.reset();
    sr.reset();
    sq.prefill(input, lq.data());
    sr.prefill(input, lr.data());
    for (int64_t i = 0; i < run; ++i) {
      const float *rowQ = lq.data() + i * q.vocab;
      const float *rowR = lr.data() + i * q.vocab;
      logSoftmax(rowQ, pq);
      logSoftmax(rowR, pr);
      const int32_t target = win[bos ? i : i + 1];
      r.nllQ -= pq[size_t(target)];
      r.nllRef -= pr[size_t(target)];
      double kl = 0;
      int32_t aq = 0, ar = 0;
      for (int32_t v = 0; v < q.vocab; ++v) {
        kl += std::exp(pr[size_t(v)]) * (pr[size_t(v)] - pq[size_t(v)]);
        if (rowQ[v] > rowQ[aq])
          aq = v;
        if (rowR[v] > rowR[ar])
          ar = v;
      }
      r.kl += kl;
      r.klMax = std::max(r.klMax, kl);
      r.top1Agree += aq == ar;
      ++r.scored;
    }
  }
  return r;
}

std::string mdEscape(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

int eval(const Args &args) {
  if (!args.has("reference"))
    usage("eval: --reference FLOAT_BUNDLE is required");
  if (!args.has("text") && !args.has("workload") && !args.has("plot"))
    usage("eval: pass --text FILE, --workload FILE.jsonl, --plot FILE.svg or "
          "a combination");
  const int threads = int(args.integer("threads", 1, 0, 1024));
  Bundle q(args.bundle);
  const std::string refPath = args.options.at("reference");
  Bundle ref(refPath);
  if (q.vocab != ref.vocab || q.bos != ref.bos || q.eos != ref.eos)
    fail(refPath + ": its tokenizer (vocab " + std::to_string(ref.vocab) +
         ") is not the one of " + args.bundle + " (vocab " +
         std::to_string(q.vocab) + "): compare bundles of one model");
  json out;
  out["bundle"] = args.bundle;
  out["reference"] = refPath;

  if (args.has("text")) {
    const std::string textPath = args.options.at("text");
    const std::string text = readText(textPath);
    const std::string sha =
        nibble::support::sha256Hex(text.data(), text.size());
    std::vector<int32_t> tokens = q.tokenize(text, false);
    if (tokens != ref.tokenize(text, false))
      fail(refPath + ": tokenizes " + textPath + " differently from " +
           args.bundle + ": compare bundles of one model");
    // The evaluated slice starts after any calibration slice of this text
    // recorded in either card, and may not overlap one.
    int64_t first = 0;
    std::vector<std::pair<int64_t, int64_t>> calSlices;
    for (const Bundle *b : {&q, &ref}) {
      std::optional<Calibration> cal = cardCalibration(b->manifest);
      if (cal && cal->sha256 == sha && cal->first && cal->end) {
        calSlices.push_back({*cal->first, *cal->end});
        first = std::max(first, *cal->end);
      }
    }
    first = args.integer("first-token", first, 0);
    TextComparison c = compareOnText(
        q, ref, tokens, first, args.integer("max-tokens", 4096, 1), threads);
    for (auto [a, e] : calSlices)
      if (c.first < e && a < c.end)
        fail(textPath + ": " + slice(c.first, c.end) +
             " overlap the calibration slice " + slice(a, e) +
             " recorded in a card; evaluate after it");
    const double n = double(c.scored);
    out["text"] = {{"name", baseName(textPath)},
                   {"sha256", sha},
                   {"first_token", c.first},
                   {"end_token", c.end},
                   {"window_tokens", c.window},
                   {"tokens_scored", c.scored},
                   {"perplexity", std::exp(c.nllQ / n)},
                   {"reference_perplexity", std::exp(c.nllRef / n)},
                   {"kl_mean", c.kl / n},
                   {"kl_max", c.klMax},
                   {"top1_agreement", double(c.top1Agree) / n}};
  }

  if (args.has("workload")) {
    const std::string wlPath = args.options.at("workload");
    std::string wlText = readText(wlPath);
    std::vector<Example> examples = readWorkload(wlPath);
    Session sq(q, threads), sr(ref, threads);
    json rows = json::array();
    int64_t passQ = 0, passR = 0, differ = 0;
    for (const Example &e : examples) {
      std::string oq = greedy(q, sq, e.prompt, e.maxTokens);
      std::string orf = greedy(ref, sr, e.prompt, e.maxTokens);
      bool pq = matches(e, oq), pr = matches(e, orf);
      passQ += pq;
      passR += pr;
      differ += oq != orf;
      rows.push_back({{"line", e.line},
                      {"prompt", e.prompt},
                      {"expected", e.expected},
                      {"match", e.match},
                      {"output", oq},
                      {"reference_output", orf},
                      {"pass", pq},
                      {"reference_pass", pr}});
    }
    const double n = double(examples.size());
    out["workload"] = {
        {"name", baseName(wlPath)},
        {"sha256", nibble::support::sha256Hex(wlText.data(), wlText.size())},
        {"examples", int64_t(examples.size())},
        {"pass_rate", double(passQ) / n},
        {"reference_pass_rate", double(passR) / n},
        {"outputs_differing", differ},
        {"results", rows}};
  }

  if (args.has("plot")) {
    writeErrorPlot(args.options.at("plot"), q.manifest, baseName(args.bundle));
    out["plot"] = args.options.at("plot");
  }
  if (args.writeCard) {
    json evaluation = {{"command", args.commandLine},
                       {"reference", baseName(refPath)}};
    if (out.contains("text"))
      evaluation["text"] = out["text"];
    if (out.contains("workload")) {
      json w = out["workload"];
      w.erase("results"); // the per-example outputs stay in the report
      evaluation["workload"] = w;
    }
    writeCardFields(args.bundle, {{"evaluation", evaluation}});
  }
  if (args.json) {
    printJson(out);
    return 0;
  }
  std::cout << "# eval: " << baseName(args.bundle) << " vs reference "
            << baseName(refPath) << "\n\n";
  if (out.contains("text")) {
    const json &t = out["text"];
    std::cout << "## Text: " << t["name"].get<std::string>() << ", "
              << slice(t["first_token"].get<int64_t>(),
                       t["end_token"].get<int64_t>())
              << " (" << t["tokens_scored"].get<int64_t>()
              << " tokens scored, windows of "
              << t["window_tokens"].get<int64_t>() << " with BOS)\n\n"
              << "| metric | " << baseName(args.bundle) << " | "
              << baseName(refPath) << " |\n| --- | ---: | ---: |\n"
              << "| perplexity | " << fixed(t["perplexity"].get<double>(), 4)
              << " | " << fixed(t["reference_perplexity"].get<double>(), 4)
              << " |\n"
              << "| KL(reference ‖ bundle), mean nats/token | "
              << fixed(t["kl_mean"].get<double>(), 6) << " | — |\n"
              << "| KL, max over tokens | "
              << fixed(t["kl_max"].get<double>(), 6) << " | — |\n"
              << "| top-1 agreement with the reference | "
              << fixed(100 * t["top1_agreement"].get<double>(), 2)
              << "% | — |\n\n";
  }
  if (out.contains("workload")) {
    const json &w = out["workload"];
    std::cout << "## Workload: " << w["name"].get<std::string>() << " ("
              << w["examples"].get<int64_t>() << " examples, greedy)\n\n"
              << "| | " << baseName(args.bundle) << " | " << baseName(refPath)
              << " |\n| --- | ---: | ---: |\n"
              << "| pass rate | "
              << fixed(100 * w["pass_rate"].get<double>(), 1) << "% | "
              << fixed(100 * w["reference_pass_rate"].get<double>(), 1)
              << "% |\n\n"
              << "Examples whose output differs ("
              << w["outputs_differing"].get<int64_t>() << "):\n\n"
              << "| line | prompt | expected | bundle | reference |\n"
              << "| ---: | --- | --- | --- | --- |\n";
    for (const json &r : w["results"]) {
      if (r["output"] == r["reference_output"])
        continue;
      auto cell = [](const json &o, bool pass) {
        return (pass ? "✓ " : "✗ ") + mdEscape(o.get<std::string>());
      };
      std::cout << "| " << r["line"].get<int64_t>() << " | "
                << mdEscape(r["prompt"].get<std::string>()) << " | "
                << mdEscape(r["expected"].get<std::string>()) << " | "
                << cell(r["output"], r["pass"].get<bool>()) << " | "
                << cell(r["reference_output"], r["reference_pass"].get<bool>())
                << " |\n";
    }
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc == 2 && (std::strcmp(argv[1], "-h") == 0 ||
                    std::strcmp(argv[1], "--help") == 0)) {
    std::cout << kUsage;
    return 0;
  }
  try {
    Args args = parseArgs(argc, argv);
    if (args.command == "generate")
      return generate(args);
    if (args.command == "perplexity")
      return perplexity(args);
    if (args.command == "card")
      return card(args);
    if (args.command == "eval")
      return eval(args);
    return bench(args);
  } catch (const UsageError &e) {
    std::cerr << "quant-run: " << e.message << "\n" << kUsage;
  } catch (const Failure &e) {
    std::cerr << "quant-run: " << e.message << "\n";
  } catch (const std::exception &e) {
    std::cerr << "quant-run: internal error: " << e.what() << "\n";
  }
  return 1;
}
