//===- Tokenizer.cpp - Tokenizer base and loading by path -----------------===//

#include "nibble/Tokenizer/Tokenizer.h"

#include "Support.h"
#include "nibble/Support/File.h"

#include <filesystem>

namespace nibble::tokenizer {

Tokenizer::~Tokenizer() = default;

std::vector<std::string> Tokenizer::preTokenize(std::string_view text) const {
  if (text.empty())
    return {};
  return {std::string(text)};
}

std::unique_ptr<Tokenizer> loadTokenizer(const std::string &path,
                                         std::string &error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string file = path;
  if (fs::is_directory(path, ec)) {
    fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec))
      file = (dir / "tokenizer.json").string();
    else if (fs::exists(dir / "tokenizer.model", ec))
      file = (dir / "tokenizer.model").string();
    else {
      error = path + ": directory has neither tokenizer.json nor "
                     "tokenizer.model";
      return nullptr;
    }
  }

  std::string extension = fs::path(file).extension().string();
  if (extension == ".model")
    return loadSentencePiece(file, error);
  std::string bytes;
  if (!support::readFile(file, bytes, error))
    return nullptr;
  if (extension == ".json")
    return parseHFTokenizerJson(bytes, file, error);
  return parseLlama2cTokenizer(reinterpret_cast<const uint8_t *>(bytes.data()),
                               bytes.size(), -1, file, error);
}

} // namespace nibble::tokenizer
