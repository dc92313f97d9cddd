//===- Synthetic.cpp - The project's deterministic default model ----------===//

#include "nibble/Model/Synthetic.h"
#include "nibble/Support/File.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
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

bool writeSyntheticModel(const std::string &dir, uint64_t seed,
                         std::string &error) {
  const int32_t dim = 64, hidden = 192, layers = 4, heads = 4, kvHeads = 2,
                vocab = 512, seqLen = 256;
  const int32_t headDim = dim / heads, kvDim = kvHeads * headDim;
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    error = dir + ": cannot create the directory: " + std::strerror(errno);
    return false;
  }
  // --- the checkpoint (llama2.c legacy layout, tied embeddings) ---------
  Rng rng{seed};
  std::vector<float> w;
  auto matrix = [&](int64_t rows, int64_t cols) {
    float a = std::sqrt(3.0f / float(cols)); // unit-variance outputs
    for (int64_t i = 0; i < rows * cols; ++i)
      w.push_back(rng.uniform(a));
  };
  auto norm = [&](int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      w.push_back(1.0f + rng.uniform(0.1f));
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
  w.resize(w.size() + size_t(seqLen * headDim), 0.0f); // legacy freq_cis
  const int32_t header[7] = {dim,     hidden, layers, heads,
                             kvHeads, vocab,  seqLen};
  std::vector<uint8_t> model(sizeof header + w.size() * 4);
  std::memcpy(model.data(), header, sizeof header);
  std::memcpy(model.data() + sizeof header, w.data(), w.size() * 4);
  if (!support::writeFileAtomic(dir + "/model.bin", model.data(), model.size(),
                                error))
    return false;

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
