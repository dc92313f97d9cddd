//===- TestUtil.h - Helpers shared by the tokenizer tests ------*- C++ -*-===//

#ifndef NIBBLE_TEST_UNIT_TOKENIZER_TESTUTIL_H
#define NIBBLE_TEST_UNIT_TOKENIZER_TESTUTIL_H

#include "TestData.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace nibble::tokenizer::test {

/// The shared data root (see TestData.h); empty when absent.
inline std::string sharedDir() { return ::nibble::testdata::sharedDir(); }

inline bool pathExists(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

/// Declares `var` = sharedDir()/`relative`, skipping the test when absent.
#define NIBBLE_SHARED_PATH(var, relative)                                      \
  const std::string var =                                                      \
      ::nibble::tokenizer::test::sharedDir() + "/" + (relative);               \
  if (::nibble::tokenizer::test::sharedDir().empty() ||                       \
      !::nibble::tokenizer::test::pathExists(var))                             \
  GTEST_SKIP() << "shared data not found (set NIBBLE_SHARED_DIR or place "    \
                  "../shared beside the checkout): "                           \
               << (relative)

inline std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The lines of `text` without their '\n' (no final empty line).
inline std::vector<std::string> splitLines(const std::string &text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

/// A JSON string literal for `s` (UTF-8 kept as is).
inline std::string jsonQuote(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
      out += buffer;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

/// Appends a little-endian int32 / float32 (the llama2.c file layout).
inline void appendI32(std::string &out, int32_t v) {
  for (int i = 0; i < 4; ++i)
    out += char(uint32_t(v) >> (8 * i) & 0xFF);
}
inline void appendF32(std::string &out, float f) {
  int32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  appendI32(out, bits);
}

struct Llama2cEntry {
  float score;
  std::string piece;
};

/// A llama2.c tokenizer file with the given entries.
inline std::string llama2cFile(int32_t maxTokenLength,
                               const std::vector<Llama2cEntry> &entries) {
  std::string out;
  appendI32(out, maxTokenLength);
  for (const Llama2cEntry &e : entries) {
    appendF32(out, e.score);
    appendI32(out, int32_t(e.piece.size()));
    out += e.piece;
  }
  return out;
}

inline std::unique_ptr<Tokenizer> parseLlama2c(const std::string &bytes,
                                               std::string &error) {
  return parseLlama2cTokenizer(reinterpret_cast<const uint8_t *>(bytes.data()),
                               bytes.size(), -1, "test.bin", error);
}

inline std::unique_ptr<Tokenizer> parseJson(const std::string &json) {
  std::string error;
  auto tok = parseHFTokenizerJson(json, "test.json", error);
  EXPECT_TRUE(tok) << error;
  return tok;
}

/// Seconds taken by `f()`.
template <typename F> double secondsOf(F &&f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

/// Encoding the whole dev text must stay well under a second (optimized
/// builds only: a debug build is several times slower).
inline void expectFastEncode(double seconds, const char *what) {
  std::printf("[ timing   ] %s: whole dev text encoded in %.1f ms\n", what,
              seconds * 1e3);
#ifdef NDEBUG
  EXPECT_LT(seconds, 1.0) << what;
#endif
}

} // namespace nibble::tokenizer::test

#endif // NIBBLE_TEST_UNIT_TOKENIZER_TESTUTIL_H
