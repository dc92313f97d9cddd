//===- Regex.cpp - PCRE2 regular expressions for tokenizer patterns -------===//

#include "Regex.h"

#include "Support.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace nibble::tokenizer::detail {

std::unique_ptr<Regex> Regex::compile(std::string_view pattern,
                                      std::string &error) {
  int errorCode = 0;
  PCRE2_SIZE errorOffset = 0;
  pcre2_code *code = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &errorCode, &errorOffset,
      nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(errorCode, message, sizeof message);
    error = "at offset " + std::to_string(errorOffset) + ": " +
            reinterpret_cast<const char *>(message);
    return nullptr;
  }
  // JIT is only a speed-up: without it (unsupported build) the interpreter
  // gives the same matches.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<Regex>(new Regex(code));
}

Regex::~Regex() { pcre2_code_free(code); }

std::vector<std::pair<size_t, size_t>>
Regex::findAll(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  pcre2_match_data *data = pcre2_match_data_create_from_pattern(code, nullptr);
  if (!data)
    return matches;
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  bool haveLastEnd = false;
  size_t lastEnd = 0;
  while (start <= text.size()) {
    int rc = pcre2_match(code, subject, text.size(), start, 0, data, nullptr);
    // A deep match can exhaust the JIT stack where the interpreter (heap
    // frames) succeeds.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_JIT, data,
                       nullptr);
    if (rc < 0)
      break;
    PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(data);
    size_t begin = ovector[0], end = ovector[1];
    if (begin == end && haveLastEnd && lastEnd == end) {
      if (start == text.size())
        break;
      start += utf8CharLength(text.substr(start));
      continue;
    }
    matches.emplace_back(begin, end);
    haveLastEnd = true;
    lastEnd = end;
    start = end;
  }
  pcre2_match_data_free(data);
  return matches;
}

} // namespace nibble::tokenizer::detail
