//===- HFTokenizerTest.cpp - Hugging Face tokenizer.json (BPE) ------------===//

#include "TestUtil.h"

#include <algorithm>
#include <random>
#include <set>

using namespace nibble::tokenizer;
using namespace nibble::tokenizer::test;

namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;

/// A BPE "model" object: ids in `vocab` order, merges in rank order (the
/// "a b" string form), `extra` members appended.
std::string bpeModel(const std::vector<std::string> &vocab,
                     const Merges &merges, const std::string &extra = "") {
  std::string s = R"({"type": "BPE", "vocab": {)";
  for (size_t i = 0; i < vocab.size(); ++i)
    s += (i ? ", " : "") + jsonQuote(vocab[i]) + ": " + std::to_string(i);
  s += R"(}, "merges": [)";
  for (size_t i = 0; i < merges.size(); ++i)
    s += (i ? ", " : "") + jsonQuote(merges[i].first + " " + merges[i].second);
  s += "]";
  if (!extra.empty())
    s += ", " + extra;
  return s + "}";
}

/// The parts of a tokenizer.json, each as JSON text.
struct JsonParts {
  std::string model;
  std::string normalizer = "null";
  std::string preTokenizer = "null";
  std::string postProcessor = "null";
  std::string decoder = "null";
  std::string addedTokens = "[]";
  std::string json() const {
    return R"({"version": "1.0", "truncation": null, "padding": null,)"
           R"( "added_tokens": )" +
           addedTokens + R"(, "normalizer": )" + normalizer +
           R"(, "pre_tokenizer": )" + preTokenizer + R"(, "post_processor": )" +
           postProcessor + R"(, "decoder": )" + decoder + R"(, "model": )" +
           model + "}";
  }
};

/// A tokenizer with a one-token model and the given pre-tokenizer (for
/// splitting tests: see preTokenize()).
std::unique_ptr<Tokenizer> withPreTokenizer(const std::string &preTokenizer) {
  JsonParts p;
  p.model = bpeModel({"a"}, {});
  p.preTokenizer = preTokenizer;
  return parseJson(p.json());
}

std::unique_ptr<Tokenizer> withNormalizer(const std::string &normalizer) {
  JsonParts p;
  p.model = bpeModel({"a"}, {});
  p.normalizer = normalizer;
  return parseJson(p.json());
}

using Words = std::vector<std::string>;

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else { // the byte-level alphabet stays below U+0800
    out += char(0xC0 | cp >> 6);
    out += char(0x80 | (cp & 0x3F));
  }
}

/// GPT-2's bytes_to_unicode(): the character standing for each byte.
std::vector<std::string> byteLevelAlphabet() {
  std::vector<std::string> chars(256);
  uint32_t extra = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable =
        (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    appendUtf8(chars[b], printable ? b : extra++);
  }
  return chars;
}

// Byte-level spellings: Ġ is the space, Ċ is "\n", "Ã¼" is "ü" (C3 BC).
const std::string G = "\xC4\xA0", C = "\xC4\x8A", U = "\xC3\x83\xC2\xBC";

/// The merges of the GPT-2 style test tokenizer, in rank order, with the ids
/// of the tokens they make.
const Merges gpt2Merges = {
    {G, "d"},                 // Ġd     256
    {"o", "n"},               // on     257
    {G + "d", "on"},          // Ġdon   258
    {"'", "t"},               // 't     259
    {"H", "i"},               // Hi     260
    {G, "4"},                 // Ġ4     261
    {G + "4", "2"},           // Ġ42    262
    {"\xC3\x83", "\xC2\xBC"}, // Ã¼     263
    {U, "b"},                 // Ã¼b    264
    {"e", "r"},               // er     265
    {U + "b", "er"},          // Ã¼ber  266
    {C, C},                   // ĊĊ     267
};

/// A GPT-2 style tokenizer: ids 0..255 are the byte-level characters of
/// bytes 0..255, ids 256..267 the tokens of gpt2Merges; <|endoftext|> is the
/// special added token 268. `preTokenizer` is ByteLevel, or a Split with the
/// GPT-2 regex followed by ByteLevel(use_regex=false).
std::unique_ptr<Tokenizer> gpt2Tokenizer(const std::string &preTokenizer) {
  std::vector<std::string> vocab = byteLevelAlphabet();
  for (const auto &[left, right] : gpt2Merges)
    vocab.push_back(left + right);
  JsonParts p;
  p.model = bpeModel(vocab, gpt2Merges);
  p.preTokenizer = preTokenizer;
  p.decoder = R"({"type": "ByteLevel", "add_prefix_space": true,)"
              R"( "trim_offsets": true, "use_regex": true})";
  p.addedTokens = R"([{"id": 268, "content": "<|endoftext|>",)"
                  R"( "special": true}])";
  return parseJson(p.json());
}

const std::string gpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

const std::string byteLevelPreTokenizer =
    R"({"type": "ByteLevel", "add_prefix_space": false,)"
    R"( "trim_offsets": true, "use_regex": true})";
const std::string splitThenByteLevel =
    R"({"type": "Sequence", "pretokenizers": [)"
    R"({"type": "Split", "pattern": {"Regex": )" +
    jsonQuote(gpt2Regex) +
    R"(}, "behavior": "Isolated", "invert": false},)"
    R"( {"type": "ByteLevel", "add_prefix_space": false,)"
    R"( "trim_offsets": true, "use_regex": false}]})";

std::string removeNonAscii(const std::string &s) {
  std::string out;
  for (char c : s)
    if (uint8_t(c) < 0x80)
      out += c;
  return out;
}

std::unique_ptr<Tokenizer> loadPath(const std::string &path) {
  std::string error;
  auto tok = loadTokenizer(path, error);
  EXPECT_TRUE(tok) << error;
  return tok;
}

} // namespace

//===----------------------------------------------------------------------===//
// tinystories-656k: Prepend/Replace normalizer, no pre-tokenizer,
// byte_fallback without byte tokens, fused unk
//===----------------------------------------------------------------------===//

TEST(TinyStories, HandCheckedSentence) {
  NIBBLE_SHARED_PATH(dir, "models/tinystories-656k");
  auto tok = loadPath(dir); // a directory: its tokenizer.json
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->kind(), "hf-bpe");
  EXPECT_EQ(tok->vocabSize(), 2048);
  EXPECT_EQ(tok->bosId(), 1);
  EXPECT_EQ(tok->piece(1), "<|start_story|>");
  EXPECT_EQ(tok->eosId(), 2);
  EXPECT_EQ(tok->piece(2), "<|end_story|>");

  // The normalizer makes "▁Once▁upon▁a▁time,▁there▁...". The merges were
  // learned on text where stories began "▁<|start_story|>Once", so a story
  // opening is "▁" + "On" + "ce▁", and tokens carry the following "▁"
  // ("upon▁a▁tim", "there▁was▁a▁"). Cross-checked with a naive BPE.
  std::string text = "Once upon a time, there was a little girl named Lily.";
  std::vector<int32_t> ids = tok->encode(text, true);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 80, 147, 201, 282, 215, 286, 598, 629,
                                       10}));
  const std::string m = "\xE2\x96\x81"; // ▁
  Words pieces;
  for (size_t i = 1; i < ids.size(); ++i)
    pieces.push_back(tok->piece(ids[i]));
  EXPECT_EQ(pieces,
            (Words{m, "On", "ce" + m, "upon" + m + "a" + m + "tim", "e," + m,
                   "there" + m + "was" + m + "a" + m,
                   "little" + m + "girl" + m + "named" + m, "Lily", "."}));
  EXPECT_EQ(tok->decode(ids), text);
  // No pre-tokenizer: the normalized text is one word.
  EXPECT_EQ(tok->preTokenize("a b"), (Words{m + "a" + m + "b"}));
  // Special-token text is plain text.
  std::vector<int32_t> plain = tok->encode("<|start_story|>", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(tok->decode(plain), "<|start_story|>");
}

TEST(TinyStories, DevTextRoundTrip) {
  NIBBLE_SHARED_PATH(path, "models/tinystories-656k/tokenizer.json");
  NIBBLE_SHARED_PATH(textPath, "data/tinystories_dev.txt");
  auto tok = loadPath(path);
  ASSERT_TRUE(tok);
  // The vocabulary is ASCII only; the dev text's few non-ASCII characters
  // (mojibake: â € ™ œ ”) each run into one <unk> (fuse_unk; there are no
  // <0xXX> tokens to fall back to), a special token that decodes to nothing.
  std::string text = readBytes(textPath);
  size_t withUnk = 0;
  for (const std::string &line : splitLines(text)) {
    std::vector<int32_t> ids = tok->encode(line, true);
    bool hasUnk = std::count(ids.begin(), ids.end(), 0) > 0;
    ASSERT_EQ(hasUnk, removeNonAscii(line) != line) << line;
    withUnk += hasUnk;
    ASSERT_EQ(tok->decode(ids), removeNonAscii(line));
  }
  EXPECT_GT(withUnk, 0u);
  // "▁a" (a merge), one fused <unk> for "€™", "b".
  EXPECT_EQ(tok->encode(std::string("a\xE2\x82\xAC\xE2\x84\xA2") + "b", false),
            (std::vector<int32_t>{85, 0, 54}));

  std::string chunk = "One day, Tom saw a cat.\nThe cat was big.\n\nThe end.";
  EXPECT_EQ(tok->decode(tok->encode(chunk, true)), chunk);
  std::vector<int32_t> ids;
  double seconds = secondsOf([&] { ids = tok->encode(text, true); });
  expectFastEncode(seconds, "tinystories-656k tokenizer.json");
  EXPECT_EQ(tok->decode(ids), removeNonAscii(text));
}

//===----------------------------------------------------------------------===//
// The BPE model
//===----------------------------------------------------------------------===//

TEST(HFBpe, UnknownCharacters) {
  const std::vector<std::string> vocab = {"<unk>", "a", "b", "ab", "<0x78>"};
  const std::string added =
      R"([{"id": 0, "content": "<unk>", "special": true}])";
  auto make = [&](const std::string &options) {
    JsonParts p;
    p.model = bpeModel(vocab, {{"a", "b"}}, options);
    p.addedTokens = added;
    p.decoder = R"({"type": "Sequence", "decoders": [)"
                R"({"type": "ByteFallback"}, {"type": "Fuse"}]})";
    return parseJson(p.json());
  };
  using Ids = std::vector<int32_t>;
  // One <unk> per unknown character...
  auto plain = make(R"("unk_token": "<unk>", "fuse_unk": false)");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->encode("axyb", false), (Ids{1, 0, 0, 2}));
  EXPECT_EQ(plain->encode("abxyab", false), (Ids{3, 0, 0, 3}));
  EXPECT_EQ(plain->decode({1, 0, 0, 2}), "ab"); // <unk> is special
  // ...or one per run with fuse_unk.
  auto fused = make(R"("unk_token": "<unk>", "fuse_unk": true)");
  ASSERT_TRUE(fused);
  EXPECT_EQ(fused->encode("axyb", false), (Ids{1, 0, 2}));
  EXPECT_EQ(fused->encode("xay\xC3\xA9", false), (Ids{0, 1, 0}));
  // byte_fallback uses <0xXX> where the vocabulary has all the bytes of the
  // character ("x"), else <unk> ("y").
  auto bytes = make(R"("unk_token": "<unk>", "byte_fallback": true)");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->encode("axyb", false), (Ids{1, 4, 0, 2}));
  EXPECT_EQ(bytes->decode({1, 4, 0, 2}), "axb");
  // Without an unk token unknown characters are dropped, and their
  // neighbours may then merge.
  auto none = make("");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->encode("axyb", false), (Ids{3}));
}

// Merging with a heap must give what the naive "merge the lowest-ranked
// pair, leftmost first, until none" loop gives.
TEST(HFBpe, MergesMatchNaive) {
  std::mt19937 rng(7);
  std::vector<std::string> vocab = {"a", "b", "c"};
  Merges merges;
  std::set<std::pair<std::string, std::string>> seen;
  while (merges.size() < 60) {
    std::string left = vocab[rng() % vocab.size()];
    std::string right = vocab[rng() % vocab.size()];
    if (left.size() + right.size() > 6 || !seen.insert({left, right}).second)
      continue;
    merges.push_back({left, right});
    if (std::find(vocab.begin(), vocab.end(), left + right) == vocab.end())
      vocab.push_back(left + right);
  }
  JsonParts p;
  p.model = bpeModel(vocab, merges);
  auto tok = parseJson(p.json());
  ASSERT_TRUE(tok);

  auto idOf = [&](const std::string &s) {
    return int32_t(std::find(vocab.begin(), vocab.end(), s) - vocab.begin());
  };
  auto naive = [&](const std::string &text) {
    std::vector<std::string> symbols;
    for (char c : text)
      symbols.push_back(std::string(1, c));
    while (true) {
      size_t bestRank = merges.size(), bestAt = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i)
        for (size_t r = 0; r < bestRank; ++r)
          if (merges[r].first == symbols[i] &&
              merges[r].second == symbols[i + 1]) {
            bestRank = r;
            bestAt = i;
          }
      if (bestRank == merges.size())
        break;
      symbols[bestAt] += symbols[bestAt + 1];
      symbols.erase(symbols.begin() + bestAt + 1);
    }
    std::vector<int32_t> ids;
    for (const std::string &s : symbols)
      ids.push_back(idOf(s));
    return ids;
  };
  for (int n = 0; n < 1000; ++n) {
    std::string text;
    for (size_t i = rng() % 120; i > 0; --i)
      text += "abc"[rng() % 3];
    ASSERT_EQ(tok->encode(text, false), naive(text)) << text;
  }
}

TEST(HFBpe, MergePairFormEqualsStringForm) {
  std::string vocab = R"({"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4})";
  auto make = [&](const std::string &merges) {
    JsonParts p;
    p.model = R"({"type": "BPE", "vocab": )" + vocab + R"(, "merges": )" +
              merges + "}";
    return parseJson(p.json());
  };
  auto strings = make(R"(["a b", "ab c"])");
  auto pairs = make(R"([["a", "b"], ["ab", "c"]])");
  ASSERT_TRUE(strings && pairs);
  EXPECT_EQ(strings->encode("abcab", false), (std::vector<int32_t>{4, 2}));
  EXPECT_EQ(pairs->encode("abcab", false), (std::vector<int32_t>{4, 2}));
}

TEST(HFBpe, IgnoreMerges) {
  // "abab" is a token but no merge makes it.
  auto make = [&](const std::string &options) {
    JsonParts p;
    p.model = bpeModel({"a", "b", "ab", "abab"}, {{"a", "b"}}, options);
    return parseJson(p.json());
  };
  auto merging = make("");
  auto direct = make(R"("ignore_merges": true)");
  ASSERT_TRUE(merging && direct);
  EXPECT_EQ(merging->encode("abab", false), (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(direct->encode("abab", false), (std::vector<int32_t>{3}));
  EXPECT_EQ(direct->encode("ababa", false), (std::vector<int32_t>{2, 2, 0}));
}

TEST(HFBpe, SubwordPrefixAndWordSuffix) {
  // continuing_subword_prefix: non-initial characters are looked up as
  // "##c"; a merge drops the prefix of its right part.
  JsonParts prefixed;
  prefixed.model =
      bpeModel({"a", "##b", "##c", "ab", "abc"}, {{"a", "##b"}, {"ab", "##c"}},
               R"("continuing_subword_prefix": "##")");
  auto tok = parseJson(prefixed.json());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("abc", false), (std::vector<int32_t>{4}));
  EXPECT_EQ(tok->encode("acb", false), (std::vector<int32_t>{0, 2, 1}));

  // end_of_word_suffix: the last character is looked up as "b</w>"; the
  // BPEDecoder turns the suffix back into spaces.
  JsonParts suffixed;
  suffixed.model = bpeModel({"a", "b</w>", "ab</w>"}, {{"a", "b</w>"}},
                            R"("end_of_word_suffix": "</w>")");
  suffixed.preTokenizer = R"({"type": "WhitespaceSplit"})";
  suffixed.decoder = R"({"type": "BPEDecoder", "suffix": "</w>"})";
  tok = parseJson(suffixed.json());
  ASSERT_TRUE(tok);
  std::vector<int32_t> ids = tok->encode("ab  ab", false);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 2}));
  EXPECT_EQ(tok->decode(ids), "ab ab");
}

TEST(HFBpe, SpecialIds) {
  const std::string model = bpeModel({"<s>", "</s>", "a", "<", "s", ">"}, {});
  auto make = [&](const std::string &postProcessor, const std::string &added) {
    JsonParts p;
    p.model = model;
    p.postProcessor = postProcessor;
    p.addedTokens = added;
    return parseJson(p.json());
  };
  const std::string sAdded =
      R"([{"id": 0, "content": "<s>", "special": true},)"
      R"( {"id": 1, "content": "</s>", "special": true}])";
  // TemplateProcessing: the leading special token is BOS, a trailing one EOS.
  auto templ = make(
      R"({"type": "TemplateProcessing", "single": [)"
      R"({"SpecialToken": {"id": "<s>", "type_id": 0}},)"
      R"( {"Sequence": {"id": "A", "type_id": 0}},)"
      R"( {"SpecialToken": {"id": "</s>", "type_id": 0}}], "pair": [],)"
      R"( "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]},)"
      R"( "</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}})",
      sAdded);
  ASSERT_TRUE(templ);
  EXPECT_EQ(templ->bosId(), 0);
  EXPECT_EQ(templ->eosId(), 1);
  // Text spelling a special token is plain text; special ids decode to
  // nothing.
  EXPECT_EQ(templ->encode("<s>a", true), (std::vector<int32_t>{0, 3, 4, 5, 2}));
  EXPECT_EQ(templ->decode({0, 2, 1}), "a");
  // Roberta-style cls/sep, inside a Sequence.
  auto roberta = make(
      R"({"type": "Sequence", "processors": [{"type": "ByteLevel"},)"
      R"( {"type": "RobertaProcessing", "sep": ["</s>", 1], "cls": ["<s>", 0]}]})",
      sAdded);
  ASSERT_TRUE(roberta);
  EXPECT_EQ(roberta->bosId(), 0);
  EXPECT_EQ(roberta->eosId(), 1);
  // No post-processor: special added tokens with conventional names.
  auto named = make("null", sAdded);
  ASSERT_TRUE(named);
  EXPECT_EQ(named->bosId(), 0);
  EXPECT_EQ(named->eosId(), 1);
  auto gpt2 = gpt2Tokenizer(byteLevelPreTokenizer);
  ASSERT_TRUE(gpt2);
  EXPECT_EQ(gpt2->bosId(), 268); // <|endoftext|> is both
  EXPECT_EQ(gpt2->eosId(), 268);
  EXPECT_EQ(gpt2->vocabSize(), 269);
  // None at all.
  auto none = make("null", "[]");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->bosId(), -1);
  EXPECT_EQ(none->eosId(), -1);
  EXPECT_EQ(none->encode("a", true), (std::vector<int32_t>{2}));
}

//===----------------------------------------------------------------------===//
// Byte-level BPE (GPT-2 style)
//===----------------------------------------------------------------------===//

TEST(ByteLevel, HandComputedIds) {
  using Ids = std::vector<int32_t>;
  for (const std::string &pre : {byteLevelPreTokenizer, splitThenByteLevel}) {
    auto tok = gpt2Tokenizer(pre);
    ASSERT_TRUE(tok);
    // Words: "Hi" "," " don" "'t" " 42" "\n" "\n" "über" "!" -- the GPT-2
    // regex gives "\n\n" before a letter as two words (\s+(?!\S) backs off
    // one), so the ĊĊ merge does not apply. "Ġdon": Ġ+d (rank 0), o+n (1),
    // Ġd+on (2). "über" is bytes C3 BC 62 65 72 = "Ã¼ber": Ã+¼, Ã¼+b, e+r,
    // Ã¼b+er.
    std::string text = "Hi, don't 42\n\n\xC3\xBC" + std::string("ber!");
    EXPECT_EQ(tok->preTokenize(text), (Words{"Hi", ",", G + "don", "'t",
                                             G + "42", C, C, U + "ber", "!"}));
    Ids ids = tok->encode(text, false);
    EXPECT_EQ(ids, (Ids{260, 44, 258, 259, 262, 10, 10, 266, 33}));
    EXPECT_EQ(tok->decode(ids), text);
    // A trailing "\n\n" is one word and merges.
    EXPECT_EQ(tok->encode("ok\n\n", false), (Ids{'o', 'k', 267}));
    // The GPT-2 contractions are lowercase only: "'T" is "'" then "T".
    EXPECT_EQ(tok->encode("DON'T", false), (Ids{'D', 'O', 'N', '\'', 'T'}));
    // " 4234" is one word: Ġ+4 (rank 5), then Ġ4+2 (rank 6).
    EXPECT_EQ(tok->encode("a 4234", false), (Ids{'a', 262, '3', '4'}));
    // Control tokens decode to nothing.
    EXPECT_EQ(tok->decode({268, 260, 268}), "Hi");
  }
  // add_prefix_space: "Hi" is read as " Hi".
  auto prefixed = gpt2Tokenizer(
      R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})");
  ASSERT_TRUE(prefixed);
  EXPECT_EQ(prefixed->encode("Hi", false), (Ids{32, 260}));
  EXPECT_EQ(prefixed->encode(" Hi", false), (Ids{32, 260}));
}

TEST(ByteLevel, DecoderRepairsBrokenUtf8) {
  auto tok = gpt2Tokenizer(byteLevelPreTokenizer);
  ASSERT_TRUE(tok);
  // One byte of a two-byte character: U+FFFD, as String::from_utf8_lossy.
  EXPECT_EQ(tok->decode({0xC3}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok->decode({0xC3, 0xBC}), "\xC3\xBC");
  // Input that is not UTF-8: the regex never matches the stray byte, which
  // stays a word of its own and decodes to U+FFFD.
  EXPECT_EQ(tok->encode("a\x80z", false),
            (std::vector<int32_t>{'a', 0x80, 'z'}));
  EXPECT_EQ(tok->decode({'a', 0x80, 'z'}), "a\xEF\xBF\xBDz");
}

TEST(ByteLevel, DevTextRoundTrip) {
  NIBBLE_SHARED_PATH(textPath, "data/tinystories_dev.txt");
  std::string text = readBytes(textPath);
  for (const std::string &pre : {byteLevelPreTokenizer, splitThenByteLevel}) {
    auto tok = gpt2Tokenizer(pre);
    ASSERT_TRUE(tok);
    for (const std::string &line : splitLines(text))
      ASSERT_EQ(tok->decode(tok->encode(line, false)), line);
    std::vector<int32_t> ids;
    double seconds = secondsOf([&] { ids = tok->encode(text, false); });
    expectFastEncode(seconds, "synthetic GPT-2 byte-level");
    EXPECT_EQ(tok->decode(ids), text);
  }
}

//===----------------------------------------------------------------------===//
// Pre-tokenizers and normalizers
//===----------------------------------------------------------------------===//

TEST(PreTokenizer, Llama3Split) {
  const std::string llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  auto tok = withPreTokenizer(R"({"type": "Split", "pattern": {"Regex": )" +
                              jsonQuote(llama3) +
                              R"(}, "behavior": "Isolated", "invert": false})");
  ASSERT_TRUE(tok);
  // "  HAPPY": \s+(?!\S) backs off to one space, which leaves " HAPPY" to
  // [^\r\n\p{L}\p{N}]?\p{L}+. (?i:) catches "'S". Digits go by three.
  // "!!\n\n" is punctuation with its newlines; "\tyes" takes its tab.
  EXPECT_EQ(tok->preTokenize("I'm  HAPPY'S 1234567 days!!\n\n  ok\tyes  "),
            (Words{"I", "'m", " ", " HAPPY", "'S", " ", "123", "456", "7",
                   " days", "!!\n\n", " ", " ok", "\tyes", "  "}));
  // " \n" goes to \s*[\r\n]+ (it cannot be \s+(?!\S): a space follows).
  EXPECT_EQ(tok->preTokenize("end.\r\n\r\nNew a \n b"),
            (Words{"end", ".\r\n\r\n", "New", " a", " \n", " b"}));
}

TEST(PreTokenizer, SplitBehaviors) {
  auto split = [](const std::string &behavior, bool invert) {
    auto tok = withPreTokenizer(
        R"({"type": "Split", "pattern": {"String": "-"}, "behavior": ")" +
        behavior + R"(", "invert": )" + (invert ? "true" : "false") + "}");
    return tok ? tok->preTokenize("a-b--c-") : Words{"<error>"};
  };
  EXPECT_EQ(split("Removed", false), (Words{"a", "b", "c"}));
  EXPECT_EQ(split("Isolated", false),
            (Words{"a", "-", "b", "-", "-", "c", "-"}));
  EXPECT_EQ(split("MergedWithPrevious", false), (Words{"a-", "b-", "-", "c-"}));
  EXPECT_EQ(split("MergedWithNext", false), (Words{"a", "-b", "-", "-c", "-"}));
  EXPECT_EQ(split("Contiguous", false), (Words{"a", "-", "b", "--", "c", "-"}));
  // invert: the letters are the delimiters.
  EXPECT_EQ(split("Removed", true), (Words{"-", "-", "-", "-"}));
  EXPECT_EQ(split("MergedWithPrevious", true),
            (Words{"a", "-b", "-", "-c", "-"}));
}

TEST(PreTokenizer, Metaspace) {
  const std::string m = "\xE2\x96\x81";
  auto metaspace = [&](const std::string &options) {
    return withPreTokenizer(
        R"({"type": "Metaspace", "replacement": "\u2581", )" + options + "}");
  };
  auto always = metaspace(R"("prepend_scheme": "always", "split": true)");
  ASSERT_TRUE(always);
  EXPECT_EQ(always->preTokenize("Hey  friend"),
            (Words{m + "Hey", m, m + "friend"}));
  auto never = metaspace(R"("prepend_scheme": "never", "split": true)");
  ASSERT_TRUE(never);
  EXPECT_EQ(never->preTokenize("Hey friend"), (Words{"Hey", m + "friend"}));
  auto unsplit = metaspace(R"("prepend_scheme": "always", "split": false)");
  ASSERT_TRUE(unsplit);
  EXPECT_EQ(unsplit->preTokenize("Hey friend"),
            (Words{m + "Hey" + m + "friend"}));
  // Legacy add_prefix_space=false means "never".
  auto legacy = metaspace(R"("add_prefix_space": false)");
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->preTokenize("Hey"), (Words{"Hey"}));
  // "first" prepends to the word at the start of the text only.
  for (const char *scheme : {"first", "always"}) {
    auto tok = withPreTokenizer(
        std::string(R"({"type": "Sequence", "pretokenizers": [)"
                    R"({"type": "Split", "pattern": {"String": ","},)"
                    R"( "behavior": "MergedWithPrevious"},)"
                    R"( {"type": "Metaspace", "replacement": "\u2581",)"
                    R"( "prepend_scheme": ")") +
        scheme + R"(", "split": false}]})");
    ASSERT_TRUE(tok);
    Words expected = {m + "a,", std::string(scheme) == "first"
                                    ? "b" + m + "c"
                                    : m + "b" + m + "c"};
    EXPECT_EQ(tok->preTokenize("a,b c"), expected) << scheme;
  }
}

TEST(PreTokenizer, FixedSplits) {
  auto digits =
      withPreTokenizer(R"({"type": "Digits", "individual_digits": true})");
  auto runs =
      withPreTokenizer(R"({"type": "Digits", "individual_digits": false})");
  auto punctuation = withPreTokenizer(R"({"type": "Punctuation"})");
  auto whitespace = withPreTokenizer(R"({"type": "Whitespace"})");
  auto whitespaceSplit = withPreTokenizer(R"({"type": "WhitespaceSplit"})");
  ASSERT_TRUE(digits && runs && punctuation && whitespace && whitespaceSplit);
  EXPECT_EQ(digits->preTokenize("ab123c"), (Words{"ab", "1", "2", "3", "c"}));
  EXPECT_EQ(runs->preTokenize("ab123c"), (Words{"ab", "123", "c"}));
  EXPECT_EQ(punctuation->preTokenize("hi, there!$"),
            (Words{"hi", ",", " there", "!", "$"}));
  EXPECT_EQ(whitespace->preTokenize("Hello, world!!  x"),
            (Words{"Hello", ",", "world", "!!", "x"}));
  EXPECT_EQ(whitespaceSplit->preTokenize(" a  b\tc\n"), (Words{"a", "b", "c"}));
}

TEST(Normalizer, LowercaseReplaceAndSequence) {
  auto lower = withNormalizer(R"({"type": "Lowercase"})");
  ASSERT_TRUE(lower);
  // U+0130 lowercases to two characters, "i" + U+0307.
  EXPECT_EQ(lower->preTokenize("\u00C0B \u0130 \u03A3"),
            (Words{"\u00E0b i\u0307 \u03C3"}));
  auto squeeze = withNormalizer(
      R"({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})");
  ASSERT_TRUE(squeeze);
  EXPECT_EQ(squeeze->preTokenize("a   b  c d"), (Words{"a b c d"}));
  auto sequence = withNormalizer(
      R"({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "_"},)"
      R"( {"type": "Replace", "pattern": {"String": "ab"}, "content": "X"}]})");
  ASSERT_TRUE(sequence);
  EXPECT_EQ(sequence->preTokenize("abcab"), (Words{"_XcX"}));
  EXPECT_EQ(sequence->preTokenize(""), Words{});
}

//===----------------------------------------------------------------------===//
// Decoders
//===----------------------------------------------------------------------===//

TEST(Decoder, ReplaceByteFallbackFuseStrip) {
  JsonParts p;
  p.model = bpeModel({"\xE2\x96\x81hi", "<0xC3>", "<0xA9>", "<0xFF>", "x"}, {});
  p.decoder =
      R"({"type": "Sequence", "decoders": [)"
      R"({"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},)"
      R"( {"type": "ByteFallback"}, {"type": "Fuse"},)"
      R"( {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";
  auto tok = parseJson(p.json());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->decode({0, 1, 2, 0}), "hi\xC3\xA9 hi");
  // A byte run that is not UTF-8: one U+FFFD per byte token.
  EXPECT_EQ(tok->decode({3, 1, 0}), "\xEF\xBF\xBD\xEF\xBF\xBD hi");
  EXPECT_EQ(tok->decode({1}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok->decode({}), "");
  // No decoder: tokens joined with spaces.
  p.decoder = "null";
  tok = parseJson(p.json());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->decode({4, 4}), "x x");
}

TEST(Decoder, MetaspaceAndStripStop) {
  const std::string m = "\xE2\x96\x81";
  JsonParts p;
  p.model = bpeModel({m + "Hey", m + "friend", "xx!xx"}, {});
  p.decoder = R"({"type": "Metaspace", "replacement": "\u2581",)"
              R"( "prepend_scheme": "always", "split": true})";
  auto always = parseJson(p.json());
  ASSERT_TRUE(always);
  EXPECT_EQ(always->decode({0, 1}), "Hey friend");
  p.decoder = R"({"type": "Metaspace", "replacement": "\u2581",)"
              R"( "prepend_scheme": "never", "split": true})";
  auto never = parseJson(p.json());
  ASSERT_TRUE(never);
  EXPECT_EQ(never->decode({0, 1}), " Hey friend");
  p.decoder = R"({"type": "Strip", "content": "x", "start": 1, "stop": 5})";
  auto strip = parseJson(p.json());
  ASSERT_TRUE(strip);
  EXPECT_EQ(strip->decode({2}), "x!");
}
