//===- SentencePiece.cpp - SentencePiece models through libsentencepiece --===//

#include "nibble/Tokenizer/Tokenizer.h"

#include "Support.h"
#include "nibble/Support/File.h"

#include <sentencepiece_processor.h>

namespace nibble::tokenizer {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
public:
  explicit SentencePieceTokenizer(
      std::unique_ptr<sentencepiece::SentencePieceProcessor> processor)
      : processor(std::move(processor)) {}

  std::string_view kind() const override { return "sentencepiece"; }
  int32_t vocabSize() const override { return processor->GetPieceSize(); }
  int32_t bosId() const override { return processor->bos_id(); }
  int32_t eosId() const override { return processor->eos_id(); }

  std::vector<int32_t> encode(std::string_view text,
                              bool addBos) const override {
    std::vector<int> ids;
    // Encoding fails only on an uninitialized processor.
    if (!processor->Encode(text, &ids).ok())
      ids.clear();
    if (addBos && bosId() >= 0)
      ids.insert(ids.begin(), bosId());
    return std::vector<int32_t>(ids.begin(), ids.end());
  }

  std::string decode(const std::vector<int32_t> &ids) const override {
    // SentencePiece rejects the whole list for one id out of range.
    std::vector<int> valid;
    for (int32_t id : ids)
      if (id >= 0 && id < vocabSize())
        valid.push_back(id);
    std::string text;
    if (!processor->Decode(valid, &text).ok())
      text.clear();
    return text;
  }

  std::string piece(int32_t id) const override {
    return id >= 0 && id < vocabSize() ? processor->IdToPiece(id)
                                       : std::string();
  }

private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor;
};

} // namespace

std::unique_ptr<Tokenizer> loadSentencePiece(const std::string &path,
                                             std::string &error) {
  std::string bytes;
  if (!support::readFile(path, bytes, error))
    return nullptr;
  auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
  sentencepiece::util::Status status =
      processor->LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    error = path + ": not a valid SentencePiece model: " + status.ToString();
    return nullptr;
  }
  return std::make_unique<SentencePieceTokenizer>(std::move(processor));
}

} // namespace nibble::tokenizer
