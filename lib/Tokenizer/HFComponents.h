//===- HFComponents.h - tokenizer.json pipeline stages ---------*- C++ -*-===//
//
// The normalizers, pre-tokenizers and decoders of a Hugging Face
// tokenizer.json, each doing what the `tokenizers` crate's component of the
// same name does (offsets aside: Nibble needs only the text). Built by
// HFTokenizer.cpp from the JSON. Not installed; lib/Tokenizer only.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_TOKENIZER_HFCOMPONENTS_H
#define NIBBLE_LIB_TOKENIZER_HFCOMPONENTS_H

#include "Regex.h"

#include <cstdint>
#include <locale.h>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nibble::tokenizer::detail {

/// A Split/Replace pattern: a literal string or a regex.
class Pattern {
public:
  static Pattern literal(std::string text) {
    Pattern p;
    p.text = std::move(text);
    return p;
  }
  static Pattern regex(std::shared_ptr<const Regex> re) {
    Pattern p;
    p.re = std::move(re);
    return p;
  }
  /// The [begin, end) byte ranges of the matches, left to right. An empty
  /// literal matches nowhere (as in `tokenizers`).
  std::vector<std::pair<size_t, size_t>> findMatches(std::string_view s) const;
  /// `s` with every match replaced by `content` (taken literally).
  std::string replaceAll(std::string_view s, std::string_view content) const;

private:
  Pattern() = default;
  std::string text;
  std::shared_ptr<const Regex> re;
};

//===----------------------------------------------------------------------===//
// Normalizers: whole-text rewrites before pre-tokenization
//===----------------------------------------------------------------------===//

class Normalizer {
public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string &text) const = 0;
};

class SequenceNormalizer final : public Normalizer {
public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps(std::move(steps)) {}
  void normalize(std::string &text) const override;

private:
  std::vector<std::unique_ptr<Normalizer>> steps;
};

/// Prepends a string to non-empty text.
class PrependNormalizer final : public Normalizer {
public:
  explicit PrependNormalizer(std::string prefix) : prefix(std::move(prefix)) {}
  void normalize(std::string &text) const override;

private:
  std::string prefix;
};

class ReplaceNormalizer final : public Normalizer {
public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern(std::move(pattern)), content(std::move(content)) {}
  void normalize(std::string &text) const override;

private:
  Pattern pattern;
  std::string content;
};

/// Per-character Unicode lowercase (Rust's `char::to_lowercase`): glibc's
/// simple mapping from the C.UTF-8 locale, plus U+0130 -> "i\u0307", the one
/// character whose lowercase is two characters.
class LowercaseNormalizer final : public Normalizer {
public:
  /// The C.UTF-8 ctype locale, or null where the C library lacks it.
  static locale_t utf8Locale();
  void normalize(std::string &text) const override;
};

//===----------------------------------------------------------------------===//
// Pre-tokenizers: split the normalized text into words
//===----------------------------------------------------------------------===//

/// One word of the pre-tokenized text. `atStart`: the word begins at the
/// start of the normalized text (Metaspace's prepend_scheme "first").
struct Piece {
  std::string text;
  bool atStart;
};

/// How a split keeps the delimiters (the `tokenizers` SplitDelimiterBehavior).
enum class SplitBehavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous
};

class PreTokenizer {
public:
  virtual ~PreTokenizer() = default;
  /// Replaces every piece by the pieces it splits into; empty pieces are
  /// dropped.
  virtual void preTokenize(std::vector<Piece> &pieces) const = 0;
};

class SequencePreTokenizer final : public PreTokenizer {
public:
  explicit SequencePreTokenizer(
      std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps(std::move(steps)) {}
  void preTokenize(std::vector<Piece> &pieces) const override;

private:
  std::vector<std::unique_ptr<PreTokenizer>> steps;
};

/// Split, and also Digits, Punctuation, Whitespace and WhitespaceSplit, which
/// are splits on a fixed pattern.
class SplitPreTokenizer final : public PreTokenizer {
public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern(std::move(pattern)), behavior(behavior), invert(invert) {}
  void preTokenize(std::vector<Piece> &pieces) const override;

private:
  Pattern pattern;
  SplitBehavior behavior;
  bool invert;
};

enum class PrependScheme { Always, First, Never };

/// Replaces ' ' by the replacement character, prepends it per the scheme and
/// optionally splits before each replacement character.
class MetaspacePreTokenizer final : public PreTokenizer {
public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme,
                        bool split)
      : replacement(std::move(replacement)), scheme(scheme), split(split) {}
  void preTokenize(std::vector<Piece> &pieces) const override;

private:
  std::string replacement;
  PrependScheme scheme;
  bool split;
};

/// Optionally prefixes a space, splits with the GPT-2 regex, then maps
/// every byte to its byte-level character.
class ByteLevelPreTokenizer final : public PreTokenizer {
public:
  ByteLevelPreTokenizer(bool addPrefixSpace, std::shared_ptr<const Regex> gpt2)
      : addPrefixSpace(addPrefixSpace), gpt2(std::move(gpt2)) {}
  void preTokenize(std::vector<Piece> &pieces) const override;

private:
  bool addPrefixSpace;
  std::shared_ptr<const Regex> gpt2; ///< Null when use_regex is false.
};

/// The GPT-2 pre-tokenization regex ByteLevel uses.
inline constexpr std::string_view gpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

//===----------------------------------------------------------------------===//
// Decoders: token strings back to text
//===----------------------------------------------------------------------===//

class Decoder {
public:
  virtual ~Decoder() = default;
  /// Rewrites the token strings (`decode_chain`); the decoded text is their
  /// concatenation after the last decoder.
  virtual void decode(std::vector<std::string> &tokens) const = 0;
};

class SequenceDecoder final : public Decoder {
public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps(std::move(steps)) {}
  void decode(std::vector<std::string> &tokens) const override;

private:
  std::vector<std::unique_ptr<Decoder>> steps;
};

class ReplaceDecoder final : public Decoder {
public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern(std::move(pattern)), content(std::move(content)) {}
  void decode(std::vector<std::string> &tokens) const override;

private:
  Pattern pattern;
  std::string content;
};

/// Runs of `<0xXX>` tokens become their bytes when those form valid UTF-8,
/// else one U+FFFD per byte token.
class ByteFallbackDecoder final : public Decoder {
public:
  void decode(std::vector<std::string> &tokens) const override;
};

/// Concatenates all tokens into one.
class FuseDecoder final : public Decoder {
public:
  void decode(std::vector<std::string> &tokens) const override;
};

/// Removes up to `start` leading and `stop` trailing `content` characters
/// from every token.
class StripDecoder final : public Decoder {
public:
  StripDecoder(uint32_t content, size_t start, size_t stop)
      : content(content), start(start), stop(stop) {}
  void decode(std::vector<std::string> &tokens) const override;

private:
  uint32_t content;
  size_t start, stop;
};

/// The replacement character becomes ' ', except in the first token, where
/// it is dropped unless the prepend scheme is "never".
class MetaspaceDecoder final : public Decoder {
public:
  MetaspaceDecoder(std::string replacement, bool dropInFirstToken)
      : replacement(std::move(replacement)),
        dropInFirstToken(dropInFirstToken) {}
  void decode(std::vector<std::string> &tokens) const override;

private:
  std::string replacement;
  bool dropInFirstToken;
};

/// Byte-level characters back to bytes (a token with any other character is
/// kept as it is), all tokens fused, ill-formed UTF-8 replaced by U+FFFD.
class ByteLevelDecoder final : public Decoder {
public:
  void decode(std::vector<std::string> &tokens) const override;
};

/// The end-of-word suffix becomes ' ' (nothing in the last token).
class BPEDecoder final : public Decoder {
public:
  explicit BPEDecoder(std::string suffix) : suffix(std::move(suffix)) {}
  void decode(std::vector<std::string> &tokens) const override;

private:
  std::string suffix;
};

} // namespace nibble::tokenizer::detail

#endif // NIBBLE_LIB_TOKENIZER_HFCOMPONENTS_H
