//===- Packing.cpp - Dense LSB-first packing of sub-byte codes -----------===//

#include "nibble/Formats/Packing.h"

#include <cstring>

namespace nibble::formats {

void packCodes(const uint8_t *codes, size_t count, unsigned bits,
               uint8_t *out) {
  std::memset(out, 0, packedByteCount(count, bits));
  for (size_t i = 0; i < count; ++i) {
    unsigned v = codes[i] & ((1u << bits) - 1);
    size_t bit = i * bits;
    out[bit / 8] |= uint8_t(v << (bit % 8));
    if (bit % 8 + bits > 8)
      out[bit / 8 + 1] |= uint8_t(v >> (8 - bit % 8));
  }
}

void unpackCodes(const uint8_t *packed, size_t count, unsigned bits,
                 uint8_t *codes) {
  for (size_t i = 0; i < count; ++i)
    codes[i] = readPackedCode(packed, i, bits);
}

} // namespace nibble::formats
