//===- Packing.h - Sub-byte code packing (plain C++, no MLIR) -------------===//
//
// The canonical packed layout of Nibble ("dense LSB-first"): codes of `bits`
// bits (1..8) are concatenated, in row-major element order, into one bit
// stream; element i occupies stream bits [i*bits, (i+1)*bits), its least
// significant bit first, and stream bit j is bit (j % 8) of byte j / 8. The
// last byte is zero-padded. For 4 bits this is the usual "low nibble first"
// layout; for 8 bits it is one code per byte. Every width uses the same rule,
// so 3-, 5-, 6- and 7-bit codes may straddle a byte boundary.
//
// Target-specific interleaved layouts are described by the scheme's layout
// attribute and produced by the backends; this is the layout of
// nibble.constant payloads and of bundle weights before repacking.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_FORMATS_PACKING_H
#define NIBBLE_FORMATS_PACKING_H

#include "nibble/Formats/Format.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nibble::formats {

/// Bytes needed for `count` codes of `bits` bits.
constexpr size_t packedByteCount(size_t count, unsigned bits) {
  return (count * bits + 7) / 8;
}

/// Pack `count` codes (each must be < 2^bits) into `out`, which must hold
/// packedByteCount(count, bits) bytes. Bits of a code above `bits` are ignored.
void packCodes(const uint8_t *codes, size_t count, unsigned bits, uint8_t *out);

/// Inverse of packCodes.
void unpackCodes(const uint8_t *packed, size_t count, unsigned bits,
                 uint8_t *codes);

/// Code of element `index` read directly from a packed stream.
inline uint8_t readPackedCode(const uint8_t *packed, size_t index,
                              unsigned bits) {
  size_t bit = index * bits;
  size_t byte = bit / 8;
  unsigned shift = bit % 8;
  unsigned v = packed[byte] >> shift;
  if (shift + bits > 8)
    v |= unsigned(packed[byte + 1]) << (8 - shift);
  return uint8_t(v & ((1u << bits) - 1u));
}

/// Pre-interleaved kernel layouts (the CPU backend's; docs/formats.md).
/// `packed` holds `rows` x `k` codes of `bits` bits (1..8) in the canonical
/// layout, k a multiple of `block`. Codes of 4 bits or fewer are stored one
/// per nibble, wider ones one per byte. Each row is cut into blocks of
/// `block` codes; with nibbles, byte j of a block (block/2 bytes) holds code
/// j in its low nibble and code j + block/2 in its high nibble, so that one
/// vector load and a mask or shift give two runs of block/2 codes that match
/// two contiguous slices of the activations. Bytes keep the element order.
/// With `signExtend`, codes are two's complement and are sign-extended to
/// the storage width (an int3 code 0b101 is stored as the nibble 0b1101);
/// otherwise narrower codes are zero-extended. With `flipSign` (4- and
/// 8-bit two's-complement codes only), codes are stored offset-binary
/// (c + 2^(bits-1), i.e. the top bit flipped): unsigned operands for
/// u8 x s8 dot products such as vpdpbusd.
std::vector<uint8_t> repackInterleaved(const uint8_t *packed, size_t rows,
                                       size_t k, unsigned bits, size_t block,
                                       bool flipSign, bool signExtend = false);

/// The CPU kernels' 6-bit layout (`code6-split64`, after FP6-LLM's 4+2 bit
/// split): each row is cut into blocks of 64 codes stored in 48 bytes. The
/// first 32 bytes hold the low four bits of every code as two interleave-32
/// nibble blocks (byte j of the first 16: codes j and j + 16; of the next
/// 16: codes 32 + j and 48 + j); the last 16 bytes hold the top two bits,
/// byte j those of codes j, j + 16, j + 32 and j + 48 at bits 0-1, 2-3, 4-5
/// and 6-7. One 16-lane step reads three 16-byte vectors and rebuilds 64
/// codes with shifts and masks only. `packed` holds `rows` x `k` 6-bit
/// codes in the canonical layout; k a multiple of 64.
std::vector<uint8_t> repackSplit6(const uint8_t *packed, size_t rows,
                                  size_t k);

/// The row-tiled layout of the CPU integer-dot kernels: 4- or 8-bit
/// two's-complement codes of `rows` x `k` (canonical layout), `rows` a
/// multiple of `tileRows` and k of 8 (4-bit) or 4 (8-bit). Each tile of
/// `tileRows` consecutive rows is stored as chunks of 8 (4-bit) or 4
/// (8-bit) columns, a chunk as `tileRows` 4-byte words, word r for row r of
/// the tile: for 8-bit codes the chunk's four codes in column order, for
/// 4-bit ones byte j holds column j in its low nibble and column j + 4 in
/// its high nibble. One vector load of a chunk puts one row in each 32-bit
/// lane, so a 4-byte dot product (vpdpbusd, sdot) against four activations
/// broadcast to every lane accumulates `tileRows` outputs at once. With
/// `flipSign` the codes are stored offset-binary (top bit flipped). Codes
/// narrower than 4 bits (2- and 3-bit codes, which the weight-only kernels
/// store in nibbles: `storeBits` 4) are stored zero-extended, or with
/// `signExtend` sign-extended.
///
/// With `panelCols` (a multiple of the chunk, below k), the columns are cut
/// into K panels of `panelCols` (the last one shorter when k is not a
/// multiple) stored one after another, each as all the tiles' chunks of
/// its columns, tile after tile: a kernel that walks every tile over one
/// panel before the next reads the weights in order while the panel's
/// activations stay in L1. 0 (or k) is one panel, the layout above.
std::vector<uint8_t> repackRowTiled(const uint8_t *packed, size_t rows,
                                    size_t k, unsigned bits, size_t tileRows,
                                    bool flipSign, unsigned storeBits = 0,
                                    bool signExtend = false,
                                    size_t panelCols = 0);

/// The weight-only kernels' byte layout for row tiles: `bits` <= 8 codes of
/// `rows` x `k` (canonical layout), `rows` a multiple of `tileRows`, stored
/// a byte each as tiles of `tileRows` rows, a tile column by column: the
/// `tileRows` codes of column c of the tile's rows are consecutive bytes,
/// so one vector load widened to i32 lanes gives one column of every row.
/// With `signExtend` codes narrower than 8 bits are sign-extended (signed
/// formats), else zero-extended.
std::vector<uint8_t> repackColumnTiled(const uint8_t *packed, size_t rows,
                                       size_t k, unsigned bits,
                                       size_t tileRows, bool signExtend);

/// The NVIDIA GEMV kernels' layout (nibble-generate-gpu-kernels): the dense
/// LSB-first layout of 4- or 8-bit two's-complement codes with every code
/// in offset binary (top bit flipped). Read as little-endian 32-bit words,
/// code j of a word is bits [j*bits, (j+1)*bits). `bytes` of `packed`.
std::vector<uint8_t> repackForNvptx(const uint8_t *packed, size_t bytes,
                                    unsigned bits);

/// Storage width of a code of `bits` bits in repackInterleaved's layouts.
constexpr unsigned interleavedStorageBits(unsigned bits) {
  return bits <= 4 ? 4 : 8;
}

/// Whether the CPU kernels store `f` in the code6-split64 layout: signed
/// 6-bit floats whose every code is a number laid out IEEE-style with at
/// most 4 exponent bits (e2m3fn, e3m2fn), which an f16 bit pattern holds
/// exactly.
bool isSplit6Float(const Format &f);

/// Bits a code of `f` occupies in the CPU kernels' layouts: 6 for the
/// code6-split64 floats, else interleavedStorageBits (1-4-bit codes in
/// nibbles, 5-8 in bytes).
unsigned cpuKernelStorageBits(const Format &f);

} // namespace nibble::formats

#endif // NIBBLE_FORMATS_PACKING_H
