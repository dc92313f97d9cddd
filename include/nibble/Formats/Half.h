//===- Half.h - Fast f16 / bf16 <-> f32 conversions -----------------------===//
//
// Bit-exact conversions for the 16-bit storage formats that checkpoints use.
// They agree with Format::decode/encode of the "f16" and "bf16" formats
// (round to nearest even; NaN stays NaN) but are branch-light and fast enough
// to convert whole tensors. Unlike Format::encode, which saturates, the
// float -> 16-bit direction follows IEEE: overflow gives infinity.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_FORMATS_HALF_H
#define NIBBLE_FORMATS_HALF_H

#include <cstddef>
#include <cstdint>

namespace nibble::formats {

float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
float bf16ToFloat(uint16_t b);
uint16_t floatToBF16(float f);

/// Convert `n` little-endian 16-bit values (any alignment) to floats.
void halfToFloat(const void *src, float *dst, size_t n);
void bf16ToFloat(const void *src, float *dst, size_t n);

} // namespace nibble::formats

#endif // NIBBLE_FORMATS_HALF_H
