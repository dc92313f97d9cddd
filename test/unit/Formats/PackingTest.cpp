//===- PackingTest.cpp - Dense LSB-first packing --------------------------===//

#include "nibble/Formats/Format.h"
#include "nibble/Formats/Half.h"
#include "nibble/Formats/Packing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

using namespace nibble::formats;

namespace {

/// Reference packer written straight from the definition in Packing.h:
/// stream bit j is bit (j % 8) of byte j / 8; element i holds stream bits
/// [i*bits, (i+1)*bits), least significant bit first.
std::vector<uint8_t> referencePack(const std::vector<uint8_t> &codes,
                                   unsigned bits) {
  std::vector<uint8_t> out(packedByteCount(codes.size(), bits), 0);
  for (size_t i = 0; i < codes.size(); ++i)
    for (unsigned b = 0; b < bits; ++b)
      if ((codes[i] >> b) & 1) {
        size_t j = i * bits + b;
        out[j / 8] |= uint8_t(1u << (j % 8));
      }
  return out;
}

/// `codes` packed with packCodes (the input of every repack).
std::vector<uint8_t> pack(const std::vector<uint8_t> &codes, unsigned bits) {
  std::vector<uint8_t> packed(packedByteCount(codes.size(), bits));
  packCodes(codes.data(), codes.size(), bits, packed.data());
  return packed;
}

/// n codes of `bits` bits, code i = (i * mul + add) mod 2^bits: every
/// position distinct enough that a misplaced code shows.
std::vector<uint8_t> patternCodes(size_t n, unsigned bits, size_t mul,
                                  size_t add) {
  std::vector<uint8_t> codes(n);
  for (size_t i = 0; i < n; ++i)
    codes[i] = uint8_t((i * mul + add) & ((1u << bits) - 1));
  return codes;
}

TEST(PackingTest, RoundTripEveryWidthAndLength) {
  std::mt19937 rng(42);
  for (unsigned bits = 1; bits <= 8; ++bits) {
    for (size_t n = 0; n <= 67; ++n) {
      std::vector<uint8_t> codes(n);
      for (auto &c : codes)
        c = uint8_t(rng() & ((1u << bits) - 1));
      std::vector<uint8_t> packed(packedByteCount(n, bits) + 1, 0xAB);
      packCodes(codes.data(), n, bits, packed.data());
      EXPECT_EQ(packed.back(), 0xAB) << "wrote past the end";
      packed.pop_back();
      ASSERT_EQ(packed, referencePack(codes, bits))
          << bits << " bits, " << n << " codes";
      std::vector<uint8_t> back(n + 1, 0xCD);
      unpackCodes(packed.data(), n, bits, back.data());
      EXPECT_EQ(back.back(), 0xCD) << "unpack wrote past the end";
      back.pop_back();
      ASSERT_EQ(back, codes) << bits << " bits, " << n << " codes";
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(readPackedCode(packed.data(), i, bits), codes[i])
            << bits << " bits, element " << i;
    }
  }
}

TEST(PackingTest, ByteCounts) {
  EXPECT_EQ(packedByteCount(0, 4), 0u);
  EXPECT_EQ(packedByteCount(1, 4), 1u);
  EXPECT_EQ(packedByteCount(3, 4), 2u);
  EXPECT_EQ(packedByteCount(3, 3), 2u);
  EXPECT_EQ(packedByteCount(8, 3), 3u);
  EXPECT_EQ(packedByteCount(9, 7), 8u);
  EXPECT_EQ(packedByteCount(5, 8), 5u);
  EXPECT_EQ(packedByteCount(9, 1), 2u);
}

TEST(PackingTest, DocumentedByteLayout) {
  // docs/formats.md: 4 bits, low nibble first.
  uint8_t c4[] = {0x1, 0x2, 0x3, 0xF, 0x9};
  uint8_t p4[3] = {0xEE, 0xEE, 0xEE};
  packCodes(c4, 5, 4, p4);
  EXPECT_EQ(p4[0], 0x21);
  EXPECT_EQ(p4[1], 0xF3);
  EXPECT_EQ(p4[2], 0x09) << "last byte zero-padded";
  // docs/formats.md: 3 bits, codes 5, 3, 7, 1: stream bits (LSB first)
  // 101 110 111 100 -> byte0 = bits 0..7 = 1,0,1,1,1,0,1,1 = 0b11011101
  // = 0xDD; byte1 = bits 8..11 = 1,1,0,0 then padding = 0b00000011 = 0x03.
  // Code 7 straddles the boundary: its low 2 bits are byte0 bits 6..7.
  uint8_t c3[] = {5, 3, 7, 1};
  uint8_t p3[2] = {0xEE, 0xEE};
  packCodes(c3, 4, 3, p3);
  EXPECT_EQ(p3[0], 0xDD);
  EXPECT_EQ(p3[1], 0x03);
  EXPECT_EQ(readPackedCode(p3, 2, 3), 7);
  EXPECT_EQ(readPackedCode(p3, 3, 3), 1);
  uint8_t u3[4];
  unpackCodes(p3, 4, 3, u3);
  EXPECT_EQ(std::vector<uint8_t>(u3, u3 + 4), std::vector<uint8_t>(c3, c3 + 4));
  // 8 bits: one code per byte.
  uint8_t c8[] = {0x00, 0x7F, 0xFF};
  uint8_t p8[3];
  packCodes(c8, 3, 8, p8);
  EXPECT_EQ(std::vector<uint8_t>(p8, p8 + 3), std::vector<uint8_t>(c8, c8 + 3));
  // 1 bit: element i is bit i.
  uint8_t c1[] = {1, 0, 0, 1, 1, 0, 1, 0, 1};
  uint8_t p1[2];
  packCodes(c1, 9, 1, p1);
  EXPECT_EQ(p1[0], 0x59);
  EXPECT_EQ(p1[1], 0x01);
}

TEST(PackingTest, HighBitsOfCodesAreIgnored) {
  uint8_t c[] = {0xF5, 0xAB, 0x13};
  uint8_t p[2];
  packCodes(c, 3, 4, p);
  EXPECT_EQ(p[0], 0xB5);
  EXPECT_EQ(p[1], 0x03);
  uint8_t c3[] = {0xFD, 0x0B};
  uint8_t p3[1];
  packCodes(c3, 2, 3, p3);
  EXPECT_EQ(p3[0], 0x1D); // 5 | 3 << 3
}

} // namespace

namespace {

/// The stored code of (row r, column c) in an interleaved layout of
/// `store`-bit codes (repackInterleaved), read back as the kernels do.
uint8_t storedCode(const std::vector<uint8_t> &out, size_t r, size_t c,
                   size_t k, size_t block, unsigned store) {
  if (store == 8)
    return out[r * k + c];
  size_t b = c / block, j = c % block;
  uint8_t byte = out[(r * k + b * block) / 2 + j % (block / 2)];
  return j < block / 2 ? byte & 0xF : byte >> 4;
}

} // namespace

// Kernel layouts: every code lands where the kernels read it, for both
// widths, with and without the sign flip, on a 2-row, 2-block input.
TEST(PackingTest, InterleavedLayoutsPlaceEveryCode) {
  const size_t rows = 2, block = 16, k = 32;
  for (unsigned bits : {4u, 8u})
    for (bool flip : {false, true}) {
      std::vector<uint8_t> codes = patternCodes(rows * k, bits, 7, 3);
      std::vector<uint8_t> packed = pack(codes, bits);
      std::vector<uint8_t> out =
          repackInterleaved(packed.data(), rows, k, bits, block, flip);
      ASSERT_EQ(out.size(), packed.size());
      const uint8_t f = flip ? uint8_t(1u << (bits - 1)) : 0;
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < k; ++c) {
          const uint8_t want = codes[r * k + c] ^ f;
          EXPECT_EQ(storedCode(out, r, c, k, block, bits), want) << "bits " << bits << " flip " << flip
                               << " row " << r << " col " << c;
        }
    }
}

// Narrower codes: widths 2, 3 go to nibbles, 5, 6, 7 to bytes; signed codes
// are sign-extended into the storage width, unsigned ones zero-extended.
TEST(PackingTest, InterleavedLayoutsWidenNarrowCodes) {
  const size_t rows = 3, block = 32, k = 64;
  for (unsigned bits : {2u, 3u, 5u, 6u, 7u})
    for (bool sign : {false, true}) {
      std::vector<uint8_t> codes = patternCodes(rows * k, bits, 13, 5);
      std::vector<uint8_t> packed = pack(codes, bits);
      std::vector<uint8_t> out = repackInterleaved(packed.data(), rows, k,
                                                   bits, block, false, sign);
      const unsigned store = interleavedStorageBits(bits);
      ASSERT_EQ(out.size(), packedByteCount(rows * k, store));
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < k; ++c) {
          int code = codes[r * k + c];
          if (sign && code >= (1 << (bits - 1)))
            code -= 1 << bits; // two's complement value
          const uint8_t want = uint8_t(code) & uint8_t((1u << store) - 1);
          EXPECT_EQ(storedCode(out, r, c, k, block, store), want) << "bits " << bits << " sign " << sign
                               << " row " << r << " col " << c;
        }
    }
}

// The row-tiled integer-dot layout, read back the way the kernels read
// it: chunk c of tile t is tileRows 4-byte words, row r's word at
// (t * k / chunk + c) * tileRows + r; 4-bit codes j and j + 4 of the chunk
// share byte j. Two tiles of 4 rows, both widths, with and without the flip.
TEST(PackingTest, RowTiledLayoutPlacesEveryCode) {
  const size_t rows = 8, tile = 4, k = 24;
  for (unsigned bits : {4u, 8u})
    for (bool flip : {false, true}) {
      std::vector<uint8_t> codes = patternCodes(rows * k, bits, 11, 1);
      std::vector<uint8_t> packed = pack(codes, bits);
      std::vector<uint8_t> out =
          repackRowTiled(packed.data(), rows, k, bits, tile, flip);
      ASSERT_EQ(out.size(), packed.size());
      const size_t chunk = bits == 4 ? 8 : 4;
      const uint8_t f = flip ? uint8_t(1u << (bits - 1)) : 0;
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < k; ++c) {
          const size_t word =
              ((r / tile) * (k / chunk) + c / chunk) * tile + r % tile;
          const size_t j = c % chunk;
          uint8_t got = out[word * 4 + j % 4];
          if (bits == 4)
            got = j < 4 ? got & 0xF : got >> 4;
          EXPECT_EQ(got, codes[r * k + c] ^ f)
              << "bits " << bits << " flip " << flip << " row " << r
              << " col " << c;
        }
    }
}

// K panels: all tiles of panel 0's columns, then panel 1's, ...; the last
// panel shorter (k = 40 in panels of 16: 16, 16, 8 columns).
TEST(PackingTest, RowTiledPanelsStorePanelAfterPanel) {
  const size_t rows = 8, tile = 4, k = 40, panel = 16;
  for (unsigned bits : {4u, 8u}) {
    std::vector<uint8_t> codes = patternCodes(rows * k, bits, 13, 5);
    std::vector<uint8_t> packed = pack(codes, bits);
    std::vector<uint8_t> out = repackRowTiled(
        packed.data(), rows, k, bits, tile, false, 0, false, panel);
    ASSERT_EQ(out.size(), packed.size());
    const size_t chunk = bits == 4 ? 8 : 4, wordBytes = 4;
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < k; ++c) {
        const size_t p0 = c / panel * panel;
        const size_t len = std::min(panel, k - p0);
        // Words before this panel, this tile's within it, this chunk's.
        const size_t word = p0 / chunk * rows +
                            (r / tile) * (len / chunk) * tile +
                            (c - p0) / chunk * tile + r % tile;
        const size_t j = c % chunk;
        uint8_t got = out[word * wordBytes + j % 4];
        if (bits == 4)
          got = j < 4 ? got & 0xF : got >> 4;
        EXPECT_EQ(got, codes[r * k + c])
            << "bits " << bits << " row " << r << " col " << c;
      }
    // A panel as wide as k is the plain layout.
    EXPECT_EQ(repackRowTiled(packed.data(), rows, k, bits, tile, false, 0,
                             false, k),
              repackRowTiled(packed.data(), rows, k, bits, tile, false));
  }
}

// Codes narrower than their nibble field (the weight-only kernels' int2 /
// int3 in nibbles): zero-extended, or sign-extended for signed formats.
TEST(PackingTest, RowTiledWidensNarrowCodes) {
  const size_t rows = 4, tile = 4, k = 8;
  std::vector<uint8_t> codes(rows * k);
  for (size_t i = 0; i < codes.size(); ++i)
    codes[i] = uint8_t(i % 8); // every 3-bit code
  std::vector<uint8_t> packed = pack(codes, 3);
  for (bool sign : {false, true}) {
    std::vector<uint8_t> out = repackRowTiled(packed.data(), rows, k, 3, tile,
                                              false, /*storeBits=*/4, sign);
    ASSERT_EQ(out.size(), rows * k / 2);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < k; ++c) {
        uint8_t got = out[r * 4 + c % 4];
        got = c < 4 ? got & 0xF : got >> 4;
        const uint8_t code = codes[r * k + c];
        EXPECT_EQ(got, sign && code >= 4 ? code | 0x8 : code)
            << "sign " << sign << " row " << r << " col " << c;
      }
  }
}

// The weight-only byte layout: tiles of rows stored column by column, each
// code widened to a byte (sign-extended for signed formats).
TEST(PackingTest, ColumnTiledLayoutPlacesEveryCode) {
  const size_t rows = 8, tile = 4, k = 5;
  for (unsigned bits : {5u, 8u})
    for (bool sign : {false, true}) {
      std::vector<uint8_t> codes = patternCodes(rows * k, bits, 37, 3);
      std::vector<uint8_t> packed = pack(codes, bits);
      std::vector<uint8_t> out =
          repackColumnTiled(packed.data(), rows, k, bits, tile, sign);
      ASSERT_EQ(out.size(), rows * k);
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < k; ++c) {
          unsigned want = codes[r * k + c];
          if (sign && bits < 8 && (want >> (bits - 1)))
            want |= 0xFFu << bits;
          EXPECT_EQ(out[((r / tile) * k + c) * tile + r % tile],
                    uint8_t(want))
              << "bits " << bits << " sign " << sign << " row " << r
              << " col " << c;
        }
    }
}

// The NVIDIA GEMV layout read the way the generated kernel reads it: 32-bit
// little-endian words, code j at bits [j*bits, (j+1)*bits), and the
// magic-number conversion bitcast(0x4B000000 | u) - (2^23 + 2^(bits-1))
// gives back every signed code.
TEST(PackingTest, NvptxLayoutDecodesWithTheMagicNumber) {
  for (unsigned bits : {4u, 8u}) {
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    std::vector<uint8_t> codes;
    for (int v = lo; v <= hi; ++v)
      codes.push_back(uint8_t(v) & uint8_t((1u << bits) - 1));
    while (codes.size() % (32 / bits) != 0)
      codes.push_back(0);
    std::vector<uint8_t> packed = pack(codes, bits);
    std::vector<uint8_t> nv = repackForNvptx(packed.data(), packed.size(), bits);
    ASSERT_EQ(nv.size(), packed.size());
    const float bias = 8388608.0f + float(1u << (bits - 1));
    for (size_t i = 0; i < codes.size(); ++i) {
      size_t word = i / (32 / bits), j = i % (32 / bits);
      uint32_t w = 0;
      std::memcpy(&w, nv.data() + 4 * word, 4); // little endian (x86, NVPTX)
      uint32_t u = (w >> (j * bits)) & ((1u << bits) - 1);
      uint32_t magic = 0x4B000000u | u;
      float f;
      std::memcpy(&f, &magic, 4);
      int want = int(codes[i] & (1u << (bits - 1)) ? int(codes[i]) - (1 << bits)
                                                   : int(codes[i]));
      EXPECT_EQ(f - bias, float(want)) << bits << " bits, code " << i;
    }
  }
}

// The fp8 layout of the NVIDIA GEMV kernels (`nvptx.bytes.lsb-first.i32`):
// bytes as stored. Below sm_89 the kernels decode two bytes at a time into
// f16 bit patterns with the shifts and masks below (the constants the
// generator emits, checked in test/Transforms/gpu-kernels.mlir); e4m3fn
// comes out as the value times 2^-8, and the kernel multiplies the scale by
// 2^8. Every non-NaN code in every byte position must decode exactly.
TEST(PackingTest, NvptxFp8SoftwareDecodeIsExact) {
  for (bool e4m3 : {true, false}) {
    const Format f = e4m3 ? Format::e4m3fn() : Format::e5m2();
    const float factor = e4m3 ? 256.0f : 1.0f;
    for (uint32_t code = 0; code < 256; ++code) {
      if (f.isNaNCode(code) || std::isinf(f.decode(code)))
        continue;
      for (unsigned pos = 0; pos < 4; ++pos) {
        // A word with `code` at byte `pos` and different codes elsewhere.
        uint32_t w = 0x3A1C2B4Du & ~(0xFFu << (8 * pos));
        w |= code << (8 * pos);
        uint32_t even, odd; // f16 pairs of bytes (0, 2) and (1, 3)
        if (e4m3) {
          even = ((w << 8) & 0x80008000u) | ((w << 7) & 0x3F803F80u);
          odd = (w & 0x80008000u) | ((w >> 1) & 0x3F803F80u);
        } else {
          even = (w << 8) & 0xFF00FF00u;
          odd = w & 0xFF00FF00u;
        }
        const uint32_t pair = pos % 2 == 0 ? even : odd;
        const uint16_t h = uint16_t(pos < 2 ? pair : pair >> 16);
        EXPECT_EQ(halfToFloat(h) * factor, f.decode(code))
            << f.name() << " code " << code << " at byte " << pos;
      }
    }
  }
}

// code6-split64: every code is recovered from its lane's nibble and 2-bit
// field, and a row of 64 codes takes 48 bytes.
TEST(PackingTest, Split6RoundTrips) {
  const size_t rows = 3, k = 128;
  std::mt19937 rng(5);
  std::vector<uint8_t> codes(rows * k);
  for (auto &c : codes)
    c = uint8_t(rng() & 63);
  codes[0] = 63; // all bits set
  codes[17] = 0;
  std::vector<uint8_t> packed = pack(codes, 6);
  std::vector<uint8_t> out = repackSplit6(packed.data(), rows, k);
  ASSERT_EQ(out.size(), rows * k * 6 / 8);
  for (size_t i = 0; i < codes.size(); ++i) {
    const uint8_t *blk = out.data() + (i / 64) * 48;
    const size_t q = (i % 64) / 16, j = i % 16;
    unsigned lo = (blk[16 * (q / 2) + j] >> (4 * (q % 2))) & 15u;
    unsigned hi = (blk[32 + j] >> (2 * q)) & 3u;
    EXPECT_EQ(lo | (hi << 4), codes[i]) << "code " << i;
  }
}

// Which formats the CPU kernels store in 6 bits: the signed finite-only
// 6-bit floats an f16 holds exactly; a 6-bit integer takes a byte and a
// 6-bit float with 5 exponent bits (whose top exponent is Inf/NaN in f16)
// is not split.
TEST(PackingTest, CpuKernelStorageBits) {
  EXPECT_TRUE(isSplit6Float(Format::e2m3fn()));
  EXPECT_TRUE(isSplit6Float(Format::e3m2fn()));
  EXPECT_EQ(cpuKernelStorageBits(Format::e2m3fn()), 6u);
  EXPECT_EQ(cpuKernelStorageBits(Format::e3m2fn()), 6u);
  EXPECT_FALSE(isSplit6Float(Format::intN(6, true)));
  EXPECT_EQ(cpuKernelStorageBits(Format::intN(6, true)), 8u);
  EXPECT_EQ(cpuKernelStorageBits(Format::intN(3, true)), 4u);
  EXPECT_EQ(cpuKernelStorageBits(Format::e4m3fn()), 8u);
  EXPECT_EQ(cpuKernelStorageBits(Format::e2m1fn()), 4u);
  FloatSpec e5m0{5, 0, 15, NonFinite::FiniteOnly, NanEncoding::IEEE, true,
                 true};
  std::optional<Format> f = Format::makeFloat(e5m0);
  ASSERT_TRUE(f);
  EXPECT_FALSE(isSplit6Float(*f));
  EXPECT_EQ(cpuKernelStorageBits(*f), 8u);
}
