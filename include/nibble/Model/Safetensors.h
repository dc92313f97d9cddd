//===- Safetensors.h - Validated safetensors reader and writer ------------===//
//
// The format (https://huggingface.co/docs/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON (an object mapping tensor
// names to {dtype, shape, data_offsets}, plus an optional "__metadata__"
// object of strings), then the data buffer. The reader enforces the format's
// own rules: N within [2, 100 MB] and inside the file, the header is a
// well-formed JSON object, every dtype is known, shapes are non-negative,
// data_offsets lie inside the buffer, size == product(shape) * dtype size,
// tensors do not overlap and together cover the buffer without holes.
// Every violation is an error naming the file, the tensor and the offset.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_MODEL_SAFETENSORS_H
#define NIBBLE_MODEL_SAFETENSORS_H

#include "nibble/Model/Tensor.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nibble::model {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0; ///< offset in the data buffer
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t headerSize = 0; ///< N; the data buffer starts at 8 + N
  std::vector<SafetensorsEntry> entries; ///< in data-offset order
  std::map<std::string, std::string> metadata;
  uint64_t dataOffset() const { return 8 + headerSize; }
};

/// Parses and validates the header of a safetensors file held in memory.
/// `name` is used in error messages.
std::optional<SafetensorsHeader> parseSafetensors(const uint8_t *data,
                                                  size_t size,
                                                  const std::string &name,
                                                  std::string &error);

/// A tensor to write: `data` holds product(shape) elements of `dtype`.
struct SafetensorsWriteEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void *data;
};

/// Serializes tensors (header padded to 8 bytes, data in the given order).
std::vector<uint8_t>
serializeSafetensors(const std::vector<SafetensorsWriteEntry> &tensors,
                     const std::map<std::string, std::string> &metadata = {});

/// serializeSafetensors + writeFileAtomic.
bool writeSafetensors(const std::string &path,
                      const std::vector<SafetensorsWriteEntry> &tensors,
                      std::string &error,
                      const std::map<std::string, std::string> &metadata = {});

} // namespace nibble::model

#endif // NIBBLE_MODEL_SAFETENSORS_H
