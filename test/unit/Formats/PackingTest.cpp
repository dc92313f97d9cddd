//===- PackingTest.cpp - Dense LSB-first packing --------------------------===//

#include "nibble/Formats/Packing.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

using namespace nibble::formats;

TEST(PackingTest, RoundTripEveryWidthAndLength) {
  std::mt19937 rng(42);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (size_t n = 0; n <= 67; ++n) {
      std::vector<uint8_t> codes(n);
      for (auto &c : codes)
        c = rng() & ((1u << bits) - 1);
      std::vector<uint8_t> packed(packedByteCount(n, bits) + 1, 0xAB);
      packCodes(codes.data(), n, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xAB) << "wrote past the end";
      std::vector<uint8_t> back(n);
      unpackCodes(packed.data(), n, bits, back.data());
      ASSERT_EQ(back, codes) << bits << " bits, " << n << " codes";
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(readPackedCode(packed.data(), i, bits), codes[i]);
    }
  }
}

TEST(PackingTest, DocumentedByteLayout) {
  // 4 bits: low nibble first.
  uint8_t c4[] = {1, 2, 3, 15};
  uint8_t p4[2];
  packCodes(c4, 4, 4, p4);
  EXPECT_EQ(p4[0], 0x21);
  EXPECT_EQ(p4[1], 0xF3);
  // 3 bits: codes 5, 3, 7 -> stream bits 101 110 111 (LSB first):
  // byte0 = 0b11_011_101 = 0xDD, byte1 = 0b0000000_1 = 0x01.
  uint8_t c3[] = {5, 3, 7};
  uint8_t p3[2];
  packCodes(c3, 3, 3, p3);
  EXPECT_EQ(p3[0], 0xDD);
  EXPECT_EQ(p3[1], 0x01);
  EXPECT_EQ(packedByteCount(3, 3), 2u);
}
