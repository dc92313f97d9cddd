//===- Synthetic.cpp - The project's deterministic default model ----------===//

#include "nibble/Model/Synthetic.h"
#include "nibble/Support/File.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <vector>

namespace nibble::model {

namespace {

/// splitmix64: a fixed generator, so the bytes do not depend on the
/// standard library's distributions.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [-a, a).
  float uniform(float a) {
    return a * (float(next() >> 40) / float(1 << 23) - 1.0f);
  }
};

const char *const kWords[] = {
    "the",      "a",       "and",     "to",     "was",    "he",      "she",
    "it",       "of",      "in",      "little", "girl",   "boy",     "day",
    "time",     "once",    "upon",    "there",  "they",   "her",     "his",
    "with",     "said",    "on",      "big",    "play",   "happy",   "mom",
    "dog",      "cat",     "friend",  "sun",    "tree",   "ball",    "park",
    "saw",      "went",    "had",     "very",   "not",    "but",     "so",
    "you",      "we",      "see",     "look",   "go",     "is",      "are",
    "be",       "one",     "two",     "red",    "blue",   "green",   "small",
    "fun",      "toy",     "car",     "bird",   "fish",   "run",     "jump",
    "home",     "house",   "box",     "book",   "cake",   "love",    "like",
    "want",     "help",    "find",    "make",   "made",   "came",    "took",
    "gave",     "got",     "ran",     "sat",    "sky",    "rain",    "snow",
    "water",    "sea",     "boat",    "hat",    "bed",    "door",    "room",
    "garden",   "flower",  "bug",     "bear",   "lion",   "duck",    "frog",
    "cow",      "pig",     "hen",     "egg",    "milk",   "bread",   "apple",
    "pie",      "cookie",  "candy",   "sweet",  "soft",   "loud",    "quiet",
    "fast",     "slow",    "hot",     "cold",   "new",    "old",     "good",
    "bad",      "sad",     "mad",     "kind",   "nice",   "brave",   "shy",
    "smart",    "funny",   "silly",   "tired",  "hungry", "sleep",   "wake",
    "eat",      "drink",   "sing",    "dance",  "laugh",  "cry",     "smile",
    "hug",      "kiss",    "walk",    "climb",  "swim",   "fly",     "hide",
    "seek",     "share",   "give",    "take",   "open",   "close",   "pull",
    "push",     "throw",   "catch",   "kick",   "build",  "draw",    "paint",
    "read",     "write",   "count",   "learn",  "think",  "know",    "feel",
    "hear",     "hold",    "keep",    "lost",   "found",  "sorry",   "thank",
    "please",   "yes",     "no",      "up",     "down",   "out",     "into",
    "over",     "under",   "near",    "far",    "then",   "when",    "after",
    "before",   "every",   "all",     "some",   "many",   "more",    "most",
    "other",    "same",    "again",   "also",   "just",   "now",     "soon",
    "today",    "night",   "morning", "lily",   "tom",    "ben",     "sue",
    "max",      "amy",     "sam",     "tim",    "anna",   "jack",    "mia",
    "leo",      "zoe",     "dad",     "baby",   "sister", "brother", "family",
    "school",   "teacher", "class",   "game",   "song",   "story",   "dream",
    "star",     "moon",    "cloud",   "wind",   "hill",   "road",    "bridge",
    "river",    "forest",  "king",    "queen",  "dragon", "magic",   "castle",
    "treasure", "map",     "key",     "shell",  "rock",   "stick",   "leaf",
    "grass",    "mud",     "puddle",  "kite",   "swing",  "slide",   "sand",
    "wave",     "shop",    "store",   "bag",    "coin",   "gift",    "party",
    "candle",   "light",   "dark"};

void put32(std::vector<uint8_t> &out, const void *p) {
  const uint8_t *b = static_cast<const uint8_t *>(p);
  out.insert(out.end(), b, b + 4);
}

} // namespace

namespace {

/// Why the llama2.c format cannot hold `s`, or "" when it can.
std::string shapeProblem(const SyntheticShape &s) {
  if (s.dim % s.heads)
    return "dim " + std::to_string(s.dim) + " is not a multiple of heads " +
           std::to_string(s.heads);
  if (s.heads % s.kvHeads)
    return "heads " + std::to_string(s.heads) +
           " is not a multiple of kv-heads " + std::to_string(s.kvHeads);
  if ((s.dim / s.heads) % 2)
    return "the head width " + std::to_string(s.dim / s.heads) +
           " is odd (RoPE rotates pairs)";
  if (s.vocab < 259)
    return "vocab " + std::to_string(s.vocab) +
           " is under 259 (3 special and 256 byte pieces)";
  return "";
}

} // namespace

bool parseSyntheticShape(const std::string &spec, SyntheticShape &shape,
                         std::string &error) {
  SyntheticShape s;
  size_t start = 0;
  bool first = true;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos)
      end = spec.size();
    const std::string part = spec.substr(start, end - start);
    start = end + 1;
    if (first) {
      first = false;
      if (part == "llama2-7b") {
        s = SyntheticShape{4096, 11008, 32, 32, 32, 32000, 4096};
        continue;
      }
      if (part == "default")
        continue;
      if (part.find('=') == std::string::npos) {
        error = "synthetic shape \"" + spec + "\": unknown name \"" + part +
                "\" (expected default or llama2-7b)";
        return false;
      }
    }
    const size_t eq = part.find('=');
    const std::string key = part.substr(0, eq);
    int32_t *field = key == "dim"        ? &s.dim
                     : key == "hidden"   ? &s.hidden
                     : key == "layers"   ? &s.layers
                     : key == "heads"    ? &s.heads
                     : key == "kv-heads" ? &s.kvHeads
                     : key == "vocab"    ? &s.vocab
                     : key == "context"  ? &s.context
                                         : nullptr;
    if (eq == std::string::npos || !field) {
      error = "synthetic shape \"" + spec + "\": \"" + part +
              "\" is not KEY=VALUE with KEY one of dim, hidden, layers, "
              "heads, kv-heads, vocab, context";
      return false;
    }
    const std::string value = part.substr(eq + 1);
    char *endp = nullptr;
    errno = 0;
    long v = std::strtol(value.c_str(), &endp, 10);
    if (value.empty() || *endp || errno || v < 1 || v > (1L << 20)) {
      error = "synthetic shape \"" + spec + "\": " + key + " \"" + value +
              "\" is not an integer in [1, 1048576]";
      return false;
    }
    *field = int32_t(v);
  }
  if (std::string why = shapeProblem(s); !why.empty()) {
    error = "synthetic shape \"" + spec + "\": " + why;
    return false;
  }
  shape = s;
  return true;
}

uint64_t syntheticModelBytes(const SyntheticShape &s) {
  const uint64_t dim = uint64_t(s.dim), kvDim = dim / uint64_t(s.heads) *
                                                uint64_t(s.kvHeads);
  const uint64_t perLayer = 2 * dim + 2 * dim * dim + 2 * kvDim * dim +
                            3 * uint64_t(s.hidden) * dim;
  const uint64_t floats = uint64_t(s.vocab) * dim + uint64_t(s.layers) * perLayer +
                          dim + uint64_t(s.context) * (dim / uint64_t(s.heads));
  return 7 * 4 + floats * 4;
}

bool writeSyntheticModel(const std::string &dir, uint64_t seed,
                         std::string &error) {
  return writeSyntheticModel(dir, seed, SyntheticShape{}, error);
}

bool writeSyntheticModel(const std::string &dir, uint64_t seed,
                         const SyntheticShape &shape, std::string &error) {
  const int32_t dim = shape.dim, hidden = shape.hidden, layers = shape.layers,
                heads = shape.heads, kvHeads = shape.kvHeads,
                vocab = shape.vocab, seqLen = shape.context;
  if (std::string why = shapeProblem(shape); !why.empty()) {
    error = "synthetic shape: " + why;
    return false;
  }
  const int32_t headDim = dim / heads, kvDim = kvHeads * headDim;
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    error = dir + ": cannot create the directory: " + std::strerror(errno);
    return false;
  }
  // --- the checkpoint (llama2.c legacy layout, tied embeddings) ---------
  // Filled in place: at LLM widths the file is gigabytes.
  const int32_t header[7] = {dim,     hidden, layers, heads,
                             kvHeads, vocab,  seqLen};
  std::vector<uint8_t> model(syntheticModelBytes(shape));
  std::memcpy(model.data(), header, sizeof header);
  float *w = reinterpret_cast<float *>(model.data() + sizeof header);
  Rng rng{seed};
  auto matrix = [&](int64_t rows, int64_t cols) {
    float a = std::sqrt(3.0f / float(cols)); // unit-variance outputs
    for (int64_t i = 0; i < rows * cols; ++i)
      *w++ = rng.uniform(a);
  };
  auto norm = [&](int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      *w++ = 1.0f + rng.uniform(0.1f);
  };
  matrix(vocab, dim); // token embeddings (also the lm_head)
  for (int l = 0; l < layers; ++l)
    norm(dim);
  for (int l = 0; l < layers; ++l)
    matrix(dim, dim); // wq
  for (int l = 0; l < layers; ++l)
    matrix(kvDim, dim); // wk
  for (int l = 0; l < layers; ++l)
    matrix(kvDim, dim); // wv
  for (int l = 0; l < layers; ++l)
    matrix(dim, dim); // wo
  for (int l = 0; l < layers; ++l)
    norm(dim);
  for (int l = 0; l < layers; ++l)
    matrix(hidden, dim); // w1 (gate)
  for (int l = 0; l < layers; ++l)
    matrix(dim, hidden); // w2 (down)
  for (int l = 0; l < layers; ++l)
    matrix(hidden, dim); // w3 (up)
  norm(dim);
  // The legacy freq_cis tail: already zero.
  if (!support::writeFileAtomic(dir + "/model.bin", model.data(), model.size(),
                                error))
    return false;
  model.clear();
  model.shrink_to_fit();

  // --- the vocabulary (llama2.c tokenizer.bin) ---------------------------
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  std::vector<float> scores = {0.0f, 0.0f, 0.0f};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    pieces.push_back(name);
    scores.push_back(0.0f);
  }
  for (const char *word : kWords) {
    if (int32_t(pieces.size()) == vocab)
      break;
    pieces.push_back(std::string(" ") + word);
    scores.push_back(-float(pieces.size()));
  }
  for (int32_t i = 0; int32_t(pieces.size()) < vocab; ++i) {
    pieces.push_back(" w" + std::to_string(i));
    scores.push_back(-float(pieces.size()));
  }
  if (int32_t(pieces.size()) != vocab) {
    error = "internal error: the synthetic vocabulary has " +
            std::to_string(pieces.size()) + " pieces, expected " +
            std::to_string(vocab);
    return false;
  }
  std::vector<uint8_t> tok;
  int32_t maxLen = 0;
  for (const std::string &p : pieces)
    maxLen = std::max(maxLen, int32_t(p.size()));
  put32(tok, &maxLen);
  for (size_t i = 0; i < pieces.size(); ++i) {
    int32_t len = int32_t(pieces[i].size());
    put32(tok, &scores[i]);
    put32(tok, &len);
    tok.insert(tok.end(), pieces[i].begin(), pieces[i].end());
  }
  return support::writeFileAtomic(dir + "/tokenizer.bin", tok.data(),
                                  tok.size(), error);
}

} // namespace nibble::model
