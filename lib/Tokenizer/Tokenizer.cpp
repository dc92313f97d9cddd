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

std::string resolveTokenizerFile(const std::string &path, std::string &error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    return path;
  fs::path dir(path);
  for (const char *name : {"tokenizer.json", "tokenizer.model"})
    if (fs::exists(dir / name, ec))
      return (dir / name).string();
  error = path + ": directory has neither tokenizer.json nor "
                 "tokenizer.model";
  return "";
}

std::unique_ptr<Tokenizer> loadTokenizer(const std::string &path,
                                         std::string &error) {
  namespace fs = std::filesystem;
  std::string file = resolveTokenizerFile(path, error);
  if (file.empty())
    return nullptr;

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
