//===- Tokenizer.h - Text <-> token ids (plain C++, no MLIR) --------------===//
//
// One interface over the three tokenizer files Nibble reads:
//   - SentencePiece models (`*.model`), through the sentencepiece library;
//   - llama2.c tokenizer files (`tok*.bin`: int32 max_token_length, then per
//     token: float score, int32 length, bytes), encoded as llama2.c does
//     (dummy-prefix space, code-point lookup, byte-fallback ids `<0xXX>`,
//     then repeated merge of the best-scoring adjacent pair);
//   - Hugging Face `tokenizer.json` with a BPE model, following the file's
//     own normalizer, pre-tokenizer, model options and decoder.
//
// Every loader reports a malformed file as an error that names the file and
// the byte offset or JSON path, and what was expected; nothing throws out of
// this library.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_TOKENIZER_TOKENIZER_H
#define NIBBLE_TOKENIZER_TOKENIZER_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::tokenizer {

class Tokenizer {
public:
  virtual ~Tokenizer();

  /// "sentencepiece", "llama2c" or "hf-bpe".
  virtual std::string_view kind() const = 0;
  virtual int32_t vocabSize() const = 0;
  /// Special ids, or -1 when the file defines none.
  virtual int32_t bosId() const = 0;
  virtual int32_t eosId() const = 0;

  /// Token ids of `text`, with the BOS id first when `addBos` and the
  /// tokenizer has one. Special-token strings inside `text` are plain text.
  virtual std::vector<int32_t> encode(std::string_view text,
                                      bool addBos) const = 0;
  /// The text of `ids` (BOS/EOS and other control tokens produce nothing).
  /// Ids outside [0, vocabSize) produce nothing.
  virtual std::string decode(const std::vector<int32_t> &ids) const = 0;
  /// The vocabulary string of one id as stored in the file (for dumps).
  virtual std::string piece(int32_t id) const = 0;
  /// The words the model encodes one by one (for tests and dumps): for a
  /// Hugging Face tokenizer, the output of the file's normalizer and
  /// pre-tokenizer (ByteLevel words spelled in its byte alphabet); the other
  /// kinds have no pre-tokenizer and give the whole text as one word (none
  /// for empty text).
  virtual std::vector<std::string> preTokenize(std::string_view text) const;
};

/// The file loadTokenizer reads for `path`: a directory's tokenizer.json,
/// else its tokenizer.model; any other path as is. "" and `error` for a
/// directory with neither.
std::string resolveTokenizerFile(const std::string &path, std::string &error);

/// Opens a tokenizer by path: a directory (uses its tokenizer.json, else
/// tokenizer.model), `*.json` (Hugging Face), `*.model` (SentencePiece), or
/// any other file as a llama2.c tokenizer. Null and `error` set on failure.
std::unique_ptr<Tokenizer> loadTokenizer(const std::string &path,
                                         std::string &error);

/// Parsers over bytes already in memory (also the fuzz entry points).
/// `name` is used in error messages. For llama2.c files `vocabSize` < 0
/// reads entries until the end of the data; otherwise exactly `vocabSize`
/// entries are read and any bytes after them are ignored (as llama2.c does).
std::unique_ptr<Tokenizer> parseLlama2cTokenizer(const uint8_t *data,
                                                 size_t size,
                                                 int32_t vocabSize,
                                                 const std::string &name,
                                                 std::string &error);
std::unique_ptr<Tokenizer> parseHFTokenizerJson(std::string_view json,
                                                const std::string &name,
                                                std::string &error);
std::unique_ptr<Tokenizer> loadSentencePiece(const std::string &path,
                                             std::string &error);

} // namespace nibble::tokenizer

#endif // NIBBLE_TOKENIZER_TOKENIZER_H
