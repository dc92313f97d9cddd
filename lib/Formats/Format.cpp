//===- Format.cpp - Element number formats ---------------------------------===//
#include "nibble/Formats/Format.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace nibble::formats {

static void setErr(std::string *e, std::string msg) {
  if (e)
    *e = std::move(msg);
}

std::optional<Format> Format::makeInt(int bits, bool isSigned,
                                      std::string *error) {
  if (bits < 2 || bits > 8) {
    setErr(error, "integer width must be 2..8 bits, got " +
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
  if (s.expBits < 1 || s.expBits > 11) {
    setErr(error, "exponent bits must be 1..11, got " +
                      std::to_string(s.expBits));
    return std::nullopt;
  }
  if (s.manBits < 0 || s.manBits > 23) {
    setErr(error, "mantissa bits must be 0..23, got " +
                      std::to_string(s.manBits));
    return std::nullopt;
  }
  if (s.bits() > 32 || s.bits() < 2) {
    setErr(error, "total width must be 2..32 bits, got " +
                      std::to_string(s.bits()));
    return std::nullopt;
  }
  if (s.nonFinite == NonFinite::IEEE && s.nanEncoding != NanEncoding::IEEE) {
    setErr(error, "nonfinite = ieee requires nan = ieee");
    return std::nullopt;
  }
  if (s.nonFinite == NonFinite::IEEE && s.expBits < 2) {
    setErr(error, "nonfinite = ieee needs at least 2 exponent bits");
    return std::nullopt;
  }
  if (s.nonFinite == NonFinite::NanOnly &&
      s.nanEncoding == NanEncoding::IEEE) {
    setErr(error, "nonfinite = nan_only requires nan = all_ones or "
                  "negative_zero");
    return std::nullopt;
  }
  if (s.nanEncoding == NanEncoding::NegativeZero && !s.isSigned) {
    setErr(error, "nan = negative_zero requires a signed format");
    return std::nullopt;
  }
  if (s.nonFinite == NonFinite::FiniteOnly &&
      s.nanEncoding != NanEncoding::IEEE) {
    setErr(error, "nonfinite = finite_only has no NaN encoding (use nan = "
                  "ieee)");
    return std::nullopt;
  }
  Format f;
  f.kind_ = Kind::Float;
  f.bits_ = s.bits();
  f.spec_ = s;
  if (!(f.maxValue() > 0)) {
    setErr(error, "the format has no positive finite value");
    return std::nullopt;
  }
  return f;
}

std::optional<Format> Format::makeLut(std::vector<float> values,
                                      std::string *error) {
  if (values.size() < 2 || values.size() > 256) {
    setErr(error, "a lookup table needs 2..256 values, got " +
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
      setErr(error, "lookup table values must be strictly ascending; value " +
                        std::to_string(i) + " is not above value " +
                        std::to_string(i - 1));
      return std::nullopt;
    }
  }
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

static FloatSpec spec(int e, int m, int bias, NonFinite nf, NanEncoding ne,
                      bool sg = true, bool z = true) {
  return FloatSpec{e, m, bias, nf, ne, sg, z};
}

struct NamedSpec {
  const char *name;
  FloatSpec spec;
};
static const NamedSpec kNamed[] = {
    {"e4m3fn", spec(4, 3, 7, NonFinite::NanOnly, NanEncoding::AllOnes)},
    {"e5m2", spec(5, 2, 15, NonFinite::IEEE, NanEncoding::IEEE)},
    {"e4m3fnuz", spec(4, 3, 8, NonFinite::NanOnly, NanEncoding::NegativeZero)},
    {"e5m2fnuz", spec(5, 2, 16, NonFinite::NanOnly, NanEncoding::NegativeZero)},
    {"e2m3fn", spec(2, 3, 1, NonFinite::FiniteOnly, NanEncoding::IEEE)},
    {"e3m2fn", spec(3, 2, 3, NonFinite::FiniteOnly, NanEncoding::IEEE)},
    {"e2m1fn", spec(2, 1, 1, NonFinite::FiniteOnly, NanEncoding::IEEE)},
    {"e8m0fnu", spec(8, 0, 127, NonFinite::NanOnly, NanEncoding::AllOnes,
                     false, false)},
    {"f16", spec(5, 10, 15, NonFinite::IEEE, NanEncoding::IEEE)},
    {"bf16", spec(8, 7, 127, NonFinite::IEEE, NanEncoding::IEEE)},
    {"f32", spec(8, 23, 127, NonFinite::IEEE, NanEncoding::IEEE)},
};

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
  if (rest.size() != 1 || rest[0] < '0' || rest[0] > '9')
    return std::nullopt;
  return makeInt(rest[0] - '0', isSigned);
}

uint32_t Format::numCodes() const {
  if (kind_ == Kind::Lut)
    return static_cast<uint32_t>(lut_.size());
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

// --- float helpers -----------------------------------------------------------

static uint32_t expMask(const FloatSpec &s) { return (1u << s.expBits) - 1; }
static uint32_t manMask(const FloatSpec &s) {
  return s.manBits == 0 ? 0 : ((1u << s.manBits) - 1);
}

static bool floatIsNaN(const FloatSpec &s, uint32_t code) {
  uint32_t sign = s.isSigned ? (code >> (s.expBits + s.manBits)) & 1 : 0;
  uint32_t e = (code >> s.manBits) & expMask(s);
  uint32_t m = code & manMask(s);
  switch (s.nonFinite) {
  case NonFinite::IEEE:
    return e == expMask(s) && m != 0;
  case NonFinite::NanOnly:
    if (s.nanEncoding == NanEncoding::AllOnes)
      return e == expMask(s) && m == manMask(s);
    return sign == 1 && e == 0 && m == 0;
  case NonFinite::FiniteOnly:
    return false;
  }
  return false;
}

static double floatDecodeMag(const FloatSpec &s, uint32_t e, uint32_t m) {
  if (e == 0 && s.hasZero)
    return std::ldexp(double(m), 1 - s.bias - s.manBits);
  return std::ldexp(1.0 + std::ldexp(double(m), -s.manBits),
                    int(e) - s.bias);
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
    if (floatIsNaN(s, code))
      return std::numeric_limits<float>::quiet_NaN();
    uint32_t sign = s.isSigned ? (code >> (s.expBits + s.manBits)) & 1 : 0;
    uint32_t e = (code >> s.manBits) & expMask(s);
    uint32_t m = code & manMask(s);
    double v;
    if (s.nonFinite == NonFinite::IEEE && e == expMask(s))
      v = std::numeric_limits<double>::infinity();
    else
      v = floatDecodeMag(s, e, m);
    return float(sign ? -v : v);
  }
  }
  return 0;
}

float Format::maxValue() const {
  switch (kind_) {
  case Kind::Int:
    return isSigned_ ? float((1 << (bits_ - 1)) - 1) : float((1 << bits_) - 1);
  case Kind::Lut:
    return std::max(std::fabs(lut_.front()), std::fabs(lut_.back()));
  case Kind::Float: {
    const FloatSpec &s = spec_;
    uint32_t e = expMask(s), m = manMask(s);
    if (s.nonFinite == NonFinite::IEEE)
      e -= 1;
    else if (s.nonFinite == NonFinite::NanOnly &&
             s.nanEncoding == NanEncoding::AllOnes) {
      if (m == 0)
        e -= 1;
      else
        m -= 1;
    }
    return float(floatDecodeMag(s, e, m));
  }
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
    return spec_.hasZero ? 0.0f : float(floatDecodeMag(spec_, 0, 0));
  }
  return 0;
}

bool Format::isNaNCode(uint32_t code) const {
  if (kind_ == Kind::Float)
    return floatIsNaN(spec_, code);
  if (kind_ == Kind::Lut)
    return code >= lut_.size();
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
    case NonFinite::IEEE:
      return (expMask(s) << s.manBits) | (1u << (s.manBits - 1));
    case NonFinite::NanOnly:
      if (s.nanEncoding == NanEncoding::AllOnes)
        return (expMask(s) << s.manBits) | manMask(s);
      return 1u << (s.expBits + s.manBits);
    case NonFinite::FiniteOnly:
      return encode(maxValue());
    }
  }
  }
  return 0;
}

std::optional<uint32_t> Format::negativeZeroCode() const {
  if (kind_ != Kind::Float || !spec_.isSigned || !spec_.hasZero ||
      spec_.nanEncoding == NanEncoding::NegativeZero)
    return std::nullopt;
  return 1u << (spec_.expBits + spec_.manBits);
}

uint32_t Format::encode(float xf) const {
  switch (kind_) {
  case Kind::Int: {
    if (std::isnan(xf))
      return 0;
    double lo = isSigned_ ? -double(1 << (bits_ - 1)) : 0.0;
    double hi = isSigned_ ? double((1 << (bits_ - 1)) - 1)
                          : double((1 << bits_) - 1);
    double r = std::nearbyint(double(xf));
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
    size_t hi = it - lut_.begin(), lo = hi - 1;
    double dl = double(xf) - lut_[lo], dh = double(lut_[hi]) - xf;
    if (dl < dh)
      return uint32_t(lo);
    if (dh < dl)
      return uint32_t(hi);
    return uint32_t(lo % 2 == 0 ? lo : hi);
  }
  case Kind::Float: {
    const FloatSpec &s = spec_;
    if (std::isnan(xf))
      return nanInputCode();
    bool neg = std::signbit(xf);
    double a = std::fabs(double(xf));
    uint32_t signBit = 1u << (s.expBits + s.manBits);
    if (!s.isSigned && neg) {
      a = 0; // smallest value
      neg = false;
    }
    double maxv = maxValue();
    double minNormal = std::ldexp(1.0, (s.hasZero ? 1 : 0) - s.bias);
    double v;
    if (a >= maxv) {
      v = maxv;
    } else if (a == 0) {
      v = 0;
    } else {
      int e;
      std::frexp(a, &e); // a = f * 2^e, f in [0.5, 1)
      int ex = std::max(e - 1, (s.hasZero ? 1 : 0) - s.bias);
      double q = std::ldexp(1.0, ex - s.manBits);
      v = std::nearbyint(a / q) * q;
      if (v > maxv)
        v = maxv;
    }
    if (!s.hasZero && v < minNormal)
      v = minNormal;
    uint32_t code;
    if (v == 0) {
      code = 0;
    } else if (v < minNormal) {
      code = uint32_t(std::ldexp(v, s.bias - 1 + s.manBits));
    } else {
      int e;
      double f = std::frexp(v, &e);
      int ex = e - 1;
      uint32_t m = uint32_t((f * 2 - 1) * std::ldexp(1.0, s.manBits));
      code = (uint32_t(ex + s.bias) << s.manBits) | m;
    }
    if (neg && s.isSigned) {
      if (code != 0 || negativeZeroCode())
        code |= signBit;
    }
    return code;
  }
  }
  return 0;
}

std::vector<float> Format::representableValues() const {
  std::vector<float> out;
  if (kind_ == Kind::Lut)
    return lut_;
  uint32_t n = numCodes();
  for (uint32_t c = 0; c < n && bits_ <= 16; ++c) {
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
    return "float<e" + std::to_string(spec_.expBits) + "m" +
           std::to_string(spec_.manBits) +
           ",bias=" + std::to_string(spec_.bias) + ">";
  }
  }
  return "";
}

std::optional<uint8_t> encodeE8M0(float x, ScaleRounding rounding,
                                  std::string *error) {
  if (!(x > 0) || std::isinf(x)) {
    setErr(error, "an E8M0 scale must be positive and finite");
    return std::nullopt;
  }
  int e;
  double f = std::frexp(double(x), &e); // x = f*2^e
  int k = e - 1;
  if (rounding == ScaleRounding::Ceil && f != 0.5)
    k += 1;
  k = std::min(std::max(k, -127), 127);
  return uint8_t(k + 127);
}

} // namespace nibble::formats
