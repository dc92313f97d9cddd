// libFuzzer target: llama2.c tokenizer files, then encode/decode with them.
#include "nibble/Tokenizer/Tokenizer.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string error;
  auto tok = nibble::tokenizer::parseLlama2cTokenizer(data, size, -1,
                                                      "fuzz.bin", error);
  if (!tok) {
    if (error.empty())
      std::abort();
    return 0;
  }
  auto ids = tok->encode("Once upon a time, caf\xc3\xa9 \xf0\x9f\x98\x80!", true);
  for (int32_t id : ids)
    if (id < 0 || id >= tok->vocabSize())
      std::abort();
  (void)tok->decode(ids);
  return 0;
}
