//===- FormatTest.cpp - Exhaustive tests of the format library -----------===//
//
// LLVM's APFloat is the oracle for decode of every code and for encode of
// finite, in-range inputs (at every representable value, every midpoint and
// the floats just around each midpoint). Saturation and special inputs are
// checked against the table in docs/formats.md.
//
//===----------------------------------------------------------------------===//

#include "nibble/Formats/Format.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace nibble::formats;

namespace {

struct FloatCase {
  const char *name;
  const llvm::fltSemantics &(*sem)();
};

const FloatCase kFloatCases[] = {
    {"e4m3fn", llvm::APFloat::Float8E4M3FN},
    {"e5m2", llvm::APFloat::Float8E5M2},
    {"e4m3fnuz", llvm::APFloat::Float8E4M3FNUZ},
    {"e5m2fnuz", llvm::APFloat::Float8E5M2FNUZ},
    {"e2m3fn", llvm::APFloat::Float6E2M3FN},
    {"e3m2fn", llvm::APFloat::Float6E3M2FN},
    {"e2m1fn", llvm::APFloat::Float4E2M1FN},
    {"e8m0fnu", llvm::APFloat::Float8E8M0FNU},
    {"f16", llvm::APFloat::IEEEhalf},
    {"bf16", llvm::APFloat::BFloat},
};

class FloatFormatTest : public ::testing::TestWithParam<FloatCase> {};

double apDecode(const llvm::fltSemantics &sem, unsigned bits, uint32_t code) {
  llvm::APFloat v(sem, llvm::APInt(bits, code));
  if (v.isNaN())
    return std::numeric_limits<double>::quiet_NaN();
  bool lost;
  v.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven,
            &lost);
  return v.convertToDouble();
}

uint32_t apEncode(const llvm::fltSemantics &sem, float x) {
  llvm::APFloat v(x);
  bool lost;
  v.convert(sem, llvm::APFloat::rmNearestTiesToEven, &lost);
  return static_cast<uint32_t>(v.bitcastToAPInt().getZExtValue());
}

TEST_P(FloatFormatTest, DecodeEveryCodeMatchesAPFloat) {
  Format f = *Format::byName(GetParam().name);
  const auto &sem = GetParam().sem();
  ASSERT_EQ(static_cast<unsigned>(f.bits()),
            llvm::APFloat::getSizeInBits(sem));
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
    EXPECT_EQ(std::signbit(got), std::signbit(want)) << f.name() << " " << c;
  }
}

TEST_P(FloatFormatTest, EncodeMatchesAPFloatAtValuesAndMidpoints) {
  Format f = *Format::byName(GetParam().name);
  const auto &sem = GetParam().sem();
  std::vector<float> values = f.representableValues();
  auto check = [&](float x) {
    if (std::fabs(x) > f.maxValue())
      return; // beyond max APFloat overflows; saturation is tested below
    uint32_t want = apEncode(sem, x);
    uint32_t got = f.encode(x);
    // Compare values (E8M0 has no zero, so APFloat's result for tiny inputs
    // is checked by value as well).
    EXPECT_EQ(got, want) << f.name() << " x=" << x;
  };
  for (size_t i = 0; i < values.size(); ++i) {
    check(values[i]);
    if (i + 1 == values.size())
      continue;
    float mid = static_cast<float>(0.5 * (double(values[i]) + values[i + 1]));
    check(mid);
    check(std::nextafter(mid, -INFINITY));
    check(std::nextafter(mid, INFINITY));
  }
}

TEST_P(FloatFormatTest, SaturatesAndHandlesSpecials) {
  Format f = *Format::byName(GetParam().name);
  float max = f.maxValue();
  EXPECT_EQ(f.decode(f.encode(INFINITY)), max);
  float huge = std::numeric_limits<float>::max();
  EXPECT_EQ(f.decode(f.encode(huge)), max);
  EXPECT_EQ(f.decode(f.encode(std::nextafter(max, INFINITY))), max);
  float nanOut = f.decode(f.encode(NAN));
  if (f.floatSpec().nonFinite == NonFinite::FiniteOnly)
    EXPECT_EQ(nanOut, max) << "finite-only formats map NaN to +max";
  else
    EXPECT_TRUE(std::isnan(nanOut));
  if (f.isSigned()) {
    EXPECT_EQ(f.decode(f.encode(-INFINITY)), -max);
    EXPECT_EQ(f.decode(f.encode(-huge)), -max);
    float nz = f.decode(f.encode(-0.0f));
    EXPECT_EQ(nz, 0.0f);
    EXPECT_EQ(std::signbit(nz), f.negativeZeroCode().has_value());
  } else {
    EXPECT_EQ(f.decode(f.encode(-1.0f)), f.lowestValue());
  }
}

void PrintTo(const FloatCase &c, std::ostream *os) { *os << c.name; }

INSTANTIATE_TEST_SUITE_P(AllFloats, FloatFormatTest,
                         ::testing::ValuesIn(kFloatCases),
                         [](const auto &info) {
                           return std::string(info.param.name);
                         });

TEST(FormatTest, MaxValues) {
  EXPECT_EQ(Format::e4m3fn().maxValue(), 448.0f);
  EXPECT_EQ(Format::e5m2().maxValue(), 57344.0f);
  EXPECT_EQ(Format::e4m3fnuz().maxValue(), 240.0f);
  EXPECT_EQ(Format::e5m2fnuz().maxValue(), 57344.0f);
  EXPECT_EQ(Format::e2m3fn().maxValue(), 7.5f);
  EXPECT_EQ(Format::e3m2fn().maxValue(), 28.0f);
  EXPECT_EQ(Format::e2m1fn().maxValue(), 6.0f);
  EXPECT_EQ(Format::e8m0fnu().maxValue(), std::ldexp(1.0f, 127));
  EXPECT_EQ(Format::intN(4, true).maxValue(), 7.0f);
  EXPECT_EQ(Format::intN(4, false).maxValue(), 15.0f);
}

TEST(FormatTest, IntegersEveryWidth) {
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sgn : {true, false}) {
      Format f = Format::intN(bits, sgn);
      int lo = sgn ? -(1 << (bits - 1)) : 0;
      int hi = sgn ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
      for (uint32_t c = 0; c < f.numCodes(); ++c) {
        int want = (sgn && c >= (1u << (bits - 1))) ? int(c) - (1 << bits)
                                                     : int(c);
        ASSERT_EQ(f.decode(c), float(want)) << f.name() << " " << c;
        ASSERT_EQ(f.encode(float(want)), c) << f.name();
      }
      for (int k = lo - 3; k <= hi + 3; ++k) {
        float half = k + 0.5f;
        int rne = (k % 2 == 0) ? k : k + 1; // ties to even
        int want = std::min(std::max(rne, lo), hi);
        EXPECT_EQ(f.decode(f.encode(half)), float(want)) << f.name() << half;
        EXPECT_EQ(f.decode(f.encode(std::nextafter(half, -INFINITY))),
                  float(std::min(std::max(k, lo), hi)));
        EXPECT_EQ(f.decode(f.encode(std::nextafter(half, INFINITY))),
                  float(std::min(std::max(k + 1, lo), hi)));
      }
      EXPECT_EQ(f.decode(f.encode(NAN)), 0.0f);
      EXPECT_EQ(f.decode(f.encode(INFINITY)), float(hi));
      EXPECT_EQ(f.decode(f.encode(-INFINITY)), float(lo));
    }
  }
  std::string why;
  EXPECT_FALSE(Format::makeInt(9, true, &why));
  EXPECT_NE(why.find("2..8"), std::string::npos);
  EXPECT_FALSE(Format::makeInt(1, false));
}

TEST(FormatTest, LookupTables) {
  Format nf4 = Format::nf4();
  EXPECT_EQ(nf4.bits(), 4);
  EXPECT_EQ(nf4.name(), "nf4");
  EXPECT_EQ(nf4.decode(nf4.encode(0.9f)), 1.0f);
  EXPECT_EQ(nf4.decode(nf4.encode(-5.0f)), -1.0f);
  EXPECT_EQ(nf4.decode(nf4.encode(NAN)), 0.0f);
  // A table listing the int4 values encodes exactly like int4, ties included.
  std::vector<float> v;
  for (int i = -8; i <= 7; ++i)
    v.push_back(float(i));
  Format lut = *Format::makeLut(v);
  Format i4 = Format::intN(4, true);
  for (float x = -10.0f; x <= 10.0f; x += 0.125f)
    EXPECT_EQ(lut.decode(lut.encode(x)), i4.decode(i4.encode(x))) << x;
  std::string why;
  EXPECT_FALSE(Format::makeLut({0.0f, 1.0f, 0.5f}, &why));
  EXPECT_NE(why.find("value 2"), std::string::npos) << why;
  EXPECT_FALSE(Format::makeLut({0.0f, 0.0f}));
  EXPECT_FALSE(Format::makeLut({0.0f, NAN}));
  EXPECT_FALSE(Format::makeLut(std::vector<float>(257, 0.0f)));
  EXPECT_EQ(Format::makeLut({-1.0f, 0.0f, 1.0f})->bits(), 2);
}

TEST(FormatTest, E8M0ScaleEncoding) {
  EXPECT_EQ(*encodeE8M0(1.0f, ScaleRounding::Floor), 127);
  EXPECT_EQ(*encodeE8M0(1.0f, ScaleRounding::Ceil), 127);
  EXPECT_EQ(*encodeE8M0(3.0f, ScaleRounding::Floor), 128);
  EXPECT_EQ(*encodeE8M0(3.0f, ScaleRounding::Ceil), 129);
  EXPECT_EQ(*encodeE8M0(1e-45f, ScaleRounding::Floor), 0);
  EXPECT_EQ(*encodeE8M0(3e38f, ScaleRounding::Ceil), 254);
  std::string why;
  EXPECT_FALSE(encodeE8M0(0.0f, ScaleRounding::Floor, &why));
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(encodeE8M0(-1.0f, ScaleRounding::Floor));
  EXPECT_FALSE(encodeE8M0(NAN, ScaleRounding::Ceil));
  EXPECT_FALSE(encodeE8M0(INFINITY, ScaleRounding::Ceil));
  // Floor/ceil agree with APFloat's directed rounding for in-range inputs.
  const auto &sem = llvm::APFloat::Float8E8M0FNU();
  for (float x : {1.0f, 1.5f, 2.75f, 1000.0f, 1e-30f, 0.3f, 7e37f}) {
    for (auto [mode, rm] :
         {std::pair{ScaleRounding::Floor, llvm::APFloat::rmTowardZero},
          std::pair{ScaleRounding::Ceil, llvm::APFloat::rmTowardPositive}}) {
      llvm::APFloat v(x);
      bool lost;
      v.convert(sem, rm, &lost);
      EXPECT_EQ(*encodeE8M0(x, mode), v.bitcastToAPInt().getZExtValue()) << x;
    }
  }
}

TEST(FormatTest, FloatValidation) {
  std::string why;
  FloatSpec s{4, 3, 7, NonFinite::NanOnly, NanEncoding::IEEE, true, true};
  EXPECT_FALSE(Format::makeFloat(s, &why));
  EXPECT_NE(why.find("nan_only"), std::string::npos) << why;
  s = {0, 3, 0, NonFinite::IEEE, NanEncoding::IEEE, true, true};
  EXPECT_FALSE(Format::makeFloat(s, &why));
  s = {4, 3, 7, NonFinite::NanOnly, NanEncoding::NegativeZero, false, true};
  EXPECT_FALSE(Format::makeFloat(s, &why));
}

TEST(FormatTest, RoundTripEveryNamedFormat) {
  for (const char *n : {"int2", "uint2", "int3", "uint3", "int4", "uint4",
                        "int5", "int6", "int7", "int8", "uint8", "e4m3fn",
                        "e5m2", "e4m3fnuz", "e5m2fnuz", "e2m3fn", "e3m2fn",
                        "e2m1fn", "e8m0fnu", "nf4"}) {
    auto f = Format::byName(n);
    ASSERT_TRUE(f) << n;
    EXPECT_EQ(f->name(), n);
    for (uint32_t c = 0; c < f->numCodes(); ++c) {
      float v = f->decode(c);
      if (!std::isfinite(v))
        continue; // Inf saturates to +-max by design (docs/formats.md)
      EXPECT_EQ(f->decode(f->encode(v)), v) << n << " code " << c;
    }
  }
}

} // namespace
