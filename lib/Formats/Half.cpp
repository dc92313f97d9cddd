//===- Half.cpp - Fast f16 / bf16 <-> f32 conversions ---------------------===//

#include "nibble/Formats/Half.h"

#include <cstring>

namespace nibble::formats {

static uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) // Inf / NaN: keep the payload
    return floatOf(sign | 0x7f800000u | (man << 13));
  if (exp != 0)
    return floatOf(sign | ((exp + 112) << 23) | (man << 13));
  // Zero or subnormal: man * 2^-24 is exact in float.
  float v = float(man) * floatOf(0x33800000u); // 2^-24
  return floatOf(sign | bitsOf(v));
}

uint16_t floatToHalf(float f) {
  uint32_t u = bitsOf(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) // Inf or NaN (quiet the NaN, keep it a NaN)
    return sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0);
  if (a >= 0x477ff000u) // rounds to >= 65520: overflow to infinity
    return sign | 0x7c00u;
  if (a < 0x38800000u) {
    // Result is subnormal (or zero): scale so the addition rounds at the
    // half-subnormal ulp (2^-24) with the FPU's round-to-nearest-even.
    float v = floatOf(a) + 0.5f; // 0.5 has ulp 2^-24
    return sign | uint16_t(bitsOf(v) - 0x3f000000u);
  }
  // Normal: rebias and round the 13 dropped mantissa bits to nearest even.
  uint32_t odd = (a >> 13) & 1u;
  a += 0xc8000fffu + odd; // (15 - 127) << 23, plus rounding bias
  return sign | uint16_t(a >> 13);
}

float bf16ToFloat(uint16_t b) { return floatOf(uint32_t(b) << 16); }

uint16_t floatToBF16(float f) {
  uint32_t u = bitsOf(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: quiet it, keep the sign
    return uint16_t((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

void halfToFloat(const void *src, float *dst, size_t n) {
  const auto *p = static_cast<const uint8_t *>(src);
  for (size_t i = 0; i < n; ++i)
    dst[i] = halfToFloat(uint16_t(p[2 * i] | (p[2 * i + 1] << 8)));
}

void bf16ToFloat(const void *src, float *dst, size_t n) {
  const auto *p = static_cast<const uint8_t *>(src);
  for (size_t i = 0; i < n; ++i)
    dst[i] = bf16ToFloat(uint16_t(p[2 * i] | (p[2 * i + 1] << 8)));
}

} // namespace nibble::formats
