//===- Llama2cTest.cpp - llama2.c tokenizer files -------------------------===//

#include "TestUtil.h"

#include <map>
#include <random>

using namespace nibble::tokenizer;
using namespace nibble::tokenizer::test;

namespace {

/// A llama2.c vocabulary, read here independently of the library.
struct Vocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::map<std::string, int32_t> ids; ///< Lowest id of each string.
};

Vocab readVocab(const std::string &bytes) {
  Vocab v;
  for (size_t offset = 4; offset + 8 <= bytes.size();) {
    float score;
    int32_t length;
    std::memcpy(&score, bytes.data() + offset, 4);
    std::memcpy(&length, bytes.data() + offset + 4, 4);
    offset += 8;
    v.ids.emplace(bytes.substr(offset, length), int32_t(v.pieces.size()));
    v.pieces.push_back(bytes.substr(offset, length));
    v.scores.push_back(score);
    offset += length;
  }
  return v;
}

/// llama2.c run.c encode() transcribed literally, O(n^2) merge loop included.
std::vector<int32_t> naiveEncode(const Vocab &v, const std::string &text) {
  auto lookup = [&](const std::string &s) {
    auto it = v.ids.find(s);
    return it == v.ids.end() ? -1 : it->second;
  };
  std::vector<int32_t> tokens;
  if (!text.empty())
    tokens.push_back(lookup(" "));
  std::string buffer;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((text[i] & 0xC0) != 0x80)
      buffer.clear();
    buffer += text[i];
    if (i + 1 < text.size() && (text[i + 1] & 0xC0) == 0x80 &&
        buffer.size() < 4)
      continue;
    int32_t id = lookup(buffer);
    if (id != -1)
      tokens.push_back(id);
    else
      for (unsigned char b : buffer)
        tokens.push_back(b + 3);
    buffer.clear();
  }
  while (true) {
    float bestScore = -1e10f;
    int32_t bestId = -1;
    int bestIndex = -1;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      int32_t id = lookup(v.pieces[tokens[i]] + v.pieces[tokens[i + 1]]);
      if (id != -1 && v.scores[id] > bestScore) {
        bestScore = v.scores[id];
        bestId = id;
        bestIndex = int(i);
      }
    }
    if (bestIndex == -1)
      break;
    tokens[bestIndex] = bestId;
    tokens.erase(tokens.begin() + bestIndex + 1);
  }
  return tokens;
}

/// Random text: up to `maxParts` fragments drawn from `parts`.
std::string randomText(std::mt19937 &rng, const std::vector<std::string> &parts,
                       size_t maxParts) {
  std::string text;
  size_t n = rng() % (maxParts + 1);
  for (size_t i = 0; i < n; ++i)
    text += parts[rng() % parts.size()];
  return text;
}

std::unique_ptr<Tokenizer> loadTok512(const std::string &path) {
  std::string error;
  auto tok = loadTokenizer(path, error);
  EXPECT_TRUE(tok) << error;
  return tok;
}

} // namespace

TEST(Llama2c, HandCheckedSentence) {
  NIBBLE_SHARED_PATH(path, "models/stories260K/tok512.bin");
  auto tok = loadTok512(path);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "llama2c");
  EXPECT_EQ(tok->vocabSize(), 512);
  EXPECT_EQ(tok->bosId(), 1);
  EXPECT_EQ(tok->eosId(), 2);
  // tokenizer.py stores BOS/EOS as "\n<s>\n" and "\n</s>\n".
  EXPECT_EQ(tok->piece(1), "\n<s>\n");

  // The 512-piece vocabulary holds the frequent words with their leading
  // space; " girl" is not one of them and ends as " g" + "ir" + "l".
  std::string text = "Once upon a time, there was a little girl named Lily.";
  std::vector<int32_t> ids = tok->encode(text, true);
  std::vector<int32_t> expected = {1,   403, 407, 261, 378, 432, 383, 286,
                                   261, 376, 298, 315, 421, 395, 317, 426};
  EXPECT_EQ(ids, expected);
  std::vector<std::string> pieces;
  for (size_t i = 1; i < ids.size(); ++i)
    pieces.push_back(tok->piece(ids[i]));
  std::vector<std::string> expectedPieces = {
      " Once",   " upon", " a", " time", ",",      " there", " was", " a",
      " little", " g",    "ir", "l",     " named", " Lily",  "."};
  EXPECT_EQ(pieces, expectedPieces);
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_EQ(tok->encode(text, false),
            std::vector<int32_t>(expected.begin() + 1, expected.end()));
  EXPECT_TRUE(tok->encode("", true) == std::vector<int32_t>{1});
  EXPECT_TRUE(tok->encode("", false).empty());
}

TEST(Llama2c, ByteFallback) {
  NIBBLE_SHARED_PATH(path, "models/stories260K/tok512.bin");
  auto tok = loadTok512(path);
  ASSERT_TRUE(tok);
  // "é" is a piece of its own (character coverage 1.0 in training).
  EXPECT_EQ(tok->piece(485), "é");
  EXPECT_EQ(tok->encode("é", false), (std::vector<int32_t>{410, 485}));
  // U+1F642 is not: its bytes F0 9F 99 82 become <0xF0> <0x9F> <0x99> <0x82>,
  // ids byte + 3.
  std::vector<int32_t> ids = tok->encode("\xF0\x9F\x99\x82", false);
  EXPECT_EQ(
      ids, (std::vector<int32_t>{410, 0xF0 + 3, 0x9F + 3, 0x99 + 3, 0x82 + 3}));
  EXPECT_EQ(tok->piece(0xF0 + 3), "<0xF0>");
  EXPECT_EQ(tok->decode(ids), "\xF0\x9F\x99\x82");
  // Stray continuation bytes and a truncated sequence go byte by byte.
  std::string broken = "a\x80\x80\xC3";
  EXPECT_EQ(tok->decode(tok->encode(broken, true)), broken);
}

TEST(Llama2c, DecodeRules) {
  NIBBLE_SHARED_PATH(path, "models/stories260K/tok512.bin");
  auto tok = loadTok512(path);
  ASSERT_TRUE(tok);
  // BOS/EOS produce nothing; the first piece, and the first after each BOS,
  // loses its dummy-prefix space; ids out of range are skipped.
  EXPECT_EQ(tok->decode({1, 403, 407, 2}), "Once upon");
  EXPECT_EQ(tok->decode({403, 407}), "Once upon");
  EXPECT_EQ(tok->decode({-5, 9999, 403, 407}), "Once upon");
  EXPECT_EQ(tok->decode({403, 2, 1, 407}), "Onceupon");
  EXPECT_EQ(tok->decode({}), "");
}

TEST(Llama2c, MergesMatchNaiveRunCOnTok512) {
  NIBBLE_SHARED_PATH(path, "models/stories260K/tok512.bin");
  std::string bytes = readBytes(path);
  Vocab vocab = readVocab(bytes);
  ASSERT_EQ(vocab.pieces.size(), 512u);
  auto tok = loadTok512(path);
  ASSERT_TRUE(tok);
  std::mt19937 rng(1234);
  const std::vector<std::string> words = {
      "a",   "b",   "e",    "h",    "t",   " ",
      "  ",  "the", " the", "Once", "ing", " was",
      "\n",  ".",   ",",    "'",    "é",   "\xF0\x9F\x99\x82",
      "ll",  "o",   "Lily", "!",    "\"",  "\x80",
      "\xC3"};
  for (int i = 0; i < 2000; ++i) {
    std::string text = randomText(rng, words, 60);
    ASSERT_EQ(tok->encode(text, false), naiveEncode(vocab, text))
        << "text: " << text;
  }
}

TEST(Llama2c, MergesMatchNaiveRunCWithTiedScores) {
  // Many equal scores, and different pairs making the same piece ("a"+"bc"
  // and "ab"+"c"): the leftmost best pair must win, as in run.c.
  std::vector<Llama2cEntry> entries = {
      {0, "<unk>"}, {0, "\n<s>\n"}, {0, "\n</s>\n"}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    entries.push_back({0, name});
  }
  const char *pieces[] = {" ",  "a",   "b",   "c",    "aa",  "ab",
                          "ba", "bc",  "ca",  "abc",  "aab", "bca",
                          " a", " b",  "aaa", "abab", "cab", " ab",
                          "cc", "ccc", "bb",  "abb",  "bab", " abc"};
  int i = 0;
  for (const char *p : pieces)
    entries.push_back({-float(i++ % 3), p});
  std::string bytes = llama2cFile(8, entries);
  std::string error;
  auto tok = parseLlama2c(bytes, error);
  ASSERT_TRUE(tok) << error;
  Vocab vocab = readVocab(bytes);
  std::mt19937 rng(99);
  for (int n = 0; n < 3000; ++n) {
    std::string text = randomText(rng, {"a", "b", "c", " ", "ab", "x"}, 80);
    ASSERT_EQ(tok->encode(text, false), naiveEncode(vocab, text))
        << "text: " << text;
  }
}

TEST(Llama2c, VocabSizeArgument) {
  NIBBLE_SHARED_PATH(path, "models/stories260K/tok512.bin");
  std::string bytes = readBytes(path);
  auto data = reinterpret_cast<const uint8_t *>(bytes.data());
  std::string error;
  auto all = parseLlama2cTokenizer(data, bytes.size(), 512, path, error);
  ASSERT_TRUE(all) << error;
  EXPECT_EQ(all->vocabSize(), 512);
  // Fewer entries than the file holds: the rest is ignored.
  auto first = parseLlama2cTokenizer(data, bytes.size(), 300, path, error);
  ASSERT_TRUE(first) << error;
  EXPECT_EQ(first->vocabSize(), 300);
  EXPECT_EQ(first->piece(299), all->piece(299));
}

TEST(Llama2c, DevTextRoundTripAndSpeed) {
  NIBBLE_SHARED_PATH(path, "models/stories260K/tok512.bin");
  NIBBLE_SHARED_PATH(textPath, "data/tinystories_dev.txt");
  auto tok = loadTok512(path);
  ASSERT_TRUE(tok);
  std::string text = readBytes(textPath);
  for (const std::string &line : splitLines(text))
    ASSERT_EQ(tok->decode(tok->encode(line, true)), line);
  std::vector<int32_t> ids;
  double seconds = secondsOf([&] { ids = tok->encode(text, true); });
  expectFastEncode(seconds, "llama2.c tok512.bin");
  EXPECT_EQ(tok->decode(ids), text);
}
