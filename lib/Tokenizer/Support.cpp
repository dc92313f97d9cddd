//===- Support.cpp - File reading, UTF-8, byte-level alphabet -------------===//

#include "Support.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace nibble::tokenizer::detail {


size_t utf8SequenceLength(std::string_view s, size_t *invalidLength) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t b0 = byte(0);
  if (b0 < 0x80)
    return 1;
  // Expected length and the allowed range of the second byte (the first
  // continuation byte is narrowed to exclude overlong forms, surrogates and
  // code points above U+10FFFF); later continuation bytes are 0x80..0xBF.
  size_t length;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0)
      lo = 0xA0;
    else if (b0 == 0xED)
      hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0)
      lo = 0x90;
    else if (b0 == 0xF4)
      hi = 0x8F;
  } else {
    if (invalidLength)
      *invalidLength = 1;
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    bool ok = i < s.size() && byte(i) >= (i == 1 ? lo : 0x80) &&
              byte(i) <= (i == 1 ? hi : 0xBF);
    if (!ok) {
      if (invalidLength)
        *invalidLength = i;
      return 0;
    }
  }
  return length;
}

bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8SequenceLength(s.substr(i));
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

std::string utf8Lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t invalid = 0;
    size_t n = utf8SequenceLength(s.substr(i), &invalid);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD"; // U+FFFD
      i += invalid;
    }
  }
  return out;
}

uint32_t decodeUtf8(std::string_view s, size_t length) {
  auto byte = [&](size_t i) { return static_cast<uint32_t>(uint8_t(s[i])); };
  switch (length) {
  case 1:
    return byte(0);
  case 2:
    return (byte(0) & 0x1F) << 6 | (byte(1) & 0x3F);
  case 3:
    return (byte(0) & 0x0F) << 12 | (byte(1) & 0x3F) << 6 | (byte(2) & 0x3F);
  default:
    return (byte(0) & 0x07) << 18 | (byte(1) & 0x3F) << 12 |
           (byte(2) & 0x3F) << 6 | (byte(3) & 0x3F);
  }
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | cp >> 6);
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | cp >> 12);
    out += char(0x80 | (cp >> 6 & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | cp >> 18);
    out += char(0x80 | (cp >> 12 & 0x3F));
    out += char(0x80 | (cp >> 6 & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

std::optional<uint32_t> singleCodePoint(std::string_view s) {
  if (s.empty())
    return std::nullopt;
  size_t n = utf8SequenceLength(s);
  if (n == 0 || n != s.size())
    return std::nullopt;
  return decodeUtf8(s, n);
}

int byteTokenValue(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>')
    return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  int hi = hex(token[3]), lo = hex(token[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

namespace {
struct ByteLevelTables {
  std::array<std::string, 256> charOfByte;
  // The alphabet is U+0021..U+0143: byteOfCodePoint covers 0..0x143.
  std::array<int16_t, 0x144> byteOfCodePoint;
  ByteLevelTables() {
    byteOfCodePoint.fill(-1);
    uint32_t nextExtra = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? uint32_t(b) : nextExtra++;
      appendUtf8(charOfByte[b], cp);
      byteOfCodePoint[cp] = int16_t(b);
    }
  }
};
const ByteLevelTables &byteLevelTables() {
  static const ByteLevelTables tables;
  return tables;
}
} // namespace

const std::string &byteLevelChar(uint8_t b) {
  return byteLevelTables().charOfByte[b];
}

int byteLevelByte(uint32_t codePoint) {
  const auto &table = byteLevelTables().byteOfCodePoint;
  return codePoint < table.size() ? table[codePoint] : -1;
}

} // namespace nibble::tokenizer::detail
