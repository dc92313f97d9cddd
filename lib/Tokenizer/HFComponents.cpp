//===- HFComponents.cpp - tokenizer.json pipeline stages ------------------===//

#include "HFComponents.h"

#include "Support.h"

#include <algorithm>
#include <wctype.h>

namespace nibble::tokenizer::detail {

std::vector<std::pair<size_t, size_t>>
Pattern::findMatches(std::string_view s) const {
  if (re)
    return re->findAll(s);
  std::vector<std::pair<size_t, size_t>> matches;
  if (text.empty())
    return matches;
  for (size_t at = s.find(text); at != std::string_view::npos;
       at = s.find(text, at + text.size()))
    matches.emplace_back(at, at + text.size());
  return matches;
}

std::string Pattern::replaceAll(std::string_view s,
                                std::string_view content) const {
  std::string out;
  size_t last = 0;
  for (auto [begin, end] : findMatches(s)) {
    out.append(s.substr(last, begin - last));
    out.append(content);
    last = end;
  }
  out.append(s.substr(last));
  return out;
}

//===----------------------------------------------------------------------===//
// Normalizers
//===----------------------------------------------------------------------===//

void SequenceNormalizer::normalize(std::string &text) const {
  for (const auto &step : steps)
    step->normalize(text);
}

void PrependNormalizer::normalize(std::string &text) const {
  if (!text.empty())
    text.insert(0, prefix);
}

void ReplaceNormalizer::normalize(std::string &text) const {
  text = pattern.replaceAll(text, content);
}

locale_t LowercaseNormalizer::utf8Locale() {
  static const locale_t locale =
      newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return locale;
}

void LowercaseNormalizer::normalize(std::string &text) const {
  locale_t locale = utf8Locale();
  std::string out;
  out.reserve(text.size());
  std::string_view s = text;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8SequenceLength(s.substr(i));
    if (n == 0) { // not UTF-8: kept as it is
      out += s[i++];
      continue;
    }
    uint32_t cp = decodeUtf8(s.substr(i), n);
    if (cp == 0x130) // LATIN CAPITAL LETTER I WITH DOT ABOVE
      out += "i\xCC\x87";
    else
      appendUtf8(out, uint32_t(towlower_l(wint_t(cp), locale)));
    i += n;
  }
  text = std::move(out);
}

//===----------------------------------------------------------------------===//
// Pre-tokenizers
//===----------------------------------------------------------------------===//

namespace {

struct Segment {
  size_t begin, end;
  bool isMatch;
};

/// The text cut into alternating non-matching and matching segments (the
/// `tokenizers` Pattern::find_matches), with the flags flipped by `invert`.
std::vector<Segment> segmentsOf(const Pattern &pattern, std::string_view text,
                                bool invert) {
  std::vector<Segment> segments;
  size_t last = 0;
  for (auto [begin, end] : pattern.findMatches(text)) {
    if (begin != last)
      segments.push_back({last, begin, false});
    segments.push_back({begin, end, true});
    last = end;
  }
  if (last != text.size())
    segments.push_back({last, text.size(), false});
  if (invert)
    for (Segment &s : segments)
      s.isMatch = !s.isMatch;
  return segments;
}

/// Appends the parts of `piece` that `behavior` makes from `segments`
/// (NormalizedString::split); empty parts are dropped.
void splitPiece(const Piece &piece, const std::vector<Segment> &segments,
                SplitBehavior behavior, std::vector<Piece> &out) {
  struct Part {
    size_t begin, end;
    bool remove;
  };
  std::vector<Part> parts;
  bool previousMatch = false;
  switch (behavior) {
  case SplitBehavior::Isolated:
    for (const Segment &s : segments)
      parts.push_back({s.begin, s.end, false});
    break;
  case SplitBehavior::Removed:
    for (const Segment &s : segments)
      parts.push_back({s.begin, s.end, s.isMatch});
    break;
  case SplitBehavior::Contiguous:
    for (const Segment &s : segments) {
      if (s.isMatch == previousMatch && !parts.empty())
        parts.back().end = s.end;
      else
        parts.push_back({s.begin, s.end, false});
      previousMatch = s.isMatch;
    }
    break;
  case SplitBehavior::MergedWithPrevious:
    for (const Segment &s : segments) {
      if (s.isMatch && !previousMatch && !parts.empty())
        parts.back().end = s.end;
      else
        parts.push_back({s.begin, s.end, false});
      previousMatch = s.isMatch;
    }
    break;
  case SplitBehavior::MergedWithNext:
    for (auto s = segments.rbegin(); s != segments.rend(); ++s) {
      if (s->isMatch && !previousMatch && !parts.empty())
        parts.back().begin = s->begin;
      else
        parts.push_back({s->begin, s->end, false});
      previousMatch = s->isMatch;
    }
    std::reverse(parts.begin(), parts.end());
    break;
  }
  for (const Part &p : parts)
    if (!p.remove && p.end > p.begin)
      out.push_back({piece.text.substr(p.begin, p.end - p.begin),
                     piece.atStart && p.begin == 0});
}

/// Applies `split` to every piece, collecting the parts in order.
template <typename SplitOne>
void splitEach(std::vector<Piece> &pieces, const SplitOne &split) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (Piece &piece : pieces)
    split(piece, out);
  pieces = std::move(out);
}

} // namespace

void SequencePreTokenizer::preTokenize(std::vector<Piece> &pieces) const {
  for (const auto &step : steps)
    step->preTokenize(pieces);
}

void SplitPreTokenizer::preTokenize(std::vector<Piece> &pieces) const {
  splitEach(pieces, [&](Piece &piece, std::vector<Piece> &out) {
    splitPiece(piece, segmentsOf(pattern, piece.text, invert), behavior, out);
  });
}

void MetaspacePreTokenizer::preTokenize(std::vector<Piece> &pieces) const {
  Pattern space = Pattern::literal(" ");
  Pattern delimiter = Pattern::literal(replacement);
  splitEach(pieces, [&](Piece &piece, std::vector<Piece> &out) {
    piece.text = space.replaceAll(piece.text, replacement);
    bool startsWithReplacement =
        std::string_view(piece.text).substr(0, replacement.size()) ==
        replacement;
    if (!startsWithReplacement &&
        (scheme == PrependScheme::Always ||
         (scheme == PrependScheme::First && piece.atStart)))
      piece.text.insert(0, replacement);
    if (split)
      splitPiece(piece, segmentsOf(delimiter, piece.text, false),
                 SplitBehavior::MergedWithNext, out);
    else if (!piece.text.empty())
      out.push_back(std::move(piece));
  });
}

void ByteLevelPreTokenizer::preTokenize(std::vector<Piece> &pieces) const {
  splitEach(pieces, [&](Piece &piece, std::vector<Piece> &out) {
    if (addPrefixSpace && piece.text.compare(0, 1, " ") != 0)
      piece.text.insert(0, " ");
    size_t first = out.size();
    if (gpt2) {
      splitPiece(piece, segmentsOf(Pattern::regex(gpt2), piece.text, false),
                 SplitBehavior::Isolated, out);
    } else if (!piece.text.empty()) {
      out.push_back(std::move(piece));
    }
    for (size_t i = first; i < out.size(); ++i) {
      std::string mapped;
      mapped.reserve(out[i].text.size() * 2);
      for (unsigned char b : out[i].text)
        mapped += byteLevelChar(b);
      out[i].text = std::move(mapped);
    }
  });
}

//===----------------------------------------------------------------------===//
// Decoders
//===----------------------------------------------------------------------===//

void SequenceDecoder::decode(std::vector<std::string> &tokens) const {
  for (const auto &step : steps)
    step->decode(tokens);
}

void ReplaceDecoder::decode(std::vector<std::string> &tokens) const {
  for (std::string &token : tokens)
    token = pattern.replaceAll(token, content);
}

void ByteFallbackDecoder::decode(std::vector<std::string> &tokens) const {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  std::string bytes; // the pending run of byte tokens
  size_t byteTokens = 0;
  auto flush = [&] {
    if (byteTokens == 0)
      return;
    if (isValidUtf8(bytes))
      out.push_back(bytes);
    else
      out.insert(out.end(), byteTokens, "\xEF\xBF\xBD"); // U+FFFD each
    bytes.clear();
    byteTokens = 0;
  };
  for (std::string &token : tokens) {
    int byte = byteTokenValue(token);
    if (byte >= 0) {
      bytes += char(byte);
      ++byteTokens;
    } else {
      flush();
      out.push_back(std::move(token));
    }
  }
  flush();
  tokens = std::move(out);
}

void FuseDecoder::decode(std::vector<std::string> &tokens) const {
  std::string fused;
  for (const std::string &token : tokens)
    fused += token;
  tokens.assign(1, std::move(fused));
}

void StripDecoder::decode(std::vector<std::string> &tokens) const {
  for (std::string &token : tokens) {
    // Character boundaries (ill-formed bytes count as one character each).
    std::vector<size_t> bounds{0};
    std::string_view s = token;
    for (size_t i = 0; i < s.size();)
      bounds.push_back(i += utf8CharLength(s.substr(i)));
    size_t chars = bounds.size() - 1;
    auto isContent = [&](size_t c) {
      std::string_view ch = s.substr(bounds[c], bounds[c + 1] - bounds[c]);
      return singleCodePoint(ch) == content;
    };
    size_t startCut = 0;
    while (startCut < std::min(start, chars) && isContent(startCut))
      ++startCut;
    size_t stopCut = chars;
    while (chars - stopCut < stop && stopCut > startCut &&
           isContent(stopCut - 1))
      --stopCut;
    token = token.substr(bounds[startCut], bounds[stopCut] - bounds[startCut]);
  }
}

void MetaspaceDecoder::decode(std::vector<std::string> &tokens) const {
  Pattern pattern = Pattern::literal(replacement);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] =
        pattern.replaceAll(tokens[i], i == 0 && dropInFirstToken ? "" : " ");
}

void ByteLevelDecoder::decode(std::vector<std::string> &tokens) const {
  std::string bytes;
  for (const std::string &token : tokens) {
    std::string mapped;
    bool allByteLevel = true;
    std::string_view s = token;
    for (size_t i = 0; i < s.size() && allByteLevel;) {
      size_t n = utf8SequenceLength(s.substr(i));
      int b = n ? byteLevelByte(decodeUtf8(s.substr(i), n)) : -1;
      if (b < 0)
        allByteLevel = false;
      else
        mapped += char(b);
      i += n;
    }
    bytes += allByteLevel ? mapped : token;
  }
  tokens.assign(1, utf8Lossy(bytes));
}

void BPEDecoder::decode(std::vector<std::string> &tokens) const {
  if (suffix.empty())
    return;
  Pattern pattern = Pattern::literal(suffix);
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] =
        pattern.replaceAll(tokens[i], i + 1 == tokens.size() ? "" : " ");
}

} // namespace nibble::tokenizer::detail
