//===- FormatTest.cpp - Exhaustive tests of the format library -----------===//
//
// LLVM's APFloat is the oracle for decode of every code and for encode of
// finite, in-range inputs (at every representable value, every midpoint and
// the floats just around each midpoint). Saturation and special inputs are
// checked against the table in docs/formats.md (SpecialInputs below lists
// its rows format by format).
//
//===----------------------------------------------------------------------===//

#include "nibble/Formats/Format.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace nibble::formats;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

FloatSpec spec(int e, int m, int bias, NonFinite nf, NanEncoding ne,
               bool isSigned = true, bool hasZero = true) {
  return FloatSpec{e, m, bias, nf, ne, isSigned, hasZero};
}

//===----------------------------------------------------------------------===//
// APFloat oracle
//===----------------------------------------------------------------------===//

struct FloatCase {
  const char *label;
  FloatSpec spec;
  const llvm::fltSemantics &(*sem)();
};

// Named formats plus three parametric ones that LLVM also knows, so the
// generic code path is checked on IEEE e4m3/e3m4 and a non-default bias.
const FloatCase kFloatCases[] = {
    {"e4m3fn", *Format::namedFloatSpec("e4m3fn"),
     llvm::APFloat::Float8E4M3FN},
    {"e5m2", *Format::namedFloatSpec("e5m2"), llvm::APFloat::Float8E5M2},
    {"e4m3fnuz", *Format::namedFloatSpec("e4m3fnuz"),
     llvm::APFloat::Float8E4M3FNUZ},
    {"e5m2fnuz", *Format::namedFloatSpec("e5m2fnuz"),
     llvm::APFloat::Float8E5M2FNUZ},
    {"e2m3fn", *Format::namedFloatSpec("e2m3fn"), llvm::APFloat::Float6E2M3FN},
    {"e3m2fn", *Format::namedFloatSpec("e3m2fn"), llvm::APFloat::Float6E3M2FN},
    {"e2m1fn", *Format::namedFloatSpec("e2m1fn"), llvm::APFloat::Float4E2M1FN},
    {"e8m0fnu", *Format::namedFloatSpec("e8m0fnu"),
     llvm::APFloat::Float8E8M0FNU},
    {"f16", *Format::namedFloatSpec("f16"), llvm::APFloat::IEEEhalf},
    {"bf16", *Format::namedFloatSpec("bf16"), llvm::APFloat::BFloat},
    {"e4m3", spec(4, 3, 7, NonFinite::IEEE, NanEncoding::IEEE),
     llvm::APFloat::Float8E4M3},
    {"e3m4", spec(3, 4, 3, NonFinite::IEEE, NanEncoding::IEEE),
     llvm::APFloat::Float8E3M4},
    {"e4m3b11fnuz", spec(4, 3, 11, NonFinite::NanOnly, NanEncoding::NegativeZero),
     llvm::APFloat::Float8E4M3B11FNUZ},
};

/// Value of `code` per APFloat, as a double (NaN for NaN codes).
double apDecode(const llvm::fltSemantics &sem, unsigned bits, uint32_t code) {
  llvm::APFloat v(sem, llvm::APInt(bits, code));
  if (v.isNaN())
    return std::numeric_limits<double>::quiet_NaN();
  bool lost;
  v.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven,
            &lost);
  return v.convertToDouble();
}

/// Code APFloat gives for float x in `sem` with rounding `rm`.
uint32_t apEncode(const llvm::fltSemantics &sem, float x,
                  llvm::RoundingMode rm = llvm::APFloat::rmNearestTiesToEven) {
  llvm::APFloat v(x);
  bool lost;
  v.convert(sem, rm, &lost);
  return static_cast<uint32_t>(v.bitcastToAPInt().getZExtValue());
}

class FloatFormatTest : public ::testing::TestWithParam<FloatCase> {
protected:
  Format format() const {
    std::string why;
    auto f = Format::makeFloat(GetParam().spec, &why);
    EXPECT_TRUE(f) << why;
    return *f;
  }
};

TEST_P(FloatFormatTest, DecodeEveryCodeMatchesAPFloat) {
  Format f = format();
  const auto &sem = GetParam().sem();
  ASSERT_EQ(unsigned(f.bits()), llvm::APFloat::getSizeInBits(sem));
  ASSERT_EQ(f.numCodes(), 1u << f.bits());
  for (uint32_t c = 0; c < f.numCodes(); ++c) {
    double want = apDecode(sem, f.bits(), c);
    float got = f.decode(c);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << f.name() << " code " << c;
      EXPECT_TRUE(f.isNaNCode(c)) << f.name() << " code " << c;
      continue;
    }
    EXPECT_FALSE(f.isNaNCode(c)) << f.name() << " code " << c;
    EXPECT_EQ(double(got), want) << f.name() << " code " << c;
    EXPECT_EQ(std::signbit(got), std::signbit(want))
        << f.name() << " code " << c;
  }
  EXPECT_TRUE(f.isNaNCode(f.nanInputCode()) ||
              f.floatSpec().nonFinite == NonFinite::FiniteOnly);
}

TEST_P(FloatFormatTest, EncodeMatchesAPFloatAtValuesAndMidpoints) {
  Format f = format();
  const auto &sem = GetParam().sem();
  std::vector<float> values = f.representableValues();
  ASSERT_GE(values.size(), 2u);
  EXPECT_EQ(values.back(), f.maxValue());
  EXPECT_EQ(values.front(), f.lowestValue());
  int checked = 0;
  auto check = [&](float x) {
    // Beyond max APFloat overflows to Inf/NaN; saturation is tested against
    // the documented table instead.
    ASSERT_LE(std::fabs(x), f.maxValue());
    ASSERT_EQ(f.encode(x), apEncode(sem, x)) << f.name() << " x=" << x;
    if (f.isSigned()) { // the negated input too (covers -0.0 at x = 0)
      ASSERT_EQ(f.encode(-x), apEncode(sem, -x)) << f.name() << " x=" << -x;
    }
    ++checked;
  };
  for (size_t i = 0; i < values.size(); ++i) {
    check(values[i]);
    if (i + 1 == values.size())
      continue;
    double exactMid = 0.5 * (double(values[i]) + double(values[i + 1]));
    float mid = static_cast<float>(exactMid);
    ASSERT_EQ(double(mid), exactMid) << "midpoint not exact in f32";
    check(mid);
    check(std::nextafter(mid, -kInf));
    check(std::nextafter(mid, kInf));
  }
  EXPECT_EQ(checked, int(4 * values.size() - 3));
}

TEST_P(FloatFormatTest, EncodeMatchesAPFloatOnRandomInRangeInputs) {
  Format f = format();
  const auto &sem = GetParam().sem();
  std::mt19937 rng(1);
  std::vector<float> values = f.representableValues();
  float minPos = *std::upper_bound(values.begin(), values.end(), 0.0f);
  // Down to a quarter of the smallest positive value (to zero) where the
  // format has zero; formats without zero are tested from their smallest.
  double loExp = std::log2(double(minPos)) - (f.floatSpec().hasZero ? 2 : 0);
  std::uniform_real_distribution<double> expo(loExp, std::log2(f.maxValue()));
  for (int i = 0; i < 4000; ++i) {
    float x = float(std::exp2(expo(rng)));
    if (x > f.maxValue())
      x = f.maxValue();
    if (f.isSigned() && (rng() & 1))
      x = -x;
    ASSERT_EQ(f.encode(x), apEncode(sem, x)) << f.name() << " x=" << x;
  }
}

TEST_P(FloatFormatTest, SaturatesAndHandlesSpecials) {
  Format f = format();
  float max = f.maxValue();
  uint32_t maxCode = f.encode(max);
  EXPECT_EQ(f.decode(maxCode), max);
  EXPECT_EQ(f.encode(kInf), maxCode);
  EXPECT_EQ(f.encode(FLT_MAX), maxCode);
  EXPECT_EQ(f.encode(std::nextafter(max, kInf)), maxCode);
  float nanOut = f.decode(f.encode(kNaN));
  EXPECT_EQ(f.encode(kNaN), f.nanInputCode());
  EXPECT_EQ(f.encode(-kNaN), f.nanInputCode());
  if (f.floatSpec().nonFinite == NonFinite::FiniteOnly)
    EXPECT_EQ(nanOut, max) << "finite-only formats map NaN to +max";
  else
    EXPECT_TRUE(std::isnan(nanOut));
  if (f.isSigned()) {
    EXPECT_EQ(f.decode(f.encode(-kInf)), -max);
    EXPECT_EQ(f.decode(f.encode(-FLT_MAX)), -max);
    float nz = f.decode(f.encode(-0.0f));
    EXPECT_EQ(nz, 0.0f);
    EXPECT_EQ(std::signbit(nz), f.negativeZeroCode().has_value());
  } else {
    EXPECT_EQ(f.decode(f.encode(-1.0f)), f.lowestValue());
  }
}

INSTANTIATE_TEST_SUITE_P(AllFloats, FloatFormatTest,
                         ::testing::ValuesIn(kFloatCases),
                         [](const auto &info) {
                           return std::string(info.param.label);
                         });

TEST(FormatTest, F32IsTheIdentityOnFiniteFloats) {
  Format f = Format::f32();
  EXPECT_EQ(f.bits(), 32);
  EXPECT_EQ(f.maxValue(), FLT_MAX);
  EXPECT_EQ(f.name(), "f32");
  std::mt19937 rng(3);
  for (int i = 0; i < 20000; ++i) {
    uint32_t bits = uint32_t(rng());
    float x;
    std::memcpy(&x, &bits, 4);
    float d = f.decode(bits);
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(d));
      EXPECT_TRUE(f.isNaNCode(bits));
      EXPECT_EQ(f.encode(x), 0x7FC00000u);
      continue;
    }
    uint32_t dbits;
    std::memcpy(&dbits, &d, 4);
    ASSERT_EQ(dbits, bits);
    if (std::isfinite(x)) {
      ASSERT_EQ(f.encode(x), bits) << x;
    }
  }
  EXPECT_EQ(f.encode(std::numeric_limits<float>::denorm_min()), 1u);
  EXPECT_EQ(f.encode(kInf), 0x7F7FFFFFu);
  EXPECT_EQ(f.encode(-kInf), 0xFF7FFFFFu);
  EXPECT_EQ(f.encode(-0.0f), 0x80000000u);
}

//===----------------------------------------------------------------------===//
// The table of special inputs in docs/formats.md, row by row
//===----------------------------------------------------------------------===//

struct SpecialRow {
  const char *format; // byName name, or a key of customFormat()
  const char *row;    // row of the table in docs/formats.md
  float input;
  uint32_t code;
};

Format customFormat(const std::string &name) {
  if (auto f = Format::byName(name))
    return *f;
  if (name == "ue4m3") // unsigned with zero, finite only
    return *Format::makeFloat(
        spec(4, 3, 7, NonFinite::FiniteOnly, NanEncoding::IEEE, false));
  if (name == "ue5m2") // unsigned IEEE
    return *Format::makeFloat(
        spec(5, 2, 15, NonFinite::IEEE, NanEncoding::IEEE, false));
  if (name == "e3m1nz") // signed, no zero: smallest magnitude 2^-3
    return *Format::makeFloat(spec(3, 1, 3, NonFinite::FiniteOnly,
                                   NanEncoding::IEEE, true, false));
  if (name == "lut4") // -1 0 1 2
    return *Format::makeLut({-1.0f, 0.0f, 1.0f, 2.0f});
  if (name == "lutpair") // -1 1: NaN takes the lowest index
    return *Format::makeLut({-1.0f, 1.0f});
  if (name == "lutpos") // no zero, all positive
    return *Format::makeLut({0.5f, 1.0f, 4.0f});
  ADD_FAILURE() << "unknown format " << name;
  return Format::intN(4, true);
}

const float kBig = 1e30f;

const SpecialRow kSpecialRows[] = {
    // --- int (signed) ---
    {"int4", "NaN", kNaN, 0x0},
    {"int4", "+Inf", kInf, 0x7},
    {"int4", "-Inf", -kInf, 0x8},
    {"int4", "-0.0", -0.0f, 0x0},
    {"int4", "beyond max", 7.6f, 0x7},
    {"int4", "beyond max", kBig, 0x7},
    {"int4", "beyond max", -8.6f, 0x8},
    {"int4", "beyond max", -kBig, 0x8},
    {"int4", "tie", 2.5f, 0x2},
    {"int4", "tie", 3.5f, 0x4},
    {"int4", "tie", -2.5f, 0xE},
    {"int4", "tie", -0.5f, 0x0},
    {"int8", "-Inf", -kInf, 0x80},
    {"int2", "+Inf", kInf, 0x1},
    // --- int (unsigned) ---
    {"uint4", "NaN", kNaN, 0x0},
    {"uint4", "+Inf", kInf, 0xF},
    {"uint4", "-Inf", -kInf, 0x0},
    {"uint4", "-0.0", -0.0f, 0x0},
    {"uint4", "beyond max", 15.5f, 0xF},
    {"uint4", "negative", -3.0f, 0x0},
    {"uint4", "tie", 0.5f, 0x0},
    {"uint4", "tie", 1.5f, 0x2},
    {"uint4", "tie", 14.5f, 0xE},
    // --- IEEE floats ---
    {"e5m2", "NaN", kNaN, 0x7E},
    {"e5m2", "NaN", -kNaN, 0x7E},
    {"e5m2", "+Inf", kInf, 0x7B},
    {"e5m2", "-Inf", -kInf, 0xFB},
    {"e5m2", "-0.0", -0.0f, 0x80},
    {"e5m2", "beyond max", 61440.0f, 0x7B}, // APFloat: Inf
    {"e5m2", "beyond max", -kBig, 0xFB},
    {"e5m2", "tiny", 0x1p-18f, 0x00},
    {"e5m2", "tiny", -0x1p-18f, 0x80},
    {"e5m2", "tie", 1.125f, 0x3C},   // 1.0 (m=00) vs 1.25 (m=01)
    {"e5m2", "tie", 1.375f, 0x3E},   // 1.25 (m=01) vs 1.5 (m=10)
    {"e5m2", "tie", 0x1p-17f, 0x00}, // 0 vs smallest subnormal
    {"f16", "NaN", kNaN, 0x7E00},
    {"f16", "+Inf", kInf, 0x7BFF},
    {"f16", "-Inf", -kInf, 0xFBFF},
    {"f16", "-0.0", -0.0f, 0x8000},
    {"f16", "beyond max", 65520.0f, 0x7BFF}, // APFloat: Inf
    {"f16", "tiny", 0x1p-26f, 0x0000},
    {"f16", "tie", 0x1p-25f, 0x0000},
    {"bf16", "NaN", kNaN, 0x7FC0},
    {"bf16", "+Inf", kInf, 0x7F7F},
    {"bf16", "-Inf", -kInf, 0xFF7F},
    {"bf16", "-0.0", -0.0f, 0x8000},
    {"bf16", "beyond max", FLT_MAX, 0x7F7F},
    {"bf16", "tie", 1.00390625f, 0x3F80}, // 1 + 2^-8: 1.0 vs 1 + 2^-7
    {"f32", "NaN", kNaN, 0x7FC00000},
    {"f32", "+Inf", kInf, 0x7F7FFFFF},
    {"f32", "-0.0", -0.0f, 0x80000000},
    // --- NaN-only, all-ones NaN ---
    {"e4m3fn", "NaN", kNaN, 0x7F},
    {"e4m3fn", "NaN", -kNaN, 0x7F},
    {"e4m3fn", "+Inf", kInf, 0x7E},
    {"e4m3fn", "-Inf", -kInf, 0xFE},
    {"e4m3fn", "-0.0", -0.0f, 0x80},
    {"e4m3fn", "beyond max", 464.0f, 0x7E},
    {"e4m3fn", "beyond max", 480.0f, 0x7E}, // APFloat: NaN
    {"e4m3fn", "beyond max", -1000.0f, 0xFE},
    {"e4m3fn", "tiny", -0x1p-12f, 0x80},
    {"e4m3fn", "tie", 0x1p-10f, 0x00}, // 0 vs 2^-9
    {"e4m3fn", "tie", 0x3p-10f, 0x02}, // 2^-9 (m=001) vs 2^-8 (m=010)
    {"e4m3fn", "tie", 1.0625f, 0x38},  // 1.0 vs 1.125
    {"e8m0fnu", "NaN", kNaN, 0xFF},
    {"e8m0fnu", "+Inf", kInf, 0xFE},
    {"e8m0fnu", "-Inf", -kInf, 0x00},
    {"e8m0fnu", "-0.0", -0.0f, 0x00},
    {"e8m0fnu", "negative", -5.0f, 0x00},
    {"e8m0fnu", "beyond max", FLT_MAX, 0xFE},
    {"e8m0fnu", "below smallest", 0.0f, 0x00},
    {"e8m0fnu", "below smallest", 0x1p-140f, 0x00},
    {"e8m0fnu", "below smallest", std::numeric_limits<float>::denorm_min(),
     0x00},
    {"e8m0fnu", "tie", 1.5f, 128},   // 1 vs 2: up to 2 (even code)
    {"e8m0fnu", "tie", 3.0f, 129},   // 2 vs 4: up to 4 (odd code)
    {"e8m0fnu", "tie", 0.75f, 127},  // 0.5 vs 1: up to 1 (odd code)
    {"e8m0fnu", "tie", 0x3p-128f, 1}, // 2^-127 vs 2^-126
    // --- NaN-only, negative-zero NaN (FNUZ) ---
    {"e4m3fnuz", "NaN", kNaN, 0x80},
    {"e4m3fnuz", "+Inf", kInf, 0x7F},
    {"e4m3fnuz", "-Inf", -kInf, 0xFF},
    {"e4m3fnuz", "-0.0", -0.0f, 0x00},
    {"e4m3fnuz", "beyond max", 248.0f, 0x7F}, // APFloat: NaN
    {"e4m3fnuz", "tiny", -0x1p-13f, 0x00},
    {"e4m3fnuz", "tie", 0x1p-11f, 0x00}, // 0 vs 2^-10
    {"e5m2fnuz", "NaN", kNaN, 0x80},
    {"e5m2fnuz", "-Inf", -kInf, 0xFF},
    {"e5m2fnuz", "-0.0", -0.0f, 0x00},
    // --- finite-only ---
    {"e2m1fn", "NaN", kNaN, 0x7},
    {"e2m1fn", "NaN", -kNaN, 0x7},
    {"e2m1fn", "+Inf", kInf, 0x7},
    {"e2m1fn", "-Inf", -kInf, 0xF},
    {"e2m1fn", "-0.0", -0.0f, 0x8},
    {"e2m1fn", "beyond max", 7.0f, 0x7},
    {"e2m1fn", "beyond max", -100.0f, 0xF},
    {"e2m1fn", "tiny", -0.1f, 0x8},
    {"e2m1fn", "tie", 0.25f, 0x0}, // 0 vs 0.5
    {"e2m1fn", "tie", 0.75f, 0x2}, // 0.5 vs 1
    {"e2m1fn", "tie", 2.5f, 0x4},  // 2 vs 3
    {"e2m1fn", "tie", 5.0f, 0x6},  // 4 vs 6
    {"e2m1fn", "tie", -5.0f, 0xE},
    {"e2m3fn", "NaN", kNaN, 0x1F},
    {"e2m3fn", "-Inf", -kInf, 0x3F},
    {"e2m3fn", "-0.0", -0.0f, 0x20},
    {"e3m2fn", "NaN", kNaN, 0x1F},
    {"e3m2fn", "+Inf", kInf, 0x1F},
    {"e3m2fn", "-0.0", -0.0f, 0x20},
    // --- unsigned floats ---
    {"ue4m3", "NaN", kNaN, 0x7F},
    {"ue4m3", "+Inf", kInf, 0x7F},
    {"ue4m3", "-Inf", -kInf, 0x00},
    {"ue4m3", "-0.0", -0.0f, 0x00},
    {"ue4m3", "negative", -1.0f, 0x00},
    {"ue4m3", "tie", 1.0625f, 0x38},
    {"ue5m2", "NaN", kNaN, 0x7E},
    {"ue5m2", "+Inf", kInf, 0x7B},
    {"ue5m2", "negative", -1.0f, 0x00},
    // --- signed without zero ---
    {"e3m1nz", "-0.0", -0.0f, 0x10},
    {"e3m1nz", "below smallest", 0.0f, 0x00},
    {"e3m1nz", "below smallest", 1e-10f, 0x00},
    {"e3m1nz", "below smallest", -1e-10f, 0x10},
    // --- LUT ---
    {"nf4", "NaN", kNaN, 7},
    {"nf4", "+Inf", kInf, 15},
    {"nf4", "-Inf", -kInf, 0},
    {"nf4", "-0.0", -0.0f, 7},
    {"nf4", "beyond max", 1.5f, 15},
    {"nf4", "beyond max", -kBig, 0},
    {"lut4", "tie", 0.5f, 2},  // idx 1 vs 2
    {"lut4", "tie", 1.5f, 2},  // idx 2 vs 3
    {"lut4", "tie", -0.5f, 0}, // idx 0 vs 1
    {"lutpair", "NaN", kNaN, 0},
    {"lutpos", "NaN", kNaN, 0},
    {"lutpos", "negative", -3.0f, 0},
    {"lutpos", "-0.0", -0.0f, 0},
    {"lutpos", "tie", 2.5f, 2}, // idx 1 vs 2
};

TEST(FormatTest, SpecialInputsFollowTheDocumentedTable) {
  for (const SpecialRow &r : kSpecialRows) {
    Format f = customFormat(r.format);
    EXPECT_EQ(f.encode(r.input), r.code)
        << r.format << " row '" << r.row << "' input " << r.input;
    if (std::isnan(r.input)) {
      EXPECT_EQ(f.nanInputCode(), r.code) << r.format;
    }
  }
}

/// The table's "(APFloat: ...)" notes: where saturation departs from
/// APFloat's IEEE-style overflow.
TEST(FormatTest, SaturationDiffersFromAPFloatWhereDocumented) {
  auto apIsInf = [](const llvm::fltSemantics &sem, unsigned bits, float x) {
    return std::isinf(apDecode(sem, bits, apEncode(sem, x)));
  };
  auto apIsNaN = [](const llvm::fltSemantics &sem, unsigned bits, float x) {
    return std::isnan(apDecode(sem, bits, apEncode(sem, x)));
  };
  EXPECT_TRUE(apIsInf(llvm::APFloat::Float8E5M2(), 8, 61440.0f));
  EXPECT_EQ(Format::e5m2().encode(61440.0f), 0x7Bu);
  EXPECT_TRUE(apIsInf(llvm::APFloat::IEEEhalf(), 16, 65520.0f));
  EXPECT_EQ(Format::f16().encode(65520.0f), 0x7BFFu);
  EXPECT_TRUE(apIsNaN(llvm::APFloat::Float8E4M3FN(), 8, 480.0f));
  EXPECT_EQ(Format::e4m3fn().encode(480.0f), 0x7Eu);
  // 464 is the tie between 448 (even mantissa) and 480: APFloat keeps 448.
  EXPECT_EQ(apEncode(llvm::APFloat::Float8E4M3FN(), 464.0f), 0x7Eu);
  EXPECT_TRUE(apIsNaN(llvm::APFloat::Float8E4M3FNUZ(), 8, 248.0f));
  EXPECT_EQ(Format::e4m3fnuz().encode(248.0f), 0x7Fu);
  EXPECT_TRUE(apIsNaN(llvm::APFloat::Float8E8M0FNU(), 8, -1.0f));
  EXPECT_EQ(Format::e8m0fnu().encode(-1.0f), 0x00u);
}

TEST(FormatTest, DecodeIgnoresBitsAboveTheWidth) {
  EXPECT_EQ(Format::e2m1fn().decode(0x17), 6.0f);
  EXPECT_EQ(Format::e2m1fn().decode(0xF2), Format::e2m1fn().decode(0x2));
  EXPECT_TRUE(Format::e4m3fn().isNaNCode(0x17F));
  EXPECT_EQ(Format::intN(4, true).decode(0x1F), -1.0f);
  EXPECT_EQ(Format::intN(3, false).decode(0xF9), 1.0f);
  EXPECT_EQ(Format::f32().numCodes(), 0xFFFFFFFFu);
}

TEST(FormatTest, NaNAndNegativeZeroCodes) {
  EXPECT_TRUE(Format::e4m3fn().isNaNCode(0x7F));
  EXPECT_TRUE(Format::e4m3fn().isNaNCode(0xFF));
  EXPECT_FALSE(Format::e4m3fn().isNaNCode(0x7E));
  EXPECT_EQ(Format::e4m3fn().negativeZeroCode(), 0x80u);
  EXPECT_TRUE(Format::e4m3fnuz().isNaNCode(0x80));
  EXPECT_FALSE(Format::e4m3fnuz().isNaNCode(0x00));
  EXPECT_FALSE(Format::e4m3fnuz().negativeZeroCode());
  EXPECT_FALSE(Format::e5m2fnuz().negativeZeroCode());
  EXPECT_EQ(Format::e5m2().negativeZeroCode(), 0x80u);
  EXPECT_TRUE(Format::e5m2().isNaNCode(0x7D));
  EXPECT_FALSE(Format::e5m2().isNaNCode(0x7C)); // +Inf
  EXPECT_EQ(Format::e5m2().decode(0x7C), kInf);
  EXPECT_EQ(Format::e5m2().decode(0xFC), -kInf);
  EXPECT_EQ(Format::e2m1fn().negativeZeroCode(), 0x8u);
  for (uint32_t c = 0; c < 16; ++c)
    EXPECT_FALSE(Format::e2m1fn().isNaNCode(c));
  EXPECT_TRUE(Format::e8m0fnu().isNaNCode(0xFF));
  EXPECT_FALSE(Format::e8m0fnu().negativeZeroCode());
  EXPECT_FALSE(Format::intN(4, true).negativeZeroCode());
  EXPECT_FALSE(Format::intN(4, true).isNaNCode(0xF));
  EXPECT_FALSE(Format::nf4().negativeZeroCode());
  EXPECT_TRUE(Format::nf4().isNaNCode(16));
  EXPECT_TRUE(std::isnan(Format::nf4().decode(16)));
  EXPECT_FALSE(Format::nf4().isNaNCode(15));
}

//===----------------------------------------------------------------------===//
// Named formats, names, maximum values
//===----------------------------------------------------------------------===//

TEST(FormatTest, MaxAndLowestValues) {
  EXPECT_EQ(Format::e4m3fn().maxValue(), 448.0f);
  EXPECT_EQ(Format::e5m2().maxValue(), 57344.0f);
  EXPECT_EQ(Format::e4m3fnuz().maxValue(), 240.0f);
  EXPECT_EQ(Format::e5m2fnuz().maxValue(), 57344.0f);
  EXPECT_EQ(Format::e2m3fn().maxValue(), 7.5f);
  EXPECT_EQ(Format::e3m2fn().maxValue(), 28.0f);
  EXPECT_EQ(Format::e2m1fn().maxValue(), 6.0f);
  EXPECT_EQ(Format::e8m0fnu().maxValue(), 0x1p127f);
  EXPECT_EQ(Format::f16().maxValue(), 65504.0f);
  EXPECT_EQ(Format::bf16().maxValue(), 0x1.FEp127f);
  EXPECT_EQ(Format::intN(4, true).maxValue(), 7.0f);
  EXPECT_EQ(Format::intN(4, false).maxValue(), 15.0f);
  EXPECT_EQ(Format::intN(8, true).maxValue(), 127.0f);
  EXPECT_EQ(Format::nf4().maxValue(), 1.0f);

  EXPECT_EQ(Format::e4m3fn().lowestValue(), -448.0f);
  EXPECT_EQ(Format::e8m0fnu().lowestValue(), 0x1p-127f);
  EXPECT_EQ(Format::intN(4, true).lowestValue(), -8.0f);
  EXPECT_EQ(Format::intN(4, false).lowestValue(), 0.0f);
  EXPECT_EQ(Format::nf4().lowestValue(), -1.0f);
  Format lut = *Format::makeLut({-8.0f, 0.0f, 7.0f});
  EXPECT_EQ(lut.maxValue(), 7.0f) << "largest value, not largest magnitude";
  EXPECT_EQ(lut.lowestValue(), -8.0f);
}

TEST(FormatTest, RepresentableValues) {
  std::vector<float> e2m1 = {-6, -4, -3, -2, -1.5, -1, -0.5, 0,
                             0.5, 1, 1.5, 2, 3, 4, 6};
  EXPECT_EQ(Format::e2m1fn().representableValues(), e2m1);
  EXPECT_EQ(Format::e4m3fn().representableValues().size(), 253u);
  EXPECT_EQ(Format::e5m2().representableValues().size(), 247u);
  EXPECT_EQ(Format::e4m3fnuz().representableValues().size(), 255u);
  EXPECT_EQ(Format::e8m0fnu().representableValues().size(), 255u);
  EXPECT_EQ(Format::f16().representableValues().size(), 63487u);
  EXPECT_EQ(Format::intN(3, true).representableValues(),
            (std::vector<float>{-4, -3, -2, -1, 0, 1, 2, 3}));
  EXPECT_EQ(Format::nf4().representableValues(), Format::nf4Values());
  EXPECT_TRUE(Format::f32().representableValues().empty());
  for (float v : Format::e5m2().representableValues())
    EXPECT_FALSE(v == 0 && std::signbit(v)) << "a single +0";
}

TEST(FormatTest, NamesAndByName) {
  for (const char *n : {"e4m3fn", "e5m2", "e4m3fnuz", "e5m2fnuz", "e2m3fn",
                        "e3m2fn", "e2m1fn", "e8m0fnu", "f16", "bf16", "f32",
                        "nf4", "int2", "int8", "uint2", "uint8"}) {
    auto f = Format::byName(n);
    ASSERT_TRUE(f) << n;
    EXPECT_EQ(f->name(), n);
  }
  EXPECT_EQ(*Format::byName("e4m3fn"), Format::e4m3fn());
  EXPECT_EQ(*Format::byName("bf16"), Format::bf16());
  EXPECT_EQ(*Format::byName("int4"), Format::intN(4, true));
  EXPECT_EQ(*Format::byName("uint3"), Format::intN(3, false));
  EXPECT_NE(Format::intN(4, true), Format::intN(4, false));
  EXPECT_NE(Format::e4m3fn(), Format::e4m3fnuz());
  for (const char *n : {"", "int", "uint", "int1", "int9", "uint0", "int16",
                        "int4x", "e4m3", "fp8", "nf3", "lut16", "F16",
                        "float<e3m4,bias=3,ieee>"})
    EXPECT_FALSE(Format::byName(n)) << n;

  EXPECT_EQ(Format::floatSpecName(*Format::namedFloatSpec("e5m2fnuz")),
            "e5m2fnuz");
  EXPECT_EQ(Format::floatSpecName(
                spec(3, 4, 3, NonFinite::IEEE, NanEncoding::IEEE)),
            "");
  EXPECT_FALSE(Format::namedFloatSpec("nf4"));

  auto name = [](FloatSpec s) { return Format::makeFloat(s)->name(); };
  EXPECT_EQ(name(spec(3, 4, 3, NonFinite::IEEE, NanEncoding::IEEE)),
            "float<e3m4,bias=3,ieee>");
  EXPECT_EQ(name(spec(4, 3, 11, NonFinite::NanOnly, NanEncoding::NegativeZero)),
            "float<e4m3,bias=11,nan_only:negative_zero>");
  EXPECT_EQ(name(spec(4, 3, 8, NonFinite::NanOnly, NanEncoding::AllOnes)),
            "float<e4m3,bias=8,nan_only:all_ones>");
  EXPECT_EQ(name(spec(3, 1, 2, NonFinite::FiniteOnly, NanEncoding::IEEE,
                      false, false)),
            "float<e3m1,bias=2,finite_only,unsigned,no_zero>");

  EXPECT_EQ(Format::nf4().name(), "nf4");
  EXPECT_EQ(Format::makeLut({0.0f, 1.0f, 2.0f})->name(), "lut3");
  std::vector<float> almostNf4 = Format::nf4Values();
  almostNf4[3] = std::nextafter(almostNf4[3], 0.0f);
  EXPECT_EQ(Format::makeLut(almostNf4)->name(), "lut16");
  EXPECT_EQ(Format::nf4Values().size(), 16u);
  EXPECT_EQ(Format::nf4Values()[1], -0.6961928009986877f);
  EXPECT_EQ(Format::nf4Values()[13], 0.5626170039176941f);
}

TEST(FormatTest, KindsWidthsAndSignedness) {
  EXPECT_EQ(Format::intN(5, true).kind(), Kind::Int);
  EXPECT_EQ(Format::e2m1fn().kind(), Kind::Float);
  EXPECT_EQ(Format::nf4().kind(), Kind::Lut);
  EXPECT_EQ(Format::e2m3fn().bits(), 6);
  EXPECT_EQ(Format::e2m1fn().bits(), 4);
  EXPECT_EQ(Format::bf16().bits(), 16);
  EXPECT_EQ(Format::e2m1fn().numCodes(), 16u);
  EXPECT_EQ(Format::nf4().numCodes(), 16u);
  EXPECT_TRUE(Format::e4m3fn().isSigned());
  EXPECT_FALSE(Format::e8m0fnu().isSigned());
  EXPECT_TRUE(Format::nf4().isSigned());
  EXPECT_FALSE(Format::makeLut({0.0f, 1.0f})->isSigned());
  EXPECT_FALSE(Format::intN(2, false).isSigned());
}

/// decode(encode(decode(c))) == decode(c) for every non-NaN code of every
/// named format of at most 8 bits. Inf codes (e5m2) are skipped: +-Inf
/// saturate to +-max by design.
TEST(FormatTest, RoundTripEveryNamedFormat) {
  std::vector<std::string> names = {"e4m3fn", "e5m2",   "e4m3fnuz",
                                    "e5m2fnuz", "e2m3fn", "e3m2fn",
                                    "e2m1fn", "e8m0fnu", "nf4"};
  for (int b = 2; b <= 8; ++b) {
    names.push_back("int" + std::to_string(b));
    names.push_back("uint" + std::to_string(b));
  }
  int roundTrips = 0;
  for (const std::string &n : names) {
    auto f = Format::byName(n);
    ASSERT_TRUE(f) << n;
    ASSERT_LE(f->bits(), 8);
    for (uint32_t c = 0; c < f->numCodes(); ++c) {
      if (f->isNaNCode(c))
        continue;
      float v = f->decode(c);
      ASSERT_FALSE(std::isnan(v)) << n << " code " << c;
      if (std::isinf(v)) {
        EXPECT_EQ(f->decode(f->encode(v)), std::copysign(f->maxValue(), v));
        continue;
      }
      float back = f->decode(f->encode(v));
      EXPECT_EQ(back, v) << n << " code " << c;
      EXPECT_EQ(std::signbit(back), std::signbit(v)) << n << " code " << c;
      ++roundTrips;
    }
  }
  EXPECT_GT(roundTrips, 2000);
}

//===----------------------------------------------------------------------===//
// Integers
//===----------------------------------------------------------------------===//

TEST(FormatTest, IntegersEveryWidth) {
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sgn : {true, false}) {
      Format f = Format::intN(bits, sgn);
      SCOPED_TRACE(f.name());
      EXPECT_EQ(f.bits(), bits);
      EXPECT_EQ(f.numCodes(), 1u << bits);
      int lo = sgn ? -(1 << (bits - 1)) : 0;
      int hi = sgn ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
      EXPECT_EQ(f.maxValue(), float(hi));
      EXPECT_EQ(f.lowestValue(), float(lo));
      auto codeOf = [&](int v) { return uint32_t(v) & ((1u << bits) - 1); };
      for (uint32_t c = 0; c < f.numCodes(); ++c) {
        int want = (sgn && c >= (1u << (bits - 1))) ? int(c) - (1 << bits)
                                                     : int(c);
        ASSERT_EQ(f.decode(c), float(want)) << c;
        ASSERT_EQ(f.encode(float(want)), c);
      }
      auto clampI = [&](int v) { return std::min(std::max(v, lo), hi); };
      for (int k = lo - 3; k <= hi + 3; ++k) {
        float half = k + 0.5f;
        int rne = (k % 2 == 0) ? k : k + 1; // ties to even
        ASSERT_EQ(f.encode(half), codeOf(clampI(rne))) << half;
        ASSERT_EQ(f.encode(std::nextafter(half, -kInf)), codeOf(clampI(k)))
            << half;
        ASSERT_EQ(f.encode(std::nextafter(half, kInf)), codeOf(clampI(k + 1)))
            << half;
      }
      EXPECT_EQ(f.encode(kNaN), 0u);
      EXPECT_EQ(f.encode(-0.0f), 0u);
      EXPECT_EQ(f.encode(kInf), codeOf(hi));
      EXPECT_EQ(f.encode(-kInf), codeOf(lo));
      EXPECT_EQ(f.encode(FLT_MAX), codeOf(hi));
      EXPECT_EQ(f.encode(-FLT_MAX), codeOf(lo));
      EXPECT_EQ(f.encode(1e9f), codeOf(hi));
      EXPECT_EQ(f.encode(-1e9f), codeOf(lo));
      EXPECT_EQ(f.encode(std::numeric_limits<float>::denorm_min()), 0u);
    }
  }
  EXPECT_EQ(Format::intN(4, true).encode(-1.0f), 0xFu);
  EXPECT_EQ(Format::intN(8, true).encode(-128.0f), 0x80u);
  EXPECT_EQ(Format::intN(8, true).decode(0xFF), -1.0f);
}

TEST(FormatTest, IntValidation) {
  std::string why;
  for (int bits : {-3, 0, 1, 9, 16}) {
    why.clear();
    EXPECT_FALSE(Format::makeInt(bits, true, &why)) << bits;
    EXPECT_NE(why.find("bits is " + std::to_string(bits)), std::string::npos)
        << why;
    EXPECT_NE(why.find("2..8"), std::string::npos) << why;
  }
  EXPECT_FALSE(Format::makeInt(1, false)); // no error string requested
  EXPECT_TRUE(Format::makeInt(2, false));
  EXPECT_TRUE(Format::makeInt(8, true));
}

//===----------------------------------------------------------------------===//
// Lookup tables
//===----------------------------------------------------------------------===//

/// Brute-force nearest index, ties to the even index.
uint32_t bruteNearest(const std::vector<float> &t, float x) {
  uint32_t best = 0;
  long double bestD = std::fabs((long double)x - t[0]);
  for (uint32_t i = 1; i < t.size(); ++i) {
    long double d = std::fabs((long double)x - t[i]);
    if (d < bestD || (d == bestD && i % 2 == 0)) {
      best = i;
      bestD = d;
    }
  }
  return best;
}

TEST(FormatTest, LutNearestAndTies) {
  Format nf4 = Format::nf4();
  EXPECT_EQ(nf4.bits(), 4);
  const auto &t = Format::nf4Values();
  for (uint32_t i = 0; i < 16; ++i) {
    EXPECT_EQ(nf4.decode(i), t[i]);
    EXPECT_EQ(nf4.encode(t[i]), i);
  }
  EXPECT_EQ(nf4.encode(0.9f), 15u);
  EXPECT_EQ(nf4.encode(0.6f), 13u);
  EXPECT_EQ(nf4.encode(-0.04f), 7u);
  EXPECT_EQ(nf4.encode(-0.05f), 6u);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1.3f, 1.3f);
  for (int i = 0; i < 20000; ++i) {
    float x = u(rng);
    ASSERT_EQ(nf4.encode(x), bruteNearest(t, x)) << x;
  }
  // Ties go to the even index, whichever side it is on.
  Format lut = *Format::makeLut({0.0f, 1.0f, 2.0f, 4.0f, 8.0f});
  EXPECT_EQ(lut.encode(0.5f), 0u);
  EXPECT_EQ(lut.encode(1.5f), 2u);
  EXPECT_EQ(lut.encode(3.0f), 2u);
  EXPECT_EQ(lut.encode(6.0f), 4u);
  EXPECT_EQ(lut.encode(std::nextafter(1.5f, 0.0f)), 1u);
  EXPECT_EQ(lut.encode(std::nextafter(3.0f, 8.0f)), 3u);
  // Exact distance comparison even where the double sum lo + hi rounds:
  // 0.5 is nearer 2^-60 (index 1) than 1.0 (index 2) by 2^-60.
  Format far = *Format::makeLut({-1.0f, 0x1p-60f, 1.0f});
  EXPECT_EQ(far.encode(0.5f), 1u);
  EXPECT_EQ(far.encode(std::nextafter(0.5f, 1.0f)), 2u);
}

TEST(FormatTest, LutWithInt4ValuesEncodesLikeInt4) {
  std::vector<float> v;
  for (int i = -8; i <= 7; ++i)
    v.push_back(float(i));
  Format lut = *Format::makeLut(v);
  Format i4 = Format::intN(4, true);
  EXPECT_EQ(lut.bits(), 4);
  int n = 0;
  auto same = [&](float x) {
    ASSERT_EQ(lut.decode(lut.encode(x)), i4.decode(i4.encode(x))) << x;
    ++n;
  };
  for (float x = -10.0f; x <= 10.0f; x += 1.0f / 256)
    same(x);
  for (int k = -10; k <= 10; ++k) {
    float h = k + 0.5f;
    same(h);
    same(std::nextafter(h, -kInf));
    same(std::nextafter(h, kInf));
  }
  for (float x : {kInf, -kInf, kNaN, -0.0f, 1e20f, -1e20f})
    same(x);
  EXPECT_GT(n, 5000);
}

TEST(FormatTest, LutProperties) {
  EXPECT_EQ(Format::makeLut({-1.0f, 1.0f})->bits(), 1);
  EXPECT_EQ(Format::makeLut({-1.0f, 0.0f, 1.0f})->bits(), 2);
  EXPECT_EQ(Format::makeLut(std::vector<float>{1, 2, 3, 4})->bits(), 2);
  std::vector<float> v(17);
  for (int i = 0; i < 17; ++i)
    v[i] = float(i);
  EXPECT_EQ(Format::makeLut(v)->bits(), 5);
  v.resize(256);
  for (int i = 0; i < 256; ++i)
    v[i] = float(i) - 128;
  Format big = *Format::makeLut(v);
  EXPECT_EQ(big.bits(), 8);
  EXPECT_EQ(big.numCodes(), 256u);
  EXPECT_EQ(big.encode(-127.5f), 0u);
  EXPECT_EQ(big.encode(3.2f), 131u);
  // -0.0 is stored as +0.0.
  Format nz = *Format::makeLut({-1.0f, -0.0f, 1.0f});
  EXPECT_FALSE(std::signbit(nz.decode(1)));
  EXPECT_EQ(nz, *Format::makeLut({-1.0f, 0.0f, 1.0f}));
  // Codes past the table decode to NaN.
  EXPECT_TRUE(std::isnan(nz.decode(3)));
  EXPECT_TRUE(nz.isNaNCode(3));
}

TEST(FormatTest, LutValidation) {
  std::string why;
  EXPECT_FALSE(Format::makeLut({0.0f, 1.0f, 0.5f}, &why));
  EXPECT_NE(why.find("value 2 is not above value 1"), std::string::npos)
      << why;
  EXPECT_NE(why.find("ascending"), std::string::npos) << why;
  EXPECT_FALSE(Format::makeLut({0.0f, 1.0f, 1.0f, 2.0f}, &why));
  EXPECT_NE(why.find("value 2 is not above value 1"), std::string::npos)
      << why;
  EXPECT_FALSE(Format::makeLut({0.0f, -0.0f}, &why)) << "-0 == +0";
  EXPECT_FALSE(Format::makeLut({0.0f, 1.0f, kNaN}, &why));
  EXPECT_NE(why.find("value 2 is not finite"), std::string::npos) << why;
  EXPECT_FALSE(Format::makeLut({-kInf, 1.0f}, &why));
  EXPECT_NE(why.find("value 0 is not finite"), std::string::npos) << why;
  std::vector<float> v(257);
  for (int i = 0; i < 257; ++i)
    v[i] = float(i);
  EXPECT_FALSE(Format::makeLut(v, &why));
  EXPECT_NE(why.find("257"), std::string::npos) << why;
  EXPECT_FALSE(Format::makeLut({1.0f}, &why));
  EXPECT_NE(why.find("has 1"), std::string::npos) << why;
  EXPECT_FALSE(Format::makeLut({}, &why));
  v.resize(256);
  EXPECT_TRUE(Format::makeLut(v, &why));
}

//===----------------------------------------------------------------------===//
// Float validation
//===----------------------------------------------------------------------===//

TEST(FormatTest, FloatValidation) {
  struct Bad {
    FloatSpec spec;
    std::vector<const char *> mentions;
  };
  const NonFinite IEEE = NonFinite::IEEE, NanOnly = NonFinite::NanOnly,
                  Finite = NonFinite::FiniteOnly;
  const NanEncoding nI = NanEncoding::IEEE, nOnes = NanEncoding::AllOnes,
                    nNZ = NanEncoding::NegativeZero;
  const Bad bad[] = {
      {spec(0, 3, 0, Finite, nI), {"expBits", "0"}},
      {spec(9, 3, 255, Finite, nI), {"expBits", "9"}},
      {spec(11, 52, 1023, IEEE, nI), {"expBits", "11"}},
      {spec(4, -1, 7, Finite, nI), {"manBits", "-1"}},
      {spec(8, 24, 127, IEEE, nI), {"manBits", "24"}},
      {spec(4, 3, 7, IEEE, nOnes), {"nonfinite = ieee", "all_ones"}},
      {spec(1, 3, 0, IEEE, nI), {"2 exponent bits", "expBits is 1"}},
      {spec(4, 0, 7, IEEE, nI), {"mantissa bit", "manBits is 0"}},
      {spec(4, 3, 7, NanOnly, nI), {"nan_only", "nan is ieee"}},
      {spec(4, 3, 8, NanOnly, nNZ, false), {"negative_zero", "unsigned"}},
      {spec(4, 3, 8, NanOnly, nNZ, true, false), {"negative_zero", "no_zero"}},
      {spec(2, 1, 1, Finite, nNZ), {"finite_only", "negative_zero"}},
      {spec(2, 1, 1, Finite, nOnes), {"finite_only", "all_ones"}},
      {spec(1, 0, 0, NanOnly, nOnes, false), {"fewer than two", "e1m0"}},
      {spec(8, 3, 100, IEEE, nI), {"bias 100", "largest"}},
      {spec(5, 2, -5000, IEEE, nI), {"bias -5000", "largest"}},
      {spec(5, 2, 200, IEEE, nI), {"bias 200", "smallest"}},
      {spec(5, 2, 100000, IEEE, nI), {"bias 100000", "smallest"}},
      {spec(8, 0, 126, NanOnly, nOnes, false, false), {"bias 126", "largest"}},
  };
  for (const Bad &b : bad) {
    std::string why;
    EXPECT_FALSE(Format::makeFloat(b.spec, &why))
        << "e" << b.spec.expBits << "m" << b.spec.manBits;
    EXPECT_FALSE(why.empty());
    for (const char *m : b.mentions) {
      EXPECT_NE(why.find(m), std::string::npos)
          << "'" << why << "' should mention '" << m << "'";
    }
    EXPECT_FALSE(Format::makeFloat(b.spec)); // null error pointer is fine
  }
  // Valid corner cases.
  EXPECT_TRUE(Format::makeFloat(spec(1, 0, 0, Finite, nI, false))); // {0, 2}
  Format oneBit = *Format::makeFloat(spec(1, 0, 0, Finite, nI, false));
  EXPECT_EQ(oneBit.bits(), 1);
  EXPECT_EQ(oneBit.representableValues(), (std::vector<float>{0.0f, 2.0f}));
  EXPECT_EQ(oneBit.encode(1.0f), 0u); // tie: even code
  EXPECT_TRUE(Format::makeFloat(spec(2, 0, 1, IEEE, nI, true, true)) ==
              std::nullopt);
  EXPECT_TRUE(Format::makeFloat(spec(8, 0, 127, NanOnly, nOnes, false, false)));
  EXPECT_TRUE(Format::makeFloat(spec(8, 0, 128, NanOnly, nOnes, false, false)));
  EXPECT_EQ(Format::makeFloat(spec(8, 0, 128, NanOnly, nOnes, false, false))
                ->lowestValue(),
            0x1p-128f);
  EXPECT_TRUE(Format::makeFloat(spec(8, 0, -127, NanOnly, nOnes, false, false)) ==
              std::nullopt);
  EXPECT_TRUE(Format::makeFloat(spec(8, 23, 127, IEEE, nI)));  // f32
  EXPECT_TRUE(Format::makeFloat(spec(8, 23, 128, IEEE, nI)) == std::nullopt);
  EXPECT_TRUE(Format::makeFloat(spec(3, 2, -2, Finite, nI))); // bias < 0
}

/// A signed format without zero (its -0.0/+0.0 and tiny inputs go to
/// -+smallest) checked exhaustively against its own value list.
TEST(FormatTest, SignedFormatWithoutZero) {
  Format f = *Format::makeFloat(
      spec(3, 1, 3, NonFinite::FiniteOnly, NanEncoding::IEEE, true, false));
  std::vector<float> v = f.representableValues();
  ASSERT_EQ(v.size(), 32u);
  EXPECT_EQ(v[16], 0.125f);
  EXPECT_EQ(v[15], -0.125f);
  EXPECT_EQ(f.maxValue(), 24.0f);
  EXPECT_EQ(f.lowestValue(), -24.0f);
  for (uint32_t c = 0; c < 32; ++c)
    EXPECT_EQ(f.decode(f.encode(f.decode(c))), f.decode(c));
  EXPECT_EQ(f.decode(f.encode(0.1f)), 0.125f);
  EXPECT_EQ(f.decode(f.encode(-0.0001f)), -0.125f);
}

//===----------------------------------------------------------------------===//
// E8M0 scales
//===----------------------------------------------------------------------===//

TEST(FormatTest, E8M0ScalePowersAndBetween) {
  for (int k = -127; k <= 127; ++k) {
    float p = std::ldexp(1.0f, k);
    uint8_t code = uint8_t(k + 127);
    EXPECT_EQ(*encodeE8M0(p, ScaleRounding::Floor), code) << k;
    EXPECT_EQ(*encodeE8M0(p, ScaleRounding::Ceil), code) << k;
    EXPECT_EQ(Format::e8m0fnu().decode(code), p);
    if (k < 127) {
      for (float between : {p * 1.5f, std::nextafter(p, kInf),
                            std::nextafter(2 * p, 0.0f)}) {
        EXPECT_EQ(*encodeE8M0(between, ScaleRounding::Floor), code) << between;
        EXPECT_EQ(*encodeE8M0(between, ScaleRounding::Ceil), code + 1)
            << between;
      }
    }
  }
  EXPECT_EQ(*encodeE8M0(3.0f, ScaleRounding::Floor), 128);
  EXPECT_EQ(*encodeE8M0(3.0f, ScaleRounding::Ceil), 129);
  EXPECT_EQ(*encodeE8M0(0.3f, ScaleRounding::Floor), 125);
  EXPECT_EQ(*encodeE8M0(0.3f, ScaleRounding::Ceil), 126);
}

TEST(FormatTest, E8M0ScaleClampsAndErrors) {
  const float denorm = std::numeric_limits<float>::denorm_min();
  for (auto r : {ScaleRounding::Floor, ScaleRounding::Ceil}) {
    EXPECT_EQ(*encodeE8M0(denorm, r), 0);
    EXPECT_EQ(*encodeE8M0(0x1p-128f, r), 0);
    EXPECT_EQ(*encodeE8M0(FLT_MAX, r), 254);
    EXPECT_EQ(*encodeE8M0(0x1.8p127f, r), 254);
  }
  EXPECT_EQ(*encodeE8M0(0x1.8p-127f, ScaleRounding::Ceil), 1);
  EXPECT_EQ(*encodeE8M0(0x1.8p-127f, ScaleRounding::Floor), 0);
  struct Err {
    float x;
    const char *says;
  };
  for (Err e : {Err{0.0f, "input is 0"}, Err{-0.0f, "input is -0"},
                Err{-1.0f, "input is -1"}, Err{kNaN, "input is NaN"},
                Err{kInf, "input is +Inf"}, Err{-kInf, "input is -Inf"},
                Err{-denorm, "input is -"}}) {
    for (auto r : {ScaleRounding::Floor, ScaleRounding::Ceil}) {
      std::string why;
      EXPECT_FALSE(encodeE8M0(e.x, r, &why)) << e.x;
      EXPECT_NE(why.find("positive and finite"), std::string::npos) << why;
      EXPECT_NE(why.find(e.says), std::string::npos) << why;
      EXPECT_FALSE(encodeE8M0(e.x, r));
    }
  }
}

TEST(FormatTest, E8M0ScaleMatchesAPFloatDirectedRounding) {
  const auto &sem = llvm::APFloat::Float8E8M0FNU();
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> frac(1.0f, 2.0f);
  int n = 0;
  for (int k = -127; k < 127; ++k) {
    float p = std::ldexp(1.0f, k);
    for (float x : {p, std::nextafter(p, kInf), p * 1.25f, p * 1.5f,
                    std::nextafter(2 * p, 0.0f), p * frac(rng)}) {
      EXPECT_EQ(*encodeE8M0(x, ScaleRounding::Floor),
                apEncode(sem, x, llvm::APFloat::rmTowardZero))
          << x;
      EXPECT_EQ(*encodeE8M0(x, ScaleRounding::Ceil),
                apEncode(sem, x, llvm::APFloat::rmTowardPositive))
          << x;
      ++n;
    }
  }
  EXPECT_EQ(n, 254 * 6);
}

/// E8M0 has no mantissa bit, so "ties to even" cannot pick an even
/// mantissa: a value halfway between 2^k and 2^(k+1) rounds up to
/// 2^(k+1), whatever the parity of the code. APFloat does the same.
TEST(FormatTest, E8M0EncodeTiesRoundUp) {
  Format f = Format::e8m0fnu();
  const auto &sem = llvm::APFloat::Float8E8M0FNU();
  for (int k = -127; k < 127; ++k) {
    float tie = std::ldexp(1.5f, k);
    EXPECT_EQ(f.encode(tie), uint32_t(k + 128)) << k;
    EXPECT_EQ(apEncode(sem, tie), uint32_t(k + 128)) << k;
    EXPECT_EQ(f.encode(std::nextafter(tie, 0.0f)), uint32_t(k + 127)) << k;
  }
}

TEST(FormatTest, ScalarQuantizeHelpers) {
  Format i4 = Format::intN(4, true);
  EXPECT_EQ(quantizeScalar(i4, 1.0f, 0.25f), 4u);
  EXPECT_EQ(quantizeScalar(i4, 1.0f, 0.25f, 2.0f), 6u);
  EXPECT_EQ(dequantizeScalar(i4, 6u, 0.25f, 2.0f), 1.0f);
  Format e4 = Format::e4m3fn();
  EXPECT_EQ(quantizeScalar(e4, -0.0f, 2.0f), 0x80u);
  EXPECT_TRUE(std::signbit(dequantizeScalar(e4, 0x80u, 2.0f)));
}

} // namespace
