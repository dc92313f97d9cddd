// libFuzzer target: llama2.c checkpoint loading.
#include "nibble/Model/Model.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto file = nibble::model::MappedFile::fromMemory("fuzz.bin", data, size);
  std::string error;
  auto m = nibble::model::Model::fromLlama2c(file, error);
  if (!m) {
    if (error.empty())
      std::abort();
    return 0;
  }
  // Every view lies inside the input.
  for (const auto &[name, t] : m->tensors())
    if (t.fileOffset + t.nbytes > size)
      std::abort();
  return 0;
}
