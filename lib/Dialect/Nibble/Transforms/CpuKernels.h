//===- CpuKernels.h - Vector-dialect CPU kernel builders -------*- C++ -*-===//
//
// The bodies of the kernels nibble-generate-kernels emits, one builder per
// path. Each builds a func.func in the vector dialect (plus LLVM intrinsic
// calls for the integer dot products) at the end of a module; the pass
// decides which path serves a matmul and rewrites it into calls.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_TRANSFORMS_CPUKERNELS_H
#define NIBBLE_LIB_TRANSFORMS_CPUKERNELS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace mlir::nibble::cpu {

/// An element-wise consumer of the matmul fused into the kernel's store
/// (bias, residual add, SwiGLU's silu(gate) * up, ...): the body of a
/// linalg.generic over [M, N] whose input `resultInput` is the matmul
/// result. Its other inputs become extra kernel arguments (after n1), read
/// at their indexing maps' (m, n) positions. The body is cloned per output
/// element, so y is written once, already transformed.
struct Epilogue {
  mutable linalg::GenericOp op; // op handles are values; MLIR accessors are non-const
  unsigned resultInput = 0;
  /// The other inputs, in order (extra kernel arguments).
  SmallVector<Value> extraInputs() const;
  /// Identifies the body and maps: kernels with equal keys are shared.
  std::string key() const;
};

/// Whether `user` can be fused as the epilogue of the matmul producing
/// `result` (shape [M, N], f32): an all-parallel 2-D generic with one f32
/// [M, N] result and identity output map, `result` an input with identity
/// map, other inputs indexed by d0/d1 only, a body of arith/math ops that
/// uses nothing from outside and does not read the output.
std::optional<Epilogue> matchEpilogue(Value result, Operation *user);

/// The activation quantization of an integer matmul that reads this
/// kernel's output with a static scale, done in the kernel's store (after
/// the epilogue) instead of by an ActQuantizer pass over the output: per
/// element the int8 code (the ActQuantizer's arithmetic: y / scale, nearest
/// even, saturate), per group of `group` output columns the sum of the
/// codes. The kernel gains the arguments (after the epilogue's) scale: f32,
/// xq: [M,N]i8, xsum: [M,N/group]f32 and returns (y, xq, xsum); its row
/// ranges are aligned to `group` (`nibble.row_align`) so that no group is
/// split between threads.
struct QuantizeOutput {
  int64_t group;
  /// Kernel-name suffix.
  std::string key() const { return "_q" + std::to_string(group); }
};

/// How the weight-only kernel turns stored codes into f32 in registers.
enum class WeightDecode {
  SignedInt,   ///< two's complement (sign-extended to the storage width)
  UnsignedInt, ///< zero-extended
  Table,       ///< any format of <= 16 codes: a 16-entry f32 table, looked
               ///< up with a vector permute (vpermps / tbl)
  E5M2,        ///< fp8 e5m2: the high byte of an f16, widened
  ByteFloat,   ///< any other signed float of 5 to 8 bits with a zero
               ///< (e4m3fn, e4m3fnuz, e5m2fnuz, custom ones such as e2m2;
               ///< non-finite codes, which the quantizer never produces,
               ///< decode as finite values), stored in a byte
               ///< with the sign bit repeated above it: exponent and
               ///< mantissa moved into f16 bit positions and widened (at
               ///< most 4 exponent bits; the scale carries 2^(15 - bias)),
               ///< or into f32 bit positions, times 2^(127 - bias)
  Fp6,         ///< 6-bit floats without Inf/NaN (e2m3fn, e3m2fn), stored
               ///< 4+2 split (code6-split64): rebuilt as f16 bits, widened,
               ///< x 2^(15 - bias)
};

/// How a kernel's group scales are stored (one load and
/// conversion per group and row; exact, as the reference's decode).
enum class ScaleStorage {
  F32,
  F16,    ///< widened (arith.extf)
  BF16,   ///< widened
  Table8, ///< 8-bit codes (E8M0 for MX formats, e4m3 / e5m2, or the codes
          ///< of a two-level scheme's scales) indexing a 256-entry f32
          ///< table argument (a two-level scheme's per-tensor scale folded
          ///< into the table)
};

/// How the target permutes vector lanes for WeightDecode::Table.
enum class PermuteKind {
  None,
  Avx512, ///< vpermps zmm: a whole 16-entry table in one register
  Avx2,   ///< two vpermps ymm (8 entries each) and a blend on bit 3
  Neon,   ///< tbl over the table's four byte planes, then zips
};

/// Weight-only: codes stored in nibbles (layout interleave-32: one 16-byte
/// load gives two runs of 16 codes) or bytes, decoded in registers, f32
/// FMA with 16-lane accumulators; with zero points, each group subtracts
/// s * zp * (sum of the group's activations), summed once per call.
///   func(x: [M,K]f32, w: [B]i8, s: [N,K/G]T, [table: [256]f32,]
///        [zp: [N,K/G]Z,] y: [M,N]f32, n0, n1) -> y
/// with T f32, f16, bf16 or i8 (ScaleStorage::Table8, which adds `table`)
/// and Z the zero points' stored element type (zeroPointType).
struct WeightOnlyKernel {
  int64_t m, n, k, group;
  int64_t storeBits; ///< 4 (nibbles), 6 (code6-split64) or 8 (bytes)
  WeightDecode decode;
  std::vector<float> table; ///< 16 entries, WeightDecode::Table only
  PermuteKind permute = PermuteKind::None;
  bool zeroPoints = false;
  /// With zero points, their stored element type: f32, f16, bf16, i8, i16
  /// or i32, converted per group and row as the reference does (floats
  /// widened, integers sign-extended).
  Type zeroPointType;
  int manBits = 0, bias = 0; ///< WeightDecode::Fp6 and ByteFloat only
  int expBits = 0;           ///< WeightDecode::ByteFloat only
  /// ByteFloat through f16 bit patterns: every code, subnormals included,
  /// is an f16 number when the exponent has at most 4 bits (so no f32
  /// subnormal is ever an operand). Wider exponents (e5m2fnuz) take f32
  /// bit patterns.
  bool byteFloatViaF16() const { return expBits <= 4; }
  ScaleStorage scales = ScaleStorage::F32;
  /// Rows per tile of the row-tiled layouts, or 1 for one row at a time
  /// (interleave32 / dense). R = the f32 lanes of one vector register.
  ///
  /// Nibbles (any format of <= 16 codes, integers included; AVX-512, R =
  /// 16): formats::repackRowTiled, one 64-byte vector holding a 4-byte
  /// word of each of 16 rows, 8 columns each; field j of the words (the
  /// vector shifted right by 4j) looks up all 16 rows' values in `table`
  /// with one vpermps, which reads only the low 4 bits of each lane. Bytes
  /// (integers; any target): formats::repackColumnTiled, R codes of one
  /// column per vector, widened and converted. Either way one FMA against
  /// the column's activation, broadcast, advances R rows with no
  /// horizontal sum: two or three vector instructions per R codes against
  /// about four for the one-row decode (docs/performance.md). The scales
  /// and zero points are passed tiled alike, [N/R * K/G, R], and the row
  /// range is a multiple of R (nibble.row_align).
  int64_t rowTile = 1;
  bool tiled() const { return rowTile > 1; }
  /// Row-tiled: columns of one row's share of a vector load.
  int64_t chunkCodes() const { return storeBits == 4 ? 8 : 1; }
  std::string name() const;
  /// The packed layout the kernel reads (recorded in the scheme):
  /// int|uint|code + 4-interleave32 | 8-dense, or code6-split64. Signed
  /// integers are stored sign-extended to the storage width. Row-tiled:
  /// int|uint|code + 4-rowtile16, int|uint + 8-coltile<R>.
  std::string layout() const;
  /// Codes one step of the kernel reads: one 16-byte load (three for
  /// code6-split64).
  int64_t codesPerStep() const {
    return storeBits == 4 ? 32 : storeBits == 6 ? 64 : 16;
  }
  /// Groups in one step: 1, or (a group narrower than the step, a
  /// multiple of 16 codes that divides the step) several, each 16-code run
  /// of the step accumulated with its own group's scale.
  int64_t groupsPerStep() const {
    return group < codesPerStep() ? codesPerStep() / group : 1;
  }
  /// Whether the kernel can serve this grouping.
  bool groupingServed() const {
    if (group % codesPerStep() == 0)
      return true;
    return group % 16 == 0 && codesPerStep() % group == 0;
  }
};

/// Integer dot products (W8A8 / W4A8): int8 activations, quantized per row
/// by an ActQuantizer, times int4/int8 or uint4/uint8 weight codes with an
/// i8 dot-product instruction (`intrinsic`, accumulating groups of 4 byte
/// products into `lanes` i32 lanes), one i32 accumulator per group, scaled
/// per group in f32. The instruction's weight operand is unsigned on x86
/// (vpdpbusd: u8 by s8) and signed on NEON (sdot); codes that do not fit it
/// are stored with their top bit flipped (`flipSign`: signed c as
/// c + 2^(bits-1), uint8 u as u - 128), and the kernel subtracts that
/// offset, plus the zero point if any, times the group's activation sum:
/// y = xs * sum_g s_g (dot_g - (offset + zp_g) * xsum_g).
///   func(xq: [M,K]i8, xs: [M]f32, xsum: [M,K/G]f32, w: [B]i8,
///        s: [N,K/G]S, [table: [256]f32,] [zp: [N,K/G]Z,] y: [M,N]f32,
///        n0, n1) -> y
/// with S the scales' storage (ScaleStorage, as for the weight-only
/// kernel; Table8 adds `table`) and Z f32, f16, bf16, i8, i16 or i32,
/// widened or sign-extended to f32 where read (as the reference lowering
/// reads them).
struct IntDotKernel {
  int64_t m, n, k, group, bits;
  int64_t lanes;          ///< i32 lanes of one dot-product instruction
  bool unsignedWeightOperand; ///< the instruction reads weights as u8
  std::string intrinsic;  ///< LLVM intrinsic: (acc, a, b) -> acc
  bool unsignedFormat = false; ///< uint4 / uint8 weights
  bool zeroPoints = false;     ///< one per scale
  ScaleStorage scales = ScaleStorage::F32;
  Type zeroPointType;          ///< with zeroPoints: theirs
  /// Rows per tile of the row-tiled layout (formats::repackRowTiled; equal
  /// to `lanes`), or 1 for one row at a time (repackInterleaved).
  ///
  /// Row-tiled: one vector load holds 4 bytes of each of `lanes` rows, and
  /// one dot product against four activations broadcast to every lane
  /// advances all of them: about half the instructions per weight byte of
  /// the one-row kernel (no activation vector per weight vector, no
  /// horizontal sum per row), which is what lets one core keep the weight
  /// stream at the memory's speed (docs/performance.md). The scales and
  /// zero points are passed tiled alike, [N/lanes * K/G, lanes] (one row
  /// per tile and group, in the weights' order), and the
  /// row range is a multiple of `lanes` (nibble.row_align).
  int64_t rowTile = 1;
  bool tiled() const { return rowTile > 1; }
  /// Row-tiled: groups per K panel (repackRowTiled's panelCols = this times
  /// the group), fewer than the row's groups, or 0 for one panel (what
  /// nibble-generate-kernels sets it to when the row fits). With panels the kernel walks all its
  /// tiles over one panel before the next, carrying each row's partial sum
  /// in y, so the panel's activation codes stay in L1 from one tile to the
  /// next instead of being evicted by the tile's weights (a whole 11008-
  /// column row of codes, 11 KiB, does not survive 88 KiB of a tile's int4
  /// weights streaming through a 32 KiB L1).
  int64_t panelGroups = 0;
  bool paneled() const { return panelGroups > 0; }
  /// Columns of one 4-byte word of the row-tiled layout.
  int64_t chunkCodes() const { return bits == 4 ? 8 : 4; }
  std::string name() const;
  /// Whether stored codes have their top bit flipped (see above).
  bool flipSign() const {
    return unsignedFormat ? (bits == 8 && !unsignedWeightOperand)
                          : unsignedWeightOperand;
  }
  /// Stored code minus weight value (before the zero point).
  float offset() const {
    if (!flipSign())
      return 0.0f;
    return unsignedFormat ? -128.0f : float(1 << (bits - 1));
  }
  /// Whether stored nibbles are read unsigned (mask and shift).
  bool unsignedNibbles() const { return unsignedFormat || flipSign(); }
  /// Bytes of weights one vector load takes (4 per lane).
  int64_t vectorBytes() const { return 4 * lanes; }
  /// Codes of one interleave block: two vectors of nibbles for int4.
  int64_t blockCodes() const { return bits == 4 ? 8 * lanes : 4 * lanes; }
};

/// Symmetric int8 quantization of activation rows: scale max|x_row| / 127
/// (1 for a zero row) or, when the `scale` argument is positive, that
/// static scale; codes round to nearest even and saturate to [-128, 127]
/// (the format library's int8 encode); per group the sum of the codes.
///   func(x: [M,K]f32, scale: f32, xq: [M,K]i8, xsum: [M,K/G]f32,
///        xs: [M]f32) -> (xq, xsum, xs)
struct ActQuantizer {
  int64_t m, k, group;
  std::string name() const;
};

/// Kernel names carry the epilogue's and the output quantization's keys;
/// `epilogue` and `quantize` may be null.
func::FuncOp buildWeightOnly(ModuleOp module, const WeightOnlyKernel &key,
                             const Epilogue *epilogue,
                             const QuantizeOutput *quantize, StringRef name);
func::FuncOp buildIntDot(ModuleOp module, const IntDotKernel &key,
                         const Epilogue *epilogue,
                         const QuantizeOutput *quantize, StringRef name);
func::FuncOp buildActQuantizer(ModuleOp module, const ActQuantizer &key);

} // namespace mlir::nibble::cpu

#endif // NIBBLE_LIB_TRANSFORMS_CPUKERNELS_H
