// libFuzzer target: Hugging Face tokenizer.json, then encode/decode with it.
#include "nibble/Tokenizer/Tokenizer.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string error;
  std::string_view json(reinterpret_cast<const char *>(data), size);
  auto tok = nibble::tokenizer::parseHFTokenizerJson(json, "tokenizer.json", error);
  if (!tok) {
    if (error.empty())
      std::abort();
    return 0;
  }
  auto ids = tok->encode("Hello world, it's 2024!\n caf\xc3\xa9", true);
  for (int32_t id : ids)
    if (id < 0 || id >= tok->vocabSize())
      std::abort();
  (void)tok->decode(ids);
  return 0;
}
