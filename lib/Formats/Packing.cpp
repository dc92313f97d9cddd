//===- Packing.cpp - Dense LSB-first packing of sub-byte codes -----------===//

#include "nibble/Formats/Packing.h"

#include <algorithm>
#include <cassert>
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

namespace {

/// `code` (a `bits`-bit code) with the bits above it set where
/// `signExtend` and its top bit is set: the caller masks it to the width
/// it stores.
unsigned widenCode(unsigned code, unsigned bits, bool signExtend) {
  if (signExtend && (code >> (bits - 1)) & 1u)
    code |= ~((1u << bits) - 1);
  return code;
}

} // namespace

std::vector<uint8_t> repackInterleaved(const uint8_t *packed, size_t rows,
                                       size_t k, unsigned bits, size_t block,
                                       bool flipSign, bool signExtend) {
  const unsigned store = interleavedStorageBits(bits);
  const unsigned storeMask = (1u << store) - 1;
  const uint8_t flip = flipSign ? uint8_t(1u << (store - 1)) : 0;
  // The code of element i as stored: extended to `store` bits, flipped.
  auto stored = [&](size_t i) {
    unsigned c = widenCode(readPackedCode(packed, i, bits), bits, signExtend);
    return uint8_t((c ^ flip) & storeMask);
  };
  std::vector<uint8_t> out(packedByteCount(rows * k, store));
  if (store == 8) {
    if (bits == 8 && !flip) {
      std::copy(packed, packed + out.size(), out.begin());
      return out;
    }
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = stored(i);
    return out;
  }
  // Nibbles: block/2 bytes per block.
  const size_t half = block / 2;
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < k / block; ++b) {
      size_t first = r * k + b * block;
      uint8_t *dst = out.data() + first / 2;
      for (size_t j = 0; j < half; ++j)
        dst[j] = uint8_t(stored(first + j) | (stored(first + j + half) << 4));
    }
  return out;
}

std::vector<uint8_t> repackRowTiled(const uint8_t *packed, size_t rows,
                                    size_t k, unsigned bits, size_t tileRows,
                                    bool flipSign, unsigned storeBits,
                                    bool signExtend, size_t panelCols) {
  if (storeBits == 0)
    storeBits = bits;
  const unsigned mask = (1u << bits) - 1, fieldMask = (1u << storeBits) - 1;
  const unsigned flip = flipSign ? 1u << (bits - 1) : 0u;
  auto stored = [&](size_t r, size_t c) {
    unsigned code = (readPackedCode(packed, r * k + c, bits) ^ flip) & mask;
    return widenCode(code, bits, signExtend) & fieldMask;
  };
  const size_t chunk = storeBits == 4 ? 8 : 4; // columns per 4-byte word
  if (panelCols == 0 || panelCols > k)
    panelCols = k;
  assert(panelCols % chunk == 0 && "panels of whole chunks");
  std::vector<uint8_t> out(rows * k * storeBits / 8);
  uint8_t *dst = out.data();
  for (size_t p = 0; p < k; p += panelCols)
    for (size_t t = 0; t < rows; t += tileRows)
      for (size_t c = p; c < std::min(k, p + panelCols); c += chunk)
        for (size_t r = t; r < t + tileRows; ++r)
          for (size_t j = 0; j < 4; ++j)
            *dst++ = storeBits == 4 ? uint8_t(stored(r, c + j) |
                                         (stored(r, c + j + 4) << 4))
                               : uint8_t(stored(r, c + j));
  return out;
}

std::vector<uint8_t> repackColumnTiled(const uint8_t *packed, size_t rows,
                                       size_t k, unsigned bits,
                                       size_t tileRows, bool signExtend) {
  std::vector<uint8_t> out(rows * k);
  uint8_t *dst = out.data();
  for (size_t t = 0; t < rows; t += tileRows)
    for (size_t c = 0; c < k; ++c)
      for (size_t r = t; r < t + tileRows; ++r)
        *dst++ = uint8_t(widenCode(readPackedCode(packed, r * k + c, bits),
                                   bits, signExtend));
  return out;
}

bool isSplit6Float(const Format &f) {
  if (f.kind() != Kind::Float || f.bits() != 6 || !f.isSigned())
    return false;
  const FloatSpec &s = f.floatSpec();
  return s.hasZero && s.nonFinite == NonFinite::FiniteOnly && s.expBits <= 4;
}

unsigned cpuKernelStorageBits(const Format &f) {
  return isSplit6Float(f) ? 6 : interleavedStorageBits(unsigned(f.bits()));
}

std::vector<uint8_t> repackSplit6(const uint8_t *packed, size_t rows,
                                  size_t k) {
  std::vector<uint8_t> out(rows * k / 64 * 48, 0);
  uint8_t *dst = out.data();
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < k / 64; ++b, dst += 48) {
      const size_t first = r * k + b * 64;
      for (size_t i = 0; i < 64; ++i) {
        const unsigned c = readPackedCode(packed, first + i, 6);
        const size_t q = i / 16, j = i % 16; // sub-run q, lane j
        dst[16 * (q / 2) + j] |= uint8_t((c & 15u) << (4 * (q % 2)));
        dst[32 + j] |= uint8_t((c >> 4) << (2 * q));
      }
    }
  return out;
}

std::vector<uint8_t> repackForNvptx(const uint8_t *packed, size_t bytes,
                                    unsigned bits) {
  const uint8_t flip = bits == 4 ? 0x88 : 0x80; // every code's top bit
  std::vector<uint8_t> out(packed, packed + bytes);
  for (uint8_t &b : out)
    b ^= flip;
  return out;
}

} // namespace nibble::formats
