//===- Json.h - nlohmann::json parsing that never throws (internal) -------===//
//
// nlohmann::json reports malformed text with exceptions of several types:
// parse_error (with a byte position) but also out_of_range, e.g. for a number
// too large for a double. Every loader parses through parseJsonText so that
// none of them can escape.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_MODEL_JSON_H
#define NIBBLE_LIB_MODEL_JSON_H

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace nibble::model::detail {

/// Parses `text` into `out`. On malformed text returns false with the
/// parser's message in `what` and, when the parser names one, the 0-based
/// offset of the problem within `text` in `offset`.
inline bool parseJsonText(std::string_view text, nlohmann::json &out,
                          std::string &what, std::optional<uint64_t> &offset) {
  offset.reset();
  try {
    out = nlohmann::json::parse(text.begin(), text.end());
    return true;
  } catch (const nlohmann::json::parse_error &e) {
    what = e.what();
    offset = e.byte > 0 ? e.byte - 1 : 0; // e.byte is 1-based
  } catch (const nlohmann::json::exception &e) {
    what = e.what();
  }
  return false;
}

} // namespace nibble::model::detail

#endif // NIBBLE_LIB_MODEL_JSON_H
