//===- HFTokenizer.cpp - Hugging Face tokenizer.json with a BPE model -----===//
//
// Encoding: normalizer -> pre-tokenizer -> BPE per word, as the `tokenizers`
// crate does it (BPE: every character to its id, else its `<0xXX>` byte
// tokens with byte_fallback, else the unk token, fused with fuse_unk; then
// the merges by rank, leftmost first on ties). The BOS id is prepended on
// request; the rest of the post-processor is not applied, and text matching
// an added token is encoded as plain text.
//
// Decoding: ids to token strings (special added tokens skipped, as with
// skip_special_tokens), then the decoder chain, then concatenation (tokens
// joined with ' ' when the file has no decoder).
//
// BOS/EOS ids: from the post-processor when it names them -- the
// TemplateProcessing "single" template's leading special token is BOS and its
// trailing one (after the sequence) EOS; RobertaProcessing/BertProcessing's
// "cls" is BOS and "sep" EOS. Otherwise the first added token whose content
// is in bosNames / eosNames below.
//
//===----------------------------------------------------------------------===//

#include "nibble/Tokenizer/Tokenizer.h"

#include "HFComponents.h"
#include "Support.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <unordered_map>

namespace nibble::tokenizer {
namespace {

using detail::Decoder;
using detail::Normalizer;
using detail::PairMerge;
using detail::Pattern;
using detail::Piece;
using detail::PrependScheme;
using detail::PreTokenizer;
using detail::Regex;
using detail::SplitBehavior;
using Json = nlohmann::json;

/// Sequences nested deeper than this are rejected (they only serve to
/// exhaust the stack).
constexpr int maxNesting = 32;

constexpr std::array<std::string_view, 6> bosNames = {
    "<s>",   "<|begin_of_text|>", "<|start_story|>", "<|startoftext|>",
    "<bos>", "<|endoftext|>"};
constexpr std::array<std::string_view, 5> eosNames = {
    "</s>", "<|end_of_text|>", "<|end_story|>", "<|endoftext|>", "<eos>"};

/// `s` in single quotes, control bytes escaped, for error messages.
std::string quoteText(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7F) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02X", c);
      out += buffer;
    } else {
      out += char(c);
    }
  }
  return out + "'";
}

std::string member(const std::string &path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string element(const std::string &path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

//===----------------------------------------------------------------------===//
// The tokenizer
//===----------------------------------------------------------------------===//

class HFTokenizer final : public Tokenizer {
public:
  std::string_view kind() const override { return "hf-bpe"; }
  int32_t vocabSize() const override { return numIds; }
  int32_t bosId() const override { return bos; }
  int32_t eosId() const override { return eos; }
  std::vector<int32_t> encode(std::string_view text,
                              bool addBos) const override;
  std::string decode(const std::vector<int32_t> &ids) const override;
  std::string piece(int32_t id) const override;
  std::vector<std::string> preTokenize(std::string_view text) const override;

private:
  friend class Parser;
  struct TokenInfo {
    std::string text;
    bool special = false; ///< A special added token: decodes to nothing.
  };

  std::vector<Piece> words(std::string_view text) const;
  void encodeWord(std::string_view word, std::vector<int32_t> &out) const;
  static uint64_t pairKey(int32_t left, int32_t right) {
    return uint64_t(uint32_t(left)) << 32 | uint32_t(right);
  }

  // BPE model.
  std::unordered_map<std::string, int32_t> vocab;
  std::unordered_map<uint64_t, PairMerge<uint32_t>> merges; ///< -> rank, id
  std::array<int32_t, 256> byteIds; ///< Ids of `<0xXX>`, -1 if absent.
  int32_t unkId = -1;
  bool fuseUnk = false, byteFallback = false, ignoreMerges = false;
  std::string subwordPrefix, wordSuffix;

  /// Every id: model vocabulary, overridden by added tokens.
  std::unordered_map<int32_t, TokenInfo> tokens;
  int32_t numIds = 0;
  int32_t bos = -1, eos = -1;

  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> preTokenizer;
  std::unique_ptr<Decoder> decoder;
};

std::vector<Piece> HFTokenizer::words(std::string_view text) const {
  std::string normalized(text);
  if (normalizer)
    normalizer->normalize(normalized);
  std::vector<Piece> pieces;
  if (!normalized.empty())
    pieces.push_back({std::move(normalized), true});
  if (preTokenizer)
    preTokenizer->preTokenize(pieces);
  return pieces;
}

std::vector<std::string> HFTokenizer::preTokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (Piece &p : words(text))
    out.push_back(std::move(p.text));
  return out;
}

std::vector<int32_t> HFTokenizer::encode(std::string_view text,
                                         bool addBos) const {
  std::vector<int32_t> ids;
  if (addBos && bos >= 0)
    ids.push_back(bos);
  for (const Piece &word : words(text))
    encodeWord(word.text, ids);
  return ids;
}

void HFTokenizer::encodeWord(std::string_view word,
                             std::vector<int32_t> &out) const {
  if (ignoreMerges) {
    auto it = vocab.find(std::string(word));
    if (it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // One symbol per character (BPE::merge_word).
  std::vector<int32_t> symbols;
  bool unkPending = false;
  auto flushUnk = [&] {
    if (unkPending)
      symbols.push_back(unkId);
    unkPending = false;
  };
  std::string s;
  for (size_t i = 0; i < word.size();) {
    size_t n = detail::utf8CharLength(word.substr(i));
    s.clear();
    if (i > 0)
      s += subwordPrefix;
    s.append(word.substr(i, n));
    i += n;
    if (i == word.size())
      s += wordSuffix;
    if (auto it = vocab.find(s); it != vocab.end()) {
      flushUnk();
      symbols.push_back(it->second);
      continue;
    }
    if (byteFallback && std::all_of(s.begin(), s.end(), [&](char c) {
          return byteIds[uint8_t(c)] >= 0;
        })) {
      flushUnk();
      for (char c : s)
        symbols.push_back(byteIds[uint8_t(c)]);
      continue;
    }
    if (unkId < 0) // no unk token: the character is dropped
      continue;
    if (!(unkPending && fuseUnk)) {
      flushUnk();
      unkPending = true;
    }
  }
  flushUnk();

  detail::mergeAdjacentPairs<uint32_t>(
      symbols,
      [&](int32_t left, int32_t right) -> std::optional<PairMerge<uint32_t>> {
        auto it = merges.find(pairKey(left, right));
        if (it == merges.end())
          return std::nullopt;
        return it->second;
      });
  out.insert(out.end(), symbols.begin(), symbols.end());
}

std::string HFTokenizer::decode(const std::vector<int32_t> &ids) const {
  std::vector<std::string> pieces;
  pieces.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = tokens.find(id);
    if (it != tokens.end() && !it->second.special)
      pieces.push_back(it->second.text);
  }
  std::string text;
  if (!decoder) {
    for (size_t i = 0; i < pieces.size(); ++i)
      text += (i ? " " : "") + pieces[i];
    return text;
  }
  decoder->decode(pieces);
  for (const std::string &p : pieces)
    text += p;
  return text;
}

std::string HFTokenizer::piece(int32_t id) const {
  auto it = tokens.find(id);
  return it == tokens.end() ? std::string() : it->second.text;
}

//===----------------------------------------------------------------------===//
// tokenizer.json parsing
//===----------------------------------------------------------------------===//

/// Builds an HFTokenizer from the parsed JSON. Every accessor checks the
/// JSON type first; the first problem is kept in `error` as
/// "FILE: JSON.PATH: message" and parsing stops.
class Parser {
public:
  Parser(const std::string &file, HFTokenizer &tok) : file(file), tok(tok) {}
  bool parse(const Json &root);
  std::string error;

private:
  bool fail(const std::string &path, const std::string &message) {
    if (error.empty())
      error = file + ": " + path + ": " + message;
    return false;
  }
  bool expected(const std::string &path, const char *what, const Json &v) {
    return fail(path,
                std::string("expected ") + what + ", got " + v.type_name());
  }

  // Typed member access. Absent and JSON null both mean "not given"; the
  // optional readers then leave `out` unchanged.
  static const Json *find(const Json &obj, std::string_view key) {
    auto it = obj.find(std::string(key));
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  bool require(const Json &obj, const std::string &path, std::string_view key,
               const Json *&out) {
    out = find(obj, key);
    return out ? true : fail(member(path, key), "missing");
  }
  bool readString(const Json &v, const std::string &path, std::string &out) {
    if (!v.is_string())
      return expected(path, "a string", v);
    out = v.get<std::string>();
    return true;
  }
  bool optString(const Json &obj, const std::string &path, std::string_view key,
                 std::string &out) {
    const Json *v = find(obj, key);
    return !v || readString(*v, member(path, key), out);
  }
  bool reqString(const Json &obj, const std::string &path, std::string_view key,
                 std::string &out) {
    const Json *v;
    return require(obj, path, key, v) && readString(*v, member(path, key), out);
  }
  bool optBool(const Json &obj, const std::string &path, std::string_view key,
               bool &out) {
    const Json *v = find(obj, key);
    if (!v)
      return true;
    if (!v->is_boolean())
      return expected(member(path, key), "a boolean", *v);
    out = v->get<bool>();
    return true;
  }
  /// An integer in [0, max].
  bool readUnsigned(const Json &v, const std::string &path, uint64_t max,
                    uint64_t &out) {
    bool ok = v.is_number_unsigned() ||
              (v.is_number_integer() && v.get<int64_t>() >= 0);
    if (ok)
      out = v.get<uint64_t>();
    if (!ok || out > max)
      return fail(path, "expected an integer in 0.." + std::to_string(max) +
                            ", got " +
                            (v.is_number() ? v.dump() : v.type_name()));
    return true;
  }
  bool readId(const Json &v, const std::string &path, int32_t &out) {
    uint64_t id;
    if (!readUnsigned(v, path, INT32_MAX - 1, id))
      return false;
    out = int32_t(id);
    return true;
  }
  bool expectObject(const Json &v, const std::string &path) {
    return v.is_object() || expected(path, "an object", v);
  }
  bool expectArray(const Json &v, const std::string &path) {
    return v.is_array() || expected(path, "an array", v);
  }
  /// The "type" of a component object.
  bool readType(const Json &v, const std::string &path, std::string &type) {
    return expectObject(v, path) && reqString(v, path, "type", type);
  }
  bool checkNesting(int depth, const std::string &path) {
    return depth <= maxNesting ||
           fail(path, "Sequence nested deeper than " +
                          std::to_string(maxNesting) + " levels");
  }
  /// A one-character string (Metaspace replacement, Strip content).
  bool readChar(const Json &obj, const std::string &path, std::string_view key,
                std::string &out) {
    if (!reqString(obj, path, key, out))
      return false;
    return detail::singleCodePoint(out) ||
           fail(member(path, key),
                "expected one character, got " + quoteText(out));
  }

  /// A "Sequence" component: every element of the array `key` parsed with
  /// `parseOne` (one nesting level deeper), wrapped in a SequenceT.
  template <typename SequenceT, typename T>
  bool parseSequence(const Json &v, const std::string &path, const char *key,
                     int depth,
                     bool (Parser::*parseOne)(const Json &, const std::string &,
                                              int, std::unique_ptr<T> &),
                     std::unique_ptr<T> &out) {
    const Json *list;
    std::string listPath = member(path, key);
    if (!require(v, path, key, list) || !expectArray(*list, listPath))
      return false;
    std::vector<std::unique_ptr<T>> steps(list->size());
    for (size_t i = 0; i < list->size(); ++i)
      if (!(this->*parseOne)((*list)[i], element(listPath, i), depth + 1,
                             steps[i]))
        return false;
    out = std::make_unique<SequenceT>(std::move(steps));
    return true;
  }

  /// A "Replace" component (normalizer or decoder): `pattern` and
  /// `content`, wrapped in a ReplaceT.
  template <typename ReplaceT, typename T>
  bool parseReplace(const Json &v, const std::string &path,
                    std::unique_ptr<T> &out) {
    Pattern pattern = Pattern::literal("");
    std::string content;
    if (!parsePattern(v, path, pattern) ||
        !reqString(v, path, "content", content))
      return false;
    out = std::make_unique<ReplaceT>(pattern, content);
    return true;
  }

  bool parseModel(const Json &model);
  bool parseAddedTokens(const Json &list);
  bool parsePattern(const Json &obj, const std::string &path, Pattern &out);
  bool parseRegex(const std::string &pattern, const std::string &path,
                  std::shared_ptr<const Regex> &out);
  bool parseNormalizer(const Json &v, const std::string &path, int depth,
                       std::unique_ptr<Normalizer> &out);
  bool parsePreTokenizer(const Json &v, const std::string &path, int depth,
                         std::unique_ptr<PreTokenizer> &out);
  bool parseDecoder(const Json &v, const std::string &path, int depth,
                    std::unique_ptr<Decoder> &out);
  bool parsePrependScheme(const Json &v, const std::string &path,
                          PrependScheme &out);
  bool parseBehavior(const Json &v, const std::string &path,
                     SplitBehavior &out);
  bool parsePostProcessor(const Json &v, const std::string &path, int depth);
  bool resolveTemplateToken(const Json &proc, const std::string &path,
                            const Json &entry, const std::string &entryPath,
                            int32_t &out);
  bool checkId(int32_t id, const std::string &path);

  const std::string &file;
  HFTokenizer &tok;
  bool postProcessorNamedSpecials = false;
};

bool Parser::parse(const Json &root) {
  if (!root.is_object())
    return expected("(top level)", "an object", root);
  const Json *model;
  if (!require(root, "", "model", model) || !parseModel(*model))
    return false;
  if (const Json *added = find(root, "added_tokens"))
    if (!parseAddedTokens(*added))
      return false;
  for (const auto &[id, info] : tok.tokens)
    tok.numIds = std::max(tok.numIds, id + 1);

  if (const Json *v = find(root, "normalizer"))
    if (!parseNormalizer(*v, "normalizer", 0, tok.normalizer))
      return false;
  if (const Json *v = find(root, "pre_tokenizer"))
    if (!parsePreTokenizer(*v, "pre_tokenizer", 0, tok.preTokenizer))
      return false;
  if (const Json *v = find(root, "decoder"))
    if (!parseDecoder(*v, "decoder", 0, tok.decoder))
      return false;
  if (const Json *v = find(root, "post_processor"))
    if (!parsePostProcessor(*v, "post_processor", 0))
      return false;

  // Added tokens with a conventional BOS/EOS name, where the post-processor
  // named none.
  auto byName = [&](const auto &names) {
    for (std::string_view name : names)
      for (const auto &[id, info] : tok.tokens)
        if (info.special && info.text == name)
          return id;
    return -1;
  };
  if (tok.bos < 0)
    tok.bos = byName(bosNames);
  if (tok.eos < 0)
    tok.eos = byName(eosNames);
  return true;
}

bool Parser::parseModel(const Json &model) {
  const std::string path = "model";
  std::string type;
  if (!readType(model, path, type))
    return false;
  if (type != "BPE")
    return fail("model.type", "unsupported model type " + quoteText(type) +
                                  " (only BPE is supported)");
  if (const Json *dropout = find(model, "dropout")) {
    if (!dropout->is_number())
      return expected("model.dropout", "a number", *dropout);
    if (dropout->get<double>() != 0)
      return fail("model.dropout",
                  "BPE dropout " + dropout->dump() + " is not supported");
  }
  if (!optBool(model, path, "fuse_unk", tok.fuseUnk) ||
      !optBool(model, path, "byte_fallback", tok.byteFallback) ||
      !optBool(model, path, "ignore_merges", tok.ignoreMerges) ||
      !optString(model, path, "continuing_subword_prefix", tok.subwordPrefix) ||
      !optString(model, path, "end_of_word_suffix", tok.wordSuffix))
    return false;

  const Json *vocab;
  if (!require(model, path, "vocab", vocab) ||
      !expectObject(*vocab, "model.vocab"))
    return false;
  for (const auto &[text, value] : vocab->items()) {
    std::string entryPath = "model.vocab[" + Json(text).dump() + "]";
    int32_t id;
    if (!readId(value, entryPath, id))
      return false;
    auto [it, inserted] = tok.tokens.try_emplace(id);
    if (!inserted)
      return fail(entryPath, "id " + std::to_string(id) +
                                 " is also the id of " +
                                 quoteText(it->second.text));
    it->second.text = text;
    tok.vocab.emplace(text, id);
  }

  tok.byteIds.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    if (auto it = tok.vocab.find(name); it != tok.vocab.end())
      tok.byteIds[b] = it->second;
  }

  std::string unk;
  if (!optString(model, path, "unk_token", unk))
    return false;
  if (find(model, "unk_token")) {
    auto it = tok.vocab.find(unk);
    if (it == tok.vocab.end())
      return fail("model.unk_token", quoteText(unk) + " is not in model.vocab");
    tok.unkId = it->second;
  }

  const Json *merges;
  if (!require(model, path, "merges", merges) ||
      !expectArray(*merges, "model.merges"))
    return false;
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const Json &m = (*merges)[rank];
    std::string mergePath = element("model.merges", rank);
    std::string left, right;
    if (m.is_string()) { // "left right"
      const std::string &s = m.get_ref<const std::string &>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != s.npos)
        return fail(mergePath,
                    "expected \"left right\" (one space), got " + quoteText(s));
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array()) { // ["left", "right"]
      if (m.size() != 2)
        return fail(mergePath, "expected a pair of strings, got " +
                                   std::to_string(m.size()) + " elements");
      if (!readString(m[0], element(mergePath, 0), left) ||
          !readString(m[1], element(mergePath, 1), right))
        return false;
    } else {
      return expected(mergePath, "a string or a pair of strings", m);
    }
    // The merged token: the right part loses its continuing-subword prefix.
    size_t prefixLength = tok.subwordPrefix.size();
    if (right.size() < prefixLength)
      return fail(mergePath, quoteText(right) +
                                 " is shorter than continuing_subword_prefix");
    std::string mergedText = left + right.substr(prefixLength);
    int32_t ids[3];
    const std::string *parts[3] = {&left, &right, &mergedText};
    for (int i = 0; i < 3; ++i) {
      auto it = tok.vocab.find(*parts[i]);
      if (it == tok.vocab.end())
        return fail(mergePath, (i == 2 ? "merged token " : "token ") +
                                   quoteText(*parts[i]) +
                                   " is not in model.vocab");
      ids[i] = it->second;
    }
    // A repeated pair takes its last rank, as the tokenizers HashMap does.
    tok.merges[HFTokenizer::pairKey(ids[0], ids[1])] = {uint32_t(rank), ids[2]};
  }
  return true;
}

bool Parser::parseAddedTokens(const Json &list) {
  if (!expectArray(list, "added_tokens"))
    return false;
  for (size_t i = 0; i < list.size(); ++i) {
    const Json &entry = list[i];
    std::string path = element("added_tokens", i);
    const Json *idValue;
    int32_t id;
    std::string content;
    bool special = false;
    if (!expectObject(entry, path) || !require(entry, path, "id", idValue) ||
        !readId(*idValue, member(path, "id"), id) ||
        !reqString(entry, path, "content", content) ||
        !optBool(entry, path, "special", special))
      return false;
    tok.tokens[id] = {content, special};
  }
  return true;
}

bool Parser::parseRegex(const std::string &pattern, const std::string &path,
                        std::shared_ptr<const Regex> &out) {
  std::string message;
  out = Regex::compile(pattern, message);
  return out ||
         fail(path, "invalid regex " + quoteText(pattern) + " " + message);
}

bool Parser::parsePattern(const Json &obj, const std::string &path,
                          Pattern &out) {
  const Json *pattern;
  if (!require(obj, path, "pattern", pattern))
    return false;
  std::string patternPath = member(path, "pattern");
  if (!expectObject(*pattern, patternPath))
    return false;
  std::string text;
  if (const Json *s = find(*pattern, "String")) {
    if (!readString(*s, member(patternPath, "String"), text))
      return false;
    out = Pattern::literal(text);
    return true;
  }
  if (const Json *r = find(*pattern, "Regex")) {
    std::string regexPath = member(patternPath, "Regex");
    std::shared_ptr<const Regex> re;
    if (!readString(*r, regexPath, text) || !parseRegex(text, regexPath, re))
      return false;
    out = Pattern::regex(std::move(re));
    return true;
  }
  return fail(patternPath, "expected {\"String\": ...} or {\"Regex\": ...}");
}

bool Parser::parseNormalizer(const Json &v, const std::string &path, int depth,
                             std::unique_ptr<Normalizer> &out) {
  std::string type;
  if (!checkNesting(depth, path) || !readType(v, path, type))
    return false;
  if (type == "Sequence")
    return parseSequence<detail::SequenceNormalizer>(
        v, path, "normalizers", depth, &Parser::parseNormalizer, out);
  if (type == "Prepend") {
    std::string prefix;
    if (!reqString(v, path, "prepend", prefix))
      return false;
    out = std::make_unique<detail::PrependNormalizer>(prefix);
    return true;
  }
  if (type == "Replace")
    return parseReplace<detail::ReplaceNormalizer>(v, path, out);
  if (type == "Lowercase") {
    if (!detail::LowercaseNormalizer::utf8Locale())
      return fail(member(path, "type"),
                  "unsupported normalizer 'Lowercase' (this C library has "
                  "no C.UTF-8 locale)");
    out = std::make_unique<detail::LowercaseNormalizer>();
    return true;
  }
  return fail(member(path, "type"),
              "unsupported normalizer " + quoteText(type));
}

bool Parser::parseBehavior(const Json &v, const std::string &path,
                           SplitBehavior &out) {
  std::string name;
  if (!readString(v, path, name))
    return false;
  static const std::pair<std::string_view, SplitBehavior> names[] = {
      {"Removed", SplitBehavior::Removed},
      {"Isolated", SplitBehavior::Isolated},
      {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
      {"MergedWithNext", SplitBehavior::MergedWithNext},
      {"Contiguous", SplitBehavior::Contiguous}};
  for (const auto &[n, behavior] : names)
    if (name == n) {
      out = behavior;
      return true;
    }
  return fail(path, "unknown split behavior " + quoteText(name));
}

/// Metaspace's prepend_scheme, and the older add_prefix_space flag, which
/// must agree with it (false means "never").
bool Parser::parsePrependScheme(const Json &v, const std::string &path,
                                PrependScheme &out) {
  out = PrependScheme::Always;
  std::string scheme = "always";
  if (!optString(v, path, "prepend_scheme", scheme))
    return false;
  if (scheme == "first")
    out = PrependScheme::First;
  else if (scheme == "never")
    out = PrependScheme::Never;
  else if (scheme != "always")
    return fail(member(path, "prepend_scheme"),
                "unknown prepend scheme " + quoteText(scheme));
  bool addPrefixSpace = true;
  if (!optBool(v, path, "add_prefix_space", addPrefixSpace))
    return false;
  if (!addPrefixSpace) {
    if (find(v, "prepend_scheme") && out != PrependScheme::Never)
      return fail(member(path, "add_prefix_space"),
                  "false does not match prepend_scheme " + quoteText(scheme));
    out = PrependScheme::Never;
  }
  return true;
}

bool Parser::parsePreTokenizer(const Json &v, const std::string &path,
                               int depth, std::unique_ptr<PreTokenizer> &out) {
  using detail::SplitPreTokenizer;
  std::string type;
  if (!checkNesting(depth, path) || !readType(v, path, type))
    return false;
  // Splits on a fixed regex (the built-in pre-tokenizers below).
  auto fixedSplit = [&](std::string_view regex, SplitBehavior behavior,
                        bool invert) {
    std::shared_ptr<const Regex> re;
    if (!parseRegex(std::string(regex), member(path, "type"), re))
      return false;
    out = std::make_unique<SplitPreTokenizer>(Pattern::regex(re), behavior,
                                              invert);
    return true;
  };
  if (type == "Sequence")
    return parseSequence<detail::SequencePreTokenizer>(
        v, path, "pretokenizers", depth, &Parser::parsePreTokenizer, out);
  if (type == "Split") {
    Pattern pattern = Pattern::literal("");
    const Json *behaviorValue;
    SplitBehavior behavior;
    bool invert = false;
    if (!parsePattern(v, path, pattern) ||
        !require(v, path, "behavior", behaviorValue) ||
        !parseBehavior(*behaviorValue, member(path, "behavior"), behavior) ||
        !optBool(v, path, "invert", invert))
      return false;
    out = std::make_unique<SplitPreTokenizer>(pattern, behavior, invert);
    return true;
  }
  if (type == "Metaspace") {
    std::string replacement;
    PrependScheme scheme;
    bool split = true;
    if (!readChar(v, path, "replacement", replacement) ||
        !parsePrependScheme(v, path, scheme) ||
        !optBool(v, path, "split", split))
      return false;
    out = std::make_unique<detail::MetaspacePreTokenizer>(replacement, scheme,
                                                          split);
    return true;
  }
  if (type == "ByteLevel") {
    bool addPrefixSpace = true, useRegex = true, trimOffsets = true;
    if (!optBool(v, path, "add_prefix_space", addPrefixSpace) ||
        !optBool(v, path, "use_regex", useRegex) ||
        !optBool(v, path, "trim_offsets", trimOffsets)) // offsets only
      return false;
    std::shared_ptr<const Regex> gpt2;
    if (useRegex && !parseRegex(std::string(detail::gpt2Pattern),
                                member(path, "type"), gpt2))
      return false;
    out = std::make_unique<detail::ByteLevelPreTokenizer>(addPrefixSpace,
                                                          std::move(gpt2));
    return true;
  }
  if (type == "Digits") {
    bool individual = false;
    if (!optBool(v, path, "individual_digits", individual))
      return false;
    return fixedSplit(R"(\p{N})",
                      individual ? SplitBehavior::Isolated
                                 : SplitBehavior::Contiguous,
                      false);
  }
  if (type == "Punctuation") {
    SplitBehavior behavior = SplitBehavior::Isolated;
    if (const Json *b = find(v, "behavior"))
      if (!parseBehavior(*b, member(path, "behavior"), behavior))
        return false;
    // Rust's char::is_ascii_punctuation || char::is_punctuation.
    return fixedSplit(R"([\p{P}\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7E])",
                      behavior, false);
  }
  if (type == "Whitespace")
    return fixedSplit(R"(\w+|[^\w\s]+)", SplitBehavior::Removed, true);
  if (type == "WhitespaceSplit")
    return fixedSplit(R"(\s)", SplitBehavior::Removed, false);
  return fail(member(path, "type"),
              "unsupported pre-tokenizer " + quoteText(type));
}

bool Parser::parseDecoder(const Json &v, const std::string &path, int depth,
                          std::unique_ptr<Decoder> &out) {
  std::string type;
  if (!checkNesting(depth, path) || !readType(v, path, type))
    return false;
  if (type == "Sequence")
    return parseSequence<detail::SequenceDecoder>(
        v, path, "decoders", depth, &Parser::parseDecoder, out);
  if (type == "Replace")
    return parseReplace<detail::ReplaceDecoder>(v, path, out);
  if (type == "ByteFallback") {
    out = std::make_unique<detail::ByteFallbackDecoder>();
    return true;
  }
  if (type == "Fuse") {
    out = std::make_unique<detail::FuseDecoder>();
    return true;
  }
  if (type == "Strip") {
    std::string content;
    const Json *start, *stop;
    uint64_t startCount, stopCount;
    if (!readChar(v, path, "content", content) ||
        !require(v, path, "start", start) ||
        !readUnsigned(*start, member(path, "start"), UINT32_MAX, startCount) ||
        !require(v, path, "stop", stop) ||
        !readUnsigned(*stop, member(path, "stop"), UINT32_MAX, stopCount))
      return false;
    out = std::make_unique<detail::StripDecoder>(
        *detail::singleCodePoint(content), startCount, stopCount);
    return true;
  }
  if (type == "Metaspace") {
    std::string replacement;
    PrependScheme scheme;
    if (!readChar(v, path, "replacement", replacement) ||
        !parsePrependScheme(v, path, scheme))
      return false;
    out = std::make_unique<detail::MetaspaceDecoder>(
        replacement, scheme != PrependScheme::Never);
    return true;
  }
  if (type == "ByteLevel") {
    out = std::make_unique<detail::ByteLevelDecoder>();
    return true;
  }
  if (type == "BPEDecoder") {
    std::string suffix = "</w>";
    if (!optString(v, path, "suffix", suffix))
      return false;
    out = std::make_unique<detail::BPEDecoder>(suffix);
    return true;
  }
  return fail(member(path, "type"), "unsupported decoder " + quoteText(type));
}

bool Parser::checkId(int32_t id, const std::string &path) {
  return tok.tokens.count(id) ||
         fail(path, "id " + std::to_string(id) + " is not in the vocabulary");
}

/// The id of a {"SpecialToken": {"id": NAME}} entry of a TemplateProcessing
/// template: the first of special_tokens[NAME].ids.
bool Parser::resolveTemplateToken(const Json &proc, const std::string &path,
                                  const Json &entry,
                                  const std::string &entryPath, int32_t &out) {
  const Json *special = find(entry, "SpecialToken");
  std::string specialPath = member(entryPath, "SpecialToken");
  std::string name;
  if (!expectObject(*special, specialPath) ||
      !reqString(*special, specialPath, "id", name))
    return false;
  const Json *table;
  std::string tablePath = member(path, "special_tokens");
  if (!require(proc, path, "special_tokens", table) ||
      !expectObject(*table, tablePath))
    return false;
  const Json *tokenInfo = find(*table, name);
  if (!tokenInfo)
    return fail(member(specialPath, "id"),
                quoteText(name) + " is not in " + tablePath);
  std::string infoPath = tablePath + "[" + Json(name).dump() + "]";
  const Json *ids;
  if (!expectObject(*tokenInfo, infoPath) ||
      !require(*tokenInfo, infoPath, "ids", ids) ||
      !expectArray(*ids, member(infoPath, "ids")))
    return false;
  if (ids->empty())
    return fail(member(infoPath, "ids"), "empty");
  std::string idPath = element(member(infoPath, "ids"), 0);
  return readId((*ids)[0], idPath, out) && checkId(out, idPath);
}

bool Parser::parsePostProcessor(const Json &v, const std::string &path,
                                int depth) {
  std::string type;
  if (!checkNesting(depth, path) || !readType(v, path, type))
    return false;
  if (type == "Sequence") {
    const Json *list;
    std::string listPath = member(path, "processors");
    if (!require(v, path, "processors", list) || !expectArray(*list, listPath))
      return false;
    for (size_t i = 0; i < list->size(); ++i)
      if (!parsePostProcessor((*list)[i], element(listPath, i), depth + 1))
        return false;
    return true;
  }
  if (type == "ByteLevel")
    return true; // offsets only
  // The first processor that names special tokens decides BOS/EOS.
  bool decides = !postProcessorNamedSpecials;
  if (type == "TemplateProcessing") {
    const Json *single;
    std::string singlePath = member(path, "single");
    if (!require(v, path, "single", single) ||
        !expectArray(*single, singlePath))
      return false;
    for (size_t i = 0; i < single->size(); ++i) {
      const Json &entry = (*single)[i];
      std::string entryPath = element(singlePath, i);
      if (!expectObject(entry, entryPath))
        return false;
      if (!find(entry, "SpecialToken"))
        continue;
      int32_t id;
      if (!resolveTemplateToken(v, path, entry, entryPath, id))
        return false;
      if (decides && i == 0)
        tok.bos = id;
      else if (decides && i + 1 == single->size())
        tok.eos = id;
    }
    postProcessorNamedSpecials = true;
    return true;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    // "cls": [token, id], "sep": [token, id].
    int32_t ids[2];
    const char *keys[2] = {"cls", "sep"};
    for (int k = 0; k < 2; ++k) {
      const Json *pair;
      std::string pairPath = member(path, keys[k]);
      if (!require(v, path, keys[k], pair) || !expectArray(*pair, pairPath))
        return false;
      if (pair->size() != 2)
        return fail(pairPath, "expected [token, id]");
      if (!readId((*pair)[1], element(pairPath, 1), ids[k]) ||
          !checkId(ids[k], element(pairPath, 1)))
        return false;
    }
    if (decides) {
      tok.bos = ids[0];
      tok.eos = ids[1];
    }
    postProcessorNamedSpecials = true;
    return true;
  }
  return fail(member(path, "type"),
              "unsupported post-processor " + quoteText(type));
}

} // namespace

std::unique_ptr<Tokenizer> parseHFTokenizerJson(std::string_view json,
                                                const std::string &name,
                                                std::string &error) {
  // nlohmann::json reports through exceptions (this file is built with
  // -fexceptions); none may leave the library.
  try {
    Json root;
    try {
      root = Json::parse(json.begin(), json.end());
    } catch (const Json::parse_error &e) {
      error = name + ": JSON syntax error at byte " + std::to_string(e.byte) +
              ": " + e.what();
      return nullptr;
    }
    auto tok = std::make_unique<HFTokenizer>();
    Parser parser(name, *tok);
    if (!parser.parse(root)) {
      error = parser.error;
      return nullptr;
    }
    return tok;
  } catch (const std::exception &e) {
    error = name + ": " + e.what();
    return nullptr;
  }
}

} // namespace nibble::tokenizer
