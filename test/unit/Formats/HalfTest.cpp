//===- HalfTest.cpp - f16/bf16 conversions against APFloat ----------------===//

#include "nibble/Formats/Half.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"
#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <random>

using namespace nibble::formats;

namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t apConvert(float f, const llvm::fltSemantics &sem) {
  llvm::APFloat v(f);
  bool lost;
  v.convert(sem, llvm::APFloat::rmNearestTiesToEven, &lost);
  return uint16_t(v.bitcastToAPInt().getZExtValue());
}

float apDecode(uint16_t code, const llvm::fltSemantics &sem) {
  llvm::APFloat v(sem, llvm::APInt(16, code));
  bool lost;
  v.convert(llvm::APFloat::IEEEsingle(), llvm::APFloat::rmNearestTiesToEven,
            &lost);
  return v.convertToFloat();
}

void expectSameFloat(float a, float b, uint32_t code) {
  if (std::isnan(b)) {
    EXPECT_TRUE(std::isnan(a)) << "code " << code;
    return;
  }
  EXPECT_EQ(bitsOf(a), bitsOf(b)) << "code " << code;
}

TEST(HalfTest, DecodeEveryCode) {
  for (uint32_t c = 0; c < 65536; ++c) {
    expectSameFloat(halfToFloat(uint16_t(c)),
                    apDecode(uint16_t(c), llvm::APFloat::IEEEhalf()), c);
    expectSameFloat(bf16ToFloat(uint16_t(c)),
                    apDecode(uint16_t(c), llvm::APFloat::BFloat()), c);
  }
}

// Every 16-bit value, its neighbours in f32, and the exact midpoints to the
// next code (the ties) must round as APFloat's round-to-nearest-even does.
TEST(HalfTest, EncodeValuesMidpointsAndNeighbours) {
  for (const auto *sem : {&llvm::APFloat::IEEEhalf(), &llvm::APFloat::BFloat()}) {
    bool isHalf = sem == &llvm::APFloat::IEEEhalf();
    uint16_t (*enc)(float) = isHalf ? floatToHalf : floatToBF16;
    float (*dec)(uint16_t) = isHalf ? static_cast<float (*)(uint16_t)>(halfToFloat)
                                    : static_cast<float (*)(uint16_t)>(bf16ToFloat);
    for (uint32_t c = 0; c < 65536; ++c) {
      float v = dec(uint16_t(c));
      if (std::isnan(v))
        continue;
      std::vector<float> probes = {v, std::nextafter(v, INFINITY),
                                   std::nextafter(v, -INFINITY)};
      float next = dec(uint16_t(c + 1));
      if (c + 1 < 65536 && std::isfinite(next) && std::isfinite(v) &&
          std::signbit(v) == std::signbit(next)) {
        double mid = (double(v) + double(next)) / 2;
        if (float(mid) == mid) { // representable in f32: a true tie
          probes.push_back(float(mid));
          probes.push_back(std::nextafter(float(mid), INFINITY));
          probes.push_back(std::nextafter(float(mid), -INFINITY));
        }
      }
      for (float p : probes)
        ASSERT_EQ(enc(p), apConvert(p, *sem))
            << (isHalf ? "f16" : "bf16") << " probe " << p << " near code "
            << c;
    }
  }
}

TEST(HalfTest, EncodeRandomBitPatterns) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    float f = floatOf(rng());
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(f))));
      EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBF16(f))));
      continue;
    }
    ASSERT_EQ(floatToHalf(f), apConvert(f, llvm::APFloat::IEEEhalf())) << f;
    ASSERT_EQ(floatToBF16(f), apConvert(f, llvm::APFloat::BFloat())) << f;
  }
}

TEST(HalfTest, BulkConversionReadsLittleEndianUnaligned) {
  uint8_t buf[7] = {0xAA, 0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F}; // offset 1
  float out[3];
  halfToFloat(buf + 1, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(bitsOf(out[2]), bitsOf(halfToFloat(0x3F80)));
  bf16ToFloat(buf + 1, out, 3);
  EXPECT_EQ(out[0], floatOf(0x3C000000u));
  EXPECT_EQ(out[2], 1.0f);
}

} // namespace
