//===- Format.cpp - Element number formats ---------------------------------===//
//
// Plain C++ (no exceptions, no LLVM). The semantics, including every special
// input, are documented in docs/formats.md and checked against LLVM's APFloat
// by test/unit/Formats/FormatTest.cpp.
//
//===----------------------------------------------------------------------===//

#include "nibble/Formats/Format.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>

namespace nibble::formats {

namespace {

void setErr(std::string *e, std::string msg) {
  if (e)
    *e = std::move(msg);
}

// --- float helpers -----------------------------------------------------------

uint32_t expMask(const FloatSpec &s) { return (1u << s.expBits) - 1; }
uint32_t manMask(const FloatSpec &s) { return (1u << s.manBits) - 1; }
uint32_t signBit(const FloatSpec &s) { return 1u << (s.expBits + s.manBits); }

/// Unbiased exponent of the lowest binade that has the implicit leading 1
/// (e == 1 with a zero/subnormal binade, e == 0 without zero).
int minNormalExp(const FloatSpec &s) { return (s.hasZero ? 1 : 0) - s.bias; }

bool floatIsNaN(const FloatSpec &s, uint32_t code) {
  uint32_t e = (code >> s.manBits) & expMask(s);
  uint32_t m = code & manMask(s);
  switch (s.nonFinite) {
  case NonFinite::IEEE:
    return e == expMask(s) && m != 0;
  case NonFinite::NanOnly:
    if (s.nanEncoding == NanEncoding::AllOnes)
      return e == expMask(s) && m == manMask(s);
    // NegativeZero: the code with sign 1, exponent 0, mantissa 0.
    return s.isSigned && (code & (signBit(s) | (expMask(s) << s.manBits) |
                                  manMask(s))) == signBit(s);
  case NonFinite::FiniteOnly:
    return false;
  }
  return false;
}

/// Magnitude of the (finite, non-NaN) fields e, m.
double floatMagnitude(const FloatSpec &s, uint32_t e, uint32_t m) {
  if (e == 0 && s.hasZero)
    return std::ldexp(double(m), 1 - s.bias - s.manBits);
  return std::ldexp(double((1u << s.manBits) | m),
                    int(e) - s.bias - s.manBits);
}

/// Exponent and mantissa fields of the largest finite magnitude.
void floatMaxFields(const FloatSpec &s, uint32_t &e, uint32_t &m) {
  e = expMask(s);
  m = manMask(s);
  if (s.nonFinite == NonFinite::IEEE) {
    e -= 1;
  } else if (s.nonFinite == NonFinite::NanOnly &&
             s.nanEncoding == NanEncoding::AllOnes) {
    if (m == 0)
      e -= 1;
    else
      m -= 1;
  }
}

double floatMax(const FloatSpec &s) {
  uint32_t e, m;
  floatMaxFields(s, e, m);
  return floatMagnitude(s, e, m);
}

/// Smallest positive value (the smallest subnormal with zero, else the
/// smallest normal).
double floatMinPositive(const FloatSpec &s) {
  if (s.hasZero)
    return std::ldexp(1.0, minNormalExp(s) - s.manBits);
  return std::ldexp(1.0, minNormalExp(s));
}

/// Code (without sign) of a magnitude v that is exactly representable.
uint32_t floatMagnitudeCode(const FloatSpec &s, double v) {
  if (v == 0)
    return 0;
  int e;
  double f = std::frexp(v, &e); // v = f * 2^e, f in [0.5, 1)
  int exp = e - 1;              // v in [2^exp, 2^(exp+1))
  if (exp < minNormalExp(s))    // subnormal (only when hasZero)
    return uint32_t(std::ldexp(v, s.bias - 1 + s.manBits));
  uint32_t m = uint32_t(std::ldexp(2 * f - 1, s.manBits));
  return (uint32_t(exp + s.bias) << s.manBits) | m;
}

/// Exact comparison of |x - lo| with |hi - x| for floats lo <= x <= hi:
/// returns <0 when x is nearer lo, >0 when nearer hi, 0 on a tie. Works on
/// 2x versus lo + hi with the exact error of the double sum (TwoSum), so it
/// is exact for any three floats.
int compareToMidpoint(float lo, float x, float hi) {
  double a = lo, b = hi;
  double s = a + b;
  double bb = s - a;
  double err = (a - (s - bb)) + (b - bb); // lo + hi == s + err exactly
  double twoX = 2.0 * double(x);
  if (twoX < s)
    return -1;
  if (twoX > s)
    return 1;
  return err > 0 ? -1 : (err < 0 ? 1 : 0);
}

} // namespace

const char *nonFiniteName(NonFinite nf) {
  switch (nf) {
  case NonFinite::IEEE:
    return "ieee";
  case NonFinite::NanOnly:
    return "nan_only";
  case NonFinite::FiniteOnly:
    return "finite_only";
  }
  return "?";
}

const char *nanEncodingName(NanEncoding ne) {
  switch (ne) {
  case NanEncoding::IEEE:
    return "ieee";
  case NanEncoding::AllOnes:
    return "all_ones";
  case NanEncoding::NegativeZero:
    return "negative_zero";
  }
  return "?";
}

// --- constructors ------------------------------------------------------------

std::optional<Format> Format::makeInt(int bits, bool isSigned,
                                      std::string *error) {
  if (bits < 2 || bits > 8) {
    setErr(error, "an integer format has 2..8 bits, but bits is " +
                      std::to_string(bits));
    return std::nullopt;
  }
  Format f;
  f.kind_ = Kind::Int;
  f.bits_ = bits;
  f.isSigned_ = isSigned;
  return f;
}

std::optional<Format> Format::makeFloat(const FloatSpec &s,
                                        std::string *error) {
  auto fail = [&](std::string msg) -> std::optional<Format> {
    setErr(error, std::move(msg));
    return std::nullopt;
  };
  // Every value of a format must be a finite f32 (decode returns float), so
  // at most 8 exponent and 23 mantissa bits; f32 itself is the widest.
  if (s.expBits < 1 || s.expBits > 8)
    return fail("expBits must be between 1 and 8 (values must fit in f32), "
                "but is " +
                std::to_string(s.expBits));
  if (s.manBits < 0 || s.manBits > 23)
    return fail("manBits must be between 0 and 23 (values must fit in f32), "
                "but is " +
                std::to_string(s.manBits));
  switch (s.nonFinite) {
  case NonFinite::IEEE:
    if (s.nanEncoding != NanEncoding::IEEE)
      return fail(std::string("nonfinite = ieee requires nan = ieee, but nan "
                              "is ") +
                  nanEncodingName(s.nanEncoding));
    if (s.expBits < 2)
      return fail("nonfinite = ieee needs at least 2 exponent bits (one "
                  "exponent is reserved for Inf and NaN), but expBits is " +
                  std::to_string(s.expBits));
    if (s.manBits < 1)
      return fail("nonfinite = ieee needs at least 1 mantissa bit (to tell "
                  "NaN from Inf), but manBits is 0");
    break;
  case NonFinite::NanOnly:
    if (s.nanEncoding == NanEncoding::IEEE)
      return fail("nonfinite = nan_only requires nan = all_ones or "
                  "nan = negative_zero, but nan is ieee");
    if (s.nanEncoding == NanEncoding::NegativeZero && !s.isSigned)
      return fail("nan = negative_zero requires a signed format, but the "
                  "format is unsigned");
    if (s.nanEncoding == NanEncoding::NegativeZero && !s.hasZero)
      return fail("nan = negative_zero requires a format with zero, but the "
                  "format has no_zero");
    break;
  case NonFinite::FiniteOnly:
    if (s.nanEncoding != NanEncoding::IEEE)
      return fail(std::string("nonfinite = finite_only has no NaN, so nan "
                              "must be left as ieee, but nan is ") +
                  nanEncodingName(s.nanEncoding));
    break;
  }
  // Keep the exponent arithmetic below far from int overflow; the f32 range
  // checks further down give the precise limits.
  if (s.bias < -300)
    return fail("bias " + std::to_string(s.bias) +
                " is too small: the largest value exceeds the f32 range");
  if (s.bias > 300)
    return fail("bias " + std::to_string(s.bias) +
                " is too large: the smallest value is below the f32 range");
  // At least two distinct finite values.
  uint32_t maxE, maxM;
  floatMaxFields(s, maxE, maxM);
  uint64_t positive = (uint64_t(maxE) << s.manBits) + maxM + 1; // codes 0..max
  if (s.hasZero)
    positive -= 1; // code 0 is zero
  uint64_t distinct = positive * (s.isSigned ? 2 : 1) + (s.hasZero ? 1 : 0);
  if (distinct < 2)
    return fail("the format has fewer than two finite values (e" +
                std::to_string(s.expBits) + "m" + std::to_string(s.manBits) +
                ", nonfinite = " + nonFiniteName(s.nonFinite) + ")");
  // Every value must be a finite f32: largest <= FLT_MAX, smallest quantum
  // >= 2^-149 (then every value has <= 24 significant bits and is exact).
  double maxV = floatMax(s);
  if (!(maxV <= double(FLT_MAX)))
    return fail("bias " + std::to_string(s.bias) +
                " is too small: the largest value exceeds the f32 range");
  if (minNormalExp(s) - s.manBits < -149)
    return fail("bias " + std::to_string(s.bias) +
                " is too large: the smallest value is below the f32 range");
  Format f;
  f.kind_ = Kind::Float;
  f.bits_ = s.bits();
  f.spec_ = s;
  return f;
}

std::optional<Format> Format::makeLut(std::vector<float> values,
                                      std::string *error) {
  if (values.size() < 2 || values.size() > 256) {
    setErr(error, "a lookup table has 2..256 values, but this one has " +
                      std::to_string(values.size()));
    return std::nullopt;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      setErr(error, "lookup table value " + std::to_string(i) +
                        " is not finite");
      return std::nullopt;
    }
    if (i > 0 && !(values[i] > values[i - 1])) {
      setErr(error, "lookup table values must be strictly ascending, but "
                    "value " +
                        std::to_string(i) + " is not above value " +
                        std::to_string(i - 1));
      return std::nullopt;
    }
  }
  for (float &v : values)
    if (v == 0)
      v = 0.0f; // store -0.0 as +0.0
  Format f;
  f.kind_ = Kind::Lut;
  int bits = 1;
  while ((size_t(1) << bits) < values.size())
    ++bits;
  f.bits_ = bits;
  f.lut_ = std::move(values);
  return f;
}

Format Format::intN(int bits, bool isSigned) { return *makeInt(bits, isSigned); }

namespace {
struct NamedSpec {
  const char *name;
  FloatSpec spec;
};
constexpr NonFinite kIEEE = NonFinite::IEEE, kNanOnly = NonFinite::NanOnly,
                    kFinite = NonFinite::FiniteOnly;
constexpr NanEncoding nIEEE = NanEncoding::IEEE, nOnes = NanEncoding::AllOnes,
                      nNegZero = NanEncoding::NegativeZero;
const NamedSpec kNamed[] = {
    {"e4m3fn", {4, 3, 7, kNanOnly, nOnes, true, true}},
    {"e5m2", {5, 2, 15, kIEEE, nIEEE, true, true}},
    {"e4m3fnuz", {4, 3, 8, kNanOnly, nNegZero, true, true}},
    {"e5m2fnuz", {5, 2, 16, kNanOnly, nNegZero, true, true}},
    {"e2m3fn", {2, 3, 1, kFinite, nIEEE, true, true}},
    {"e3m2fn", {3, 2, 3, kFinite, nIEEE, true, true}},
    {"e2m1fn", {2, 1, 1, kFinite, nIEEE, true, true}},
    {"e8m0fnu", {8, 0, 127, kNanOnly, nOnes, false, false}},
    {"f16", {5, 10, 15, kIEEE, nIEEE, true, true}},
    {"bf16", {8, 7, 127, kIEEE, nIEEE, true, true}},
    {"f32", {8, 23, 127, kIEEE, nIEEE, true, true}},
};
} // namespace

std::optional<FloatSpec> Format::namedFloatSpec(std::string_view name) {
  for (const auto &n : kNamed)
    if (name == n.name)
      return n.spec;
  return std::nullopt;
}

std::string Format::floatSpecName(const FloatSpec &s) {
  for (const auto &n : kNamed)
    if (n.spec == s)
      return n.name;
  return "";
}

Format Format::e4m3fn() { return *makeFloat(*namedFloatSpec("e4m3fn")); }
Format Format::e5m2() { return *makeFloat(*namedFloatSpec("e5m2")); }
Format Format::e4m3fnuz() { return *makeFloat(*namedFloatSpec("e4m3fnuz")); }
Format Format::e5m2fnuz() { return *makeFloat(*namedFloatSpec("e5m2fnuz")); }
Format Format::e2m3fn() { return *makeFloat(*namedFloatSpec("e2m3fn")); }
Format Format::e3m2fn() { return *makeFloat(*namedFloatSpec("e3m2fn")); }
Format Format::e2m1fn() { return *makeFloat(*namedFloatSpec("e2m1fn")); }
Format Format::e8m0fnu() { return *makeFloat(*namedFloatSpec("e8m0fnu")); }
Format Format::f16() { return *makeFloat(*namedFloatSpec("f16")); }
Format Format::bf16() { return *makeFloat(*namedFloatSpec("bf16")); }
Format Format::f32() { return *makeFloat(*namedFloatSpec("f32")); }

const std::vector<float> &Format::nf4Values() {
  static const std::vector<float> v = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f,
      -0.39491748809814453f, -0.28444138169288635f, -0.18477343022823334f,
      -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
      0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f,
      0.5626170039176941f, 0.7229568362236023f, 1.0f};
  return v;
}
Format Format::nf4() { return *makeLut(nf4Values()); }

std::optional<Format> Format::byName(std::string_view name) {
  if (name == "nf4")
    return nf4();
  if (auto s = namedFloatSpec(name))
    return makeFloat(*s);
  bool isSigned = true;
  std::string_view rest = name;
  if (rest.substr(0, 4) == "uint") {
    isSigned = false;
    rest = rest.substr(4);
  } else if (rest.substr(0, 3) == "int") {
    rest = rest.substr(3);
  } else {
    return std::nullopt;
  }
  if (rest.size() != 1 || rest[0] < '2' || rest[0] > '8')
    return std::nullopt;
  return makeInt(rest[0] - '0', isSigned);
}

// --- queries -------------------------------------------------------------------

uint32_t Format::numCodes() const {
  if (kind_ == Kind::Lut)
    return static_cast<uint32_t>(lut_.size());
  // 2^32 does not fit: f32 reports 0xFFFFFFFF (documented as bits <= 16).
  return bits_ >= 32 ? 0xFFFFFFFFu : (1u << bits_);
}

bool Format::isSigned() const {
  switch (kind_) {
  case Kind::Int:
    return isSigned_;
  case Kind::Float:
    return spec_.isSigned;
  case Kind::Lut:
    return lut_.front() < 0;
  }
  return false;
}

float Format::decode(uint32_t code) const {
  switch (kind_) {
  case Kind::Int: {
    code &= (1u << bits_) - 1;
    if (isSigned_ && (code >> (bits_ - 1)))
      return float(int(code) - (1 << bits_));
    return float(code);
  }
  case Kind::Lut:
    return code < lut_.size() ? lut_[code]
                              : std::numeric_limits<float>::quiet_NaN();
  case Kind::Float: {
    const FloatSpec &s = spec_;
    if (bits_ < 32)
      code &= (1u << bits_) - 1;
    if (floatIsNaN(s, code))
      return std::numeric_limits<float>::quiet_NaN();
    bool neg = s.isSigned && (code & signBit(s));
    uint32_t e = (code >> s.manBits) & expMask(s);
    uint32_t m = code & manMask(s);
    double v = (s.nonFinite == NonFinite::IEEE && e == expMask(s))
                   ? std::numeric_limits<double>::infinity()
                   : floatMagnitude(s, e, m);
    return float(neg ? -v : v);
  }
  }
  return 0;
}

float Format::maxValue() const {
  switch (kind_) {
  case Kind::Int:
    return isSigned_ ? float((1 << (bits_ - 1)) - 1) : float((1 << bits_) - 1);
  case Kind::Lut:
    return lut_.back();
  case Kind::Float:
    return float(floatMax(spec_));
  }
  return 0;
}

float Format::lowestValue() const {
  switch (kind_) {
  case Kind::Int:
    return isSigned_ ? -float(1 << (bits_ - 1)) : 0.0f;
  case Kind::Lut:
    return lut_.front();
  case Kind::Float:
    if (spec_.isSigned)
      return -maxValue();
    return spec_.hasZero ? 0.0f : float(floatMinPositive(spec_));
  }
  return 0;
}

bool Format::isNaNCode(uint32_t code) const {
  switch (kind_) {
  case Kind::Int:
    return false;
  case Kind::Lut:
    return code >= lut_.size();
  case Kind::Float:
    return floatIsNaN(spec_, bits_ < 32 ? code & ((1u << bits_) - 1) : code);
  }
  return false;
}

uint32_t Format::nanInputCode() const {
  switch (kind_) {
  case Kind::Int:
    return 0;
  case Kind::Lut: {
    size_t best = 0;
    for (size_t i = 1; i < lut_.size(); ++i)
      if (std::fabs(lut_[i]) < std::fabs(lut_[best]))
        best = i;
    return uint32_t(best);
  }
  case Kind::Float: {
    const FloatSpec &s = spec_;
    switch (s.nonFinite) {
    case NonFinite::IEEE: // canonical quiet NaN, positive sign
      return (expMask(s) << s.manBits) | (1u << (s.manBits - 1));
    case NonFinite::NanOnly:
      if (s.nanEncoding == NanEncoding::AllOnes)
        return (expMask(s) << s.manBits) | manMask(s);
      return signBit(s); // the -0 code
    case NonFinite::FiniteOnly: { // +max, like PTX cvt .satfinite
      uint32_t e, m;
      floatMaxFields(s, e, m);
      return (e << s.manBits) | m;
    }
    }
  }
  }
  return 0;
}

std::optional<uint32_t> Format::negativeZeroCode() const {
  if (kind_ != Kind::Float || !spec_.isSigned || !spec_.hasZero ||
      spec_.nanEncoding == NanEncoding::NegativeZero)
    return std::nullopt;
  return signBit(spec_);
}

// --- encode --------------------------------------------------------------------

uint32_t Format::encode(float xf) const {
  switch (kind_) {
  case Kind::Int: {
    if (std::isnan(xf))
      return 0;
    double lo = isSigned_ ? -double(1 << (bits_ - 1)) : 0.0;
    double hi = isSigned_ ? double((1 << (bits_ - 1)) - 1)
                          : double((1 << bits_) - 1);
    double r = std::nearbyint(double(xf)); // ties to even (default mode)
    r = std::min(std::max(r, lo), hi);
    return uint32_t(int(r)) & ((1u << bits_) - 1);
  }
  case Kind::Lut: {
    if (std::isnan(xf))
      return nanInputCode();
    auto it = std::lower_bound(lut_.begin(), lut_.end(), xf);
    if (it == lut_.begin())
      return 0;
    if (it == lut_.end())
      return uint32_t(lut_.size() - 1);
    size_t hi = size_t(it - lut_.begin()), lo = hi - 1;
    int c = compareToMidpoint(lut_[lo], xf, lut_[hi]);
    if (c < 0)
      return uint32_t(lo);
    if (c > 0)
      return uint32_t(hi);
    return uint32_t(lo % 2 == 0 ? lo : hi); // tie: even index
  }
  case Kind::Float: {
    const FloatSpec &s = spec_;
    if (std::isnan(xf))
      return nanInputCode();
    bool neg = std::signbit(xf);
    double a = std::fabs(double(xf));
    if (neg && !s.isSigned) { // unsigned: negatives give the smallest value
      a = 0;
      neg = false;
    }
    double maxV = floatMax(s);
    double v;
    if (a >= maxV) { // also +-Inf: saturate
      v = maxV;
    } else if (a == 0) {
      v = 0;
    } else {
      int e;
      std::frexp(a, &e); // a in [2^(e-1), 2^e)
      int exp = std::max(e - 1, minNormalExp(s));
      double quantum = std::ldexp(1.0, exp - s.manBits);
      v = std::nearbyint(a / quantum) * quantum; // ties to even
      if (v > maxV)
        v = maxV;
    }
    if (!s.hasZero && v < floatMinPositive(s))
      v = floatMinPositive(s);
    uint32_t code = floatMagnitudeCode(s, v);
    // Negative inputs take the sign bit, except that a zero result is -0
    // only where -0 exists (not FNUZ, whose -0 code is NaN). Without zero,
    // code 0 is the smallest value and takes the sign like any other.
    if (neg && (v != 0 || negativeZeroCode()))
      code |= signBit(s);
    return code;
  }
  }
  return 0;
}

std::vector<float> Format::representableValues() const {
  if (kind_ == Kind::Lut)
    return lut_;
  std::vector<float> out;
  if (bits_ > 16)
    return out;
  uint32_t n = numCodes();
  for (uint32_t c = 0; c < n; ++c) {
    float v = decode(c);
    if (std::isfinite(v))
      out.push_back(v == 0 ? 0.0f : v);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string Format::name() const {
  switch (kind_) {
  case Kind::Int:
    return (isSigned_ ? "int" : "uint") + std::to_string(bits_);
  case Kind::Lut:
    return lut_ == nf4Values() ? "nf4" : "lut" + std::to_string(lut_.size());
  case Kind::Float: {
    std::string n = floatSpecName(spec_);
    if (!n.empty())
      return n;
    // float<eXmY,bias=B,ieee|finite_only|nan_only:all_ones|
    //       nan_only:negative_zero[,unsigned][,no_zero]>
    n = "float<e" + std::to_string(spec_.expBits) + "m" +
        std::to_string(spec_.manBits) + ",bias=" + std::to_string(spec_.bias) +
        "," + nonFiniteName(spec_.nonFinite);
    if (spec_.nonFinite == NonFinite::NanOnly)
      n += std::string(":") + nanEncodingName(spec_.nanEncoding);
    if (!spec_.isSigned)
      n += ",unsigned";
    if (!spec_.hasZero)
      n += ",no_zero";
    return n + ">";
  }
  }
  return "";
}

// --- E8M0 scales -----------------------------------------------------------------

std::optional<uint8_t> encodeE8M0(float x, ScaleRounding rounding,
                                  std::string *error) {
  if (std::isnan(x) || std::isinf(x) || !(x > 0)) {
    const char *what = std::isnan(x)   ? "NaN"
                       : std::isinf(x) ? (x > 0 ? "+Inf" : "-Inf")
                       : x == 0        ? (std::signbit(x) ? "-0" : "0")
                                       : nullptr;
    setErr(error, std::string("an E8M0 scale must be positive and finite, "
                              "but the input is ") +
                      (what ? what : std::to_string(x)));
    return std::nullopt;
  }
  int e;
  double f = std::frexp(double(x), &e); // x = f * 2^e, f in [0.5, 1)
  int k = e - 1;                        // floor(log2 x)
  if (rounding == ScaleRounding::Ceil && f != 0.5)
    k += 1;
  k = std::min(std::max(k, -127), 127); // code 255 is NaN
  return uint8_t(k + 127);
}

} // namespace nibble::formats
