// libFuzzer target: the safetensors header parser and validator.
#include "nibble/Model/Safetensors.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string error;
  auto h = nibble::model::parseSafetensors(data, size, "fuzz.safetensors", error);
  if (!h) {
    if (error.empty())
      std::abort(); // every rejection must say why
    return 0;
  }
  // An accepted header describes bytes inside the input, without overlap.
  uint64_t cursor = 0;
  for (const auto &e : h->entries) {
    if (e.begin != cursor || e.end < e.begin ||
        h->dataOffset() + e.end > size)
      std::abort();
    cursor = e.end;
  }
  return 0;
}
