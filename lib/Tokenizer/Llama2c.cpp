//===- Llama2c.cpp - llama2.c tokenizer files (tok*.bin) ------------------===//
//
// File: int32 max_token_length, then per token: float32 score, int32 length,
// `length` bytes (little-endian, as llama2.c's tokenizer.py writes them).
//
// Encoding follows llama2.c run.c `encode()`: a " " dummy-prefix token for
// non-empty text, each UTF-8 character (a lead byte and at most 3
// continuation bytes) looked up as a vocabulary string, else one byte-token
// id (byte + 3) per byte, then repeated merging of the adjacent pair whose
// concatenation is in the vocabulary with the highest score (leftmost on
// ties; scores <= -1e10 never merge). Deviations, none of which arise with a
// vocabulary exported from SentencePiece: the BOS id takes no part in
// merging; " " missing from the vocabulary gets its byte token instead of
// run.c's -1; a byte-token id outside the vocabulary becomes 0 (<unk>);
// text may contain NUL bytes.
//
//===----------------------------------------------------------------------===//

#include "nibble/Tokenizer/Tokenizer.h"

#include "Support.h"

#include <cstring>
#include <unordered_map>

namespace nibble::tokenizer {
namespace {

/// llama2.c's fixed special ids.
constexpr int32_t llamaBos = 1, llamaEos = 2;
/// run.c's initial best score: pairs scoring no higher never merge.
constexpr float noMergeScore = -1e10f;

class Llama2cTokenizer final : public Tokenizer {
public:
  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores)
      : pieces(std::move(pieces)), scores(std::move(scores)) {
    // Highest id first so that a repeated string maps to its lowest id.
    for (size_t i = this->pieces.size(); i-- > 0;)
      lookupTable[this->pieces[i]] = int32_t(i);
  }

  std::string_view kind() const override { return "llama2c"; }
  int32_t vocabSize() const override { return int32_t(pieces.size()); }
  int32_t bosId() const override {
    return vocabSize() > llamaBos ? llamaBos : -1;
  }
  int32_t eosId() const override {
    return vocabSize() > llamaEos ? llamaEos : -1;
  }
  std::vector<int32_t> encode(std::string_view text,
                              bool addBos) const override;
  std::string decode(const std::vector<int32_t> &ids) const override;
  std::string piece(int32_t id) const override {
    return id >= 0 && id < vocabSize() ? pieces[id] : std::string();
  }

private:
  int32_t lookup(const std::string &s) const {
    auto it = lookupTable.find(s);
    return it == lookupTable.end() ? -1 : it->second;
  }
  /// The ids of `s`: its vocabulary id, else one byte token per byte.
  void appendPiece(const std::string &s, std::vector<int32_t> &ids) const {
    int32_t id = lookup(s);
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
    for (unsigned char b : s)
      ids.push_back(b + 3 < vocabSize() ? b + 3 : 0);
  }

  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::unordered_map<std::string, int32_t> lookupTable;
};

std::vector<int32_t> Llama2cTokenizer::encode(std::string_view text,
                                              bool addBos) const {
  std::vector<int32_t> ids;
  if (!text.empty())
    appendPiece(" ", ids);
  // run.c's character grouping: a byte that is not a continuation byte
  // starts a new character; continuation bytes join it up to 4 bytes.
  std::string character;
  for (size_t i = 0; i < text.size(); ++i) {
    character += text[i];
    bool nextContinues =
        i + 1 < text.size() && (uint8_t(text[i + 1]) & 0xC0) == 0x80;
    if (nextContinues && character.size() < 4)
      continue;
    appendPiece(character, ids);
    character.clear();
  }

  std::string joined;
  detail::mergeAdjacentPairs<float>(
      ids,
      [&](int32_t left,
          int32_t right) -> std::optional<detail::PairMerge<float>> {
        joined = pieces[left];
        joined += pieces[right];
        int32_t id = lookup(joined);
        // Not `<=`: a NaN score must not merge either.
        if (id < 0 || !(scores[id] > noMergeScore))
          return std::nullopt;
        return detail::PairMerge<float>{-scores[id], id};
      });

  if (addBos && bosId() >= 0)
    ids.insert(ids.begin(), llamaBos);
  return ids;
}

std::string Llama2cTokenizer::decode(const std::vector<int32_t> &ids) const {
  std::string text;
  // The dummy-prefix space of the first piece goes: run.c strips it after
  // BOS; SentencePiece (and so this decoder) also at the start of the ids.
  bool atStart = true;
  for (int32_t id : ids) {
    if (id == llamaBos)
      atStart = true;
    if (id < 0 || id >= vocabSize() || id == llamaBos || id == llamaEos)
      continue;
    std::string_view p = pieces[id];
    if (atStart && !p.empty() && p[0] == ' ')
      p.remove_prefix(1);
    atStart = false;
    int byte = detail::byteTokenValue(p);
    if (byte >= 0)
      text += char(byte);
    else
      text += p;
  }
  return text;
}

uint32_t readU32(const uint8_t *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
         uint32_t(p[3]) << 24;
}

} // namespace

std::unique_ptr<Tokenizer> parseLlama2cTokenizer(const uint8_t *data,
                                                 size_t size, int32_t vocabSize,
                                                 const std::string &name,
                                                 std::string &error) {
  if (size < 4) {
    error = name +
            ": truncated header: max_token_length needs 4 bytes at "
            "byte offset 0, the file has " +
            std::to_string(size);
    return nullptr;
  }
  int32_t maxTokenLength = int32_t(readU32(data));
  if (maxTokenLength < 0) {
    error = name + ": max_token_length " + std::to_string(maxTokenLength) +
            " at byte offset 0 is negative";
    return nullptr;
  }

  std::vector<std::string> pieces;
  std::vector<float> scores;
  size_t offset = 4;
  for (int32_t index = 0; vocabSize < 0 ? offset < size : index < vocabSize;
       ++index) {
    std::string where = name + ": token " + std::to_string(index) +
                        " at byte offset " + std::to_string(offset) + ": ";
    if (size - offset < 8) {
      error = where + "truncated: score and length need 8 bytes, " +
              std::to_string(size - offset) + " left in the file (size " +
              std::to_string(size) + ")";
      return nullptr;
    }
    float score;
    uint32_t scoreBits = readU32(data + offset);
    std::memcpy(&score, &scoreBits, sizeof score);
    int32_t length = int32_t(readU32(data + offset + 4));
    if (length < 0) {
      error = where + "length " + std::to_string(length) + " is negative";
      return nullptr;
    }
    if (length > maxTokenLength) {
      error = where + "length " + std::to_string(length) +
              " exceeds max_token_length " + std::to_string(maxTokenLength);
      return nullptr;
    }
    if (size_t(length) > size - offset - 8) {
      error = where + "truncated: the " + std::to_string(length) +
              "-byte string runs past the end of the file (size " +
              std::to_string(size) + ")";
      return nullptr;
    }
    pieces.emplace_back(reinterpret_cast<const char *>(data + offset + 8),
                        size_t(length));
    scores.push_back(score);
    offset += 8 + size_t(length);
  }
  if (pieces.empty()) {
    error = name + ": no tokens after the 4-byte header";
    return nullptr;
  }
  return std::make_unique<Llama2cTokenizer>(std::move(pieces),
                                            std::move(scores));
}

} // namespace nibble::tokenizer
