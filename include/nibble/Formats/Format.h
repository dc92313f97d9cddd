//===- Format.h - Element number formats (plain C++, no MLIR) -------------===//
//
// A Format is an element codec: it maps codes (unsigned integers of `bits()`
// bits) to real values and back. Grouping, scales, zero points and packing are
// not part of a format; they belong to a quantization scheme.
//
// Three families cover every format Nibble knows:
//   - Int:   two's complement (signed) or plain binary (unsigned), 2..8 bits.
//   - Float: a parametric binary float described by FloatSpec, the same fields
//            as llvm::fltSemantics (exponent and mantissa bits, bias,
//            non-finite behaviour, NaN encoding, signedness, zero). fp8
//            E4M3FN/E5M2/FNUZ, fp6 E2M3/E3M2, fp4 E2M1, E8M0 and fp16, bf16,
//            fp32 are all instances.
//   - Lut:   a sorted codebook of up to 256 distinct finite values (NF4 is one).
//
// Conversions (see docs/formats.md for the full table of special values):
//   encode(x): round to nearest, ties to the even code, and saturate: every
//              finite or infinite x beyond the largest magnitude gives +-max
//              (the OCP "saturating" mode, like PTX .satfinite).
//   decode(c): exact value of code c (NaN for NaN codes).
//
// This library knows nothing about MLIR or LLVM so that it can be unit tested
// and benchmarked alone; the dialect's format attributes forward to it.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_FORMATS_FORMAT_H
#define NIBBLE_FORMATS_FORMAT_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::formats {

enum class Kind : uint8_t { Int, Float, Lut };

/// What the all-ones exponent means (same as llvm::fltNonfiniteBehavior).
enum class NonFinite : uint8_t {
  IEEE,       ///< all-ones exponent holds Inf (mantissa 0) and NaN (others)
  NanOnly,    ///< no Inf; NaN as given by the NanEncoding
  FiniteOnly, ///< every code is a finite number
};

/// How NaN is encoded when NonFinite::NanOnly (same as llvm::fltNanEncoding).
enum class NanEncoding : uint8_t {
  IEEE,         ///< used with NonFinite::IEEE
  AllOnes,      ///< exponent and mantissa all ones is NaN (E4M3FN, E8M0FNU)
  NegativeZero, ///< the -0 code is the only NaN (FNUZ formats)
};

struct FloatSpec {
  int expBits = 0;
  int manBits = 0;
  int bias = 0;
  NonFinite nonFinite = NonFinite::IEEE;
  NanEncoding nanEncoding = NanEncoding::IEEE;
  bool isSigned = true;
  bool hasZero = true;

  int bits() const { return expBits + manBits + (isSigned ? 1 : 0); }
  bool operator==(const FloatSpec &o) const {
    return expBits == o.expBits && manBits == o.manBits && bias == o.bias &&
           nonFinite == o.nonFinite && nanEncoding == o.nanEncoding &&
           isSigned == o.isSigned && hasZero == o.hasZero;
  }
  bool operator!=(const FloatSpec &o) const { return !(*this == o); }
};

/// Spellings used by the IR syntax and by Format::name() ("ieee",
/// "nan_only", "finite_only"; "ieee", "all_ones", "negative_zero").
const char *nonFiniteName(NonFinite nf);
const char *nanEncodingName(NanEncoding ne);

/// Rounding used when a float is turned into an E8M0 (power of two) scale.
enum class ScaleRounding : uint8_t {
  Floor, ///< largest power of two <= x (OCP MX spec)
  Ceil,  ///< smallest power of two >= x (never clips the block maximum)
};

class Format {
public:
  /// Checked constructors: return std::nullopt and fill *error with a
  /// sentence saying what is wrong when the parameters are invalid.
  static std::optional<Format> makeInt(int bits, bool isSigned,
                                       std::string *error = nullptr);
  static std::optional<Format> makeFloat(const FloatSpec &spec,
                                         std::string *error = nullptr);
  static std::optional<Format> makeLut(std::vector<float> values,
                                       std::string *error = nullptr);

  /// Well-known formats (never fail).
  static Format intN(int bits, bool isSigned);
  static Format e4m3fn();
  static Format e5m2();
  static Format e4m3fnuz();
  static Format e5m2fnuz();
  static Format e2m3fn();
  static Format e3m2fn();
  static Format e2m1fn();
  static Format e8m0fnu();
  static Format f16();
  static Format bf16();
  static Format f32();
  static Format nf4();

  /// Spec of a named float ("e4m3fn", "e5m2", "e4m3fnuz", "e5m2fnuz",
  /// "e2m3fn", "e3m2fn", "e2m1fn", "e8m0fnu", "f16", "bf16", "f32").
  static std::optional<FloatSpec> namedFloatSpec(std::string_view name);
  /// Name of a spec if it is one of the named floats, else "".
  static std::string floatSpecName(const FloatSpec &spec);
  /// The 16 NF4 values (QLoRA), sorted ascending.
  static const std::vector<float> &nf4Values();

  /// Parse a short name: "int4", "uint3", "e4m3fn", ..., "nf4".
  static std::optional<Format> byName(std::string_view name);

  Kind kind() const { return kind_; }
  int bits() const { return bits_; }
  /// Number of codes: 2^bits for Int/Float (bits <= 16), table size for Lut.
  uint32_t numCodes() const;
  bool isSigned() const;
  const FloatSpec &floatSpec() const { return spec_; }
  const std::vector<float> &lutValues() const { return lut_; }

  float decode(uint32_t code) const;
  uint32_t encode(float x) const;

  /// Largest finite value and most negative finite value (0 or the smallest
  /// value for unsigned formats).
  float maxValue() const;
  float lowestValue() const;

  bool isNaNCode(uint32_t code) const;
  /// The code encode() gives for NaN input.
  uint32_t nanInputCode() const;
  /// The -0 code if the format has one distinct from +0.
  std::optional<uint32_t> negativeZeroCode() const;

  /// All distinct finite values (a single 0), ascending. Only for formats of
  /// at most 16 bits.
  std::vector<float> representableValues() const;

  /// Short, stable name ("int4", "uint8", "e4m3fn", "lut16", "nf4", or
  /// "float<e3m4b7...>" for an unnamed parametric float).
  std::string name() const;

  bool operator==(const Format &o) const {
    return kind_ == o.kind_ && bits_ == o.bits_ && isSigned_ == o.isSigned_ &&
           spec_ == o.spec_ && lut_ == o.lut_;
  }
  bool operator!=(const Format &o) const { return !(*this == o); }

private:
  Format() = default;
  Kind kind_ = Kind::Int;
  int bits_ = 0;
  bool isSigned_ = false; // Int only
  FloatSpec spec_{};      // Float only
  std::vector<float> lut_; // Lut only
};

/// Encode a positive, finite scale as E8M0 (2^(code-127)). Zero, negative,
/// NaN and infinite inputs are errors (std::nullopt, *error says why);
/// results outside 2^-127 .. 2^127 saturate to the nearest end.
std::optional<uint8_t> encodeE8M0(float x, ScaleRounding rounding,
                                  std::string *error = nullptr);

/// The one definition of scalar affine quantization shared by every path
/// (library, reference lowering, backends): code = encode(x / scale + zp),
/// value = (decode(code) - zp) * scale, all in f32 in that order. A scheme
/// without zero points adds/subtracts nothing (so -0.0 stays -0.0).
inline uint32_t quantizeScalar(const Format &f, float x, float scale,
                               std::optional<float> zeroPoint = std::nullopt) {
  float y = x / scale;
  if (zeroPoint)
    y += *zeroPoint;
  return f.encode(y);
}
inline float dequantizeScalar(const Format &f, uint32_t code, float scale,
                              std::optional<float> zeroPoint = std::nullopt) {
  float v = f.decode(code);
  if (zeroPoint)
    v -= *zeroPoint;
  return v * scale;
}

} // namespace nibble::formats

#endif // NIBBLE_FORMATS_FORMAT_H
