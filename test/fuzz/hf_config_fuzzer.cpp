// libFuzzer target: Hugging Face config.json parsing and validation.
#include "nibble/Model/Model.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size), error;
  nibble::model::LlamaConfig config;
  if (nibble::model::Model::parseHFConfig(text, "config.json", config, error)) {
    // An accepted config is consistent.
    std::string why;
    if (!config.validate(why) || config.ropeInverseFrequencies().size() !=
                                     size_t(config.headDim / 2))
      std::abort();
  } else if (error.empty()) {
    std::abort();
  }
  return 0;
}
