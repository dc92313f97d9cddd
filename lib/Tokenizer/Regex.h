//===- Regex.h - PCRE2 regular expressions for tokenizer patterns -*- C++ -*-=//
//
// Hugging Face tokenizers run their Split/Replace patterns with Oniguruma;
// PCRE2 in UTF + UCP mode accepts the same patterns (\p{L}, \p{N}, (?!\S),
// (?i:...)) with the same Unicode meaning. Not installed; lib/Tokenizer only.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_TOKENIZER_REGEX_H
#define NIBBLE_LIB_TOKENIZER_REGEX_H

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace nibble::tokenizer::detail {

class Regex {
public:
  /// Compiles `pattern` in UTF + UCP mode; ill-formed UTF-8 in a subject
  /// never matches. Null and `error` ("at offset N: message") on failure.
  static std::unique_ptr<Regex> compile(std::string_view pattern,
                                        std::string &error);
  ~Regex();
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;

  /// The [begin, end) byte ranges of the successive matches in `text`, left
  /// to right, iterated as Oniguruma's find_iter does in Hugging Face
  /// tokenizers: an empty match right where the previous match ended is
  /// skipped by moving on one character. A match that fails on a PCRE2
  /// resource limit ends the iteration.
  std::vector<std::pair<size_t, size_t>> findAll(std::string_view text) const;

private:
  explicit Regex(pcre2_real_code_8 *code) : code(code) {}
  pcre2_real_code_8 *code;
};

} // namespace nibble::tokenizer::detail

#endif // NIBBLE_LIB_TOKENIZER_REGEX_H
