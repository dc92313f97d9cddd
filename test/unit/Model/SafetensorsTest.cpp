//===- SafetensorsTest.cpp - The reader enforces the format's rules -------===//

#include "nibble/Model/Safetensors.h"

#include "gtest/gtest.h"

#include <cstring>
#include <string>

using namespace nibble::model;

namespace {

/// A file from literal header JSON and a data buffer of `dataBytes` bytes.
std::vector<uint8_t> fileWith(const std::string &header, size_t dataBytes,
                              uint64_t declaredLength = UINT64_MAX) {
  uint64_t n = declaredLength == UINT64_MAX ? header.size() : declaredLength;
  std::vector<uint8_t> f(8 + header.size() + dataBytes, 0);
  for (int i = 0; i < 8; ++i)
    f[i] = uint8_t(n >> (8 * i));
  std::memcpy(f.data() + 8, header.data(), header.size());
  return f;
}

std::string errorOf(const std::vector<uint8_t> &f) {
  std::string error;
  auto h = parseSafetensors(f.data(), f.size(), "x.safetensors", error);
  EXPECT_FALSE(h.has_value()) << "accepted a malformed file";
  EXPECT_NE(error.find("x.safetensors"), std::string::npos) << error;
  return error;
}

const char *kTwo = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("b":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]}})";

TEST(SafetensorsTest, ParsesAValidFile) {
  auto f = fileWith(kTwo, 16);
  std::string error;
  auto h = parseSafetensors(f.data(), f.size(), "x.safetensors", error);
  ASSERT_TRUE(h) << error;
  ASSERT_EQ(h->entries.size(), 2u);
  EXPECT_EQ(h->entries[0].name, "a");
  EXPECT_EQ(h->entries[1].dtype, DType::F16);
  EXPECT_EQ(h->entries[1].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(h->dataOffset(), 8 + std::strlen(kTwo));
}

TEST(SafetensorsTest, WriterOutputReadsBack) {
  float a[3] = {1, 2, 3};
  uint16_t b[2] = {0x3c00, 0xc000};
  auto bytes = serializeSafetensors(
      {{"t.a", DType::F32, {3}, a}, {"t.b", DType::BF16, {1, 2}, b}},
      {{"format", "pt"}});
  EXPECT_EQ((bytes[0] | bytes[1] << 8) % 8, 0) << "header padded to 8";
  std::string error;
  auto h = parseSafetensors(bytes.data(), bytes.size(), "w", error);
  ASSERT_TRUE(h) << error;
  EXPECT_EQ(h->metadata.at("format"), "pt");
  ASSERT_EQ(h->entries.size(), 2u);
  EXPECT_EQ(std::memcmp(bytes.data() + h->dataOffset() + h->entries[0].begin,
                        a, 12),
            0);
}

TEST(SafetensorsTest, EmptyTensorsAreAllowed) {
  auto f = fileWith(R"({"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}})", 0);
  std::string error;
  EXPECT_TRUE(parseSafetensors(f.data(), f.size(), "x", error)) << error;
}

TEST(SafetensorsTest, TruncatedFile) {
  std::vector<uint8_t> f = {1, 2, 3};
  EXPECT_NE(errorOf(f).find("too short"), std::string::npos);
  // Cut inside the data buffer: the last tensor no longer fits.
  auto whole = fileWith(kTwo, 16);
  whole.resize(whole.size() - 3);
  std::string e = errorOf(whole);
  EXPECT_NE(e.find("tensor 'b'"), std::string::npos) << e;
  EXPECT_NE(e.find("past the data buffer"), std::string::npos) << e;
}

TEST(SafetensorsTest, HeaderLengthLargerThanFile) {
  auto f = fileWith(kTwo, 16, 1000);
  std::string e = errorOf(f);
  EXPECT_NE(e.find("runs past the end of the file"), std::string::npos) << e;
  EXPECT_NE(e.find("file offset 0"), std::string::npos) << e;
}

TEST(SafetensorsTest, HeaderLengthOutOfBounds) {
  auto f = fileWith(kTwo, 16, 200'000'000);
  EXPECT_NE(errorOf(f).find("outside [2, 100000000]"), std::string::npos);
  EXPECT_NE(errorOf(fileWith("{", 0, 1)).find("outside"), std::string::npos);
}

TEST(SafetensorsTest, MalformedJsonNamesTheOffset) {
  auto f = fileWith(R"({"a":{"dtype":"F32",,}})", 0);
  std::string e = errorOf(f);
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("file offset 28)"), std::string::npos) << e; // 8 + byte 20
  EXPECT_NE(errorOf(fileWith("[1, 2]", 0)).find("must start with '{'"),
            std::string::npos);
}

// A number too large for a double is an out_of_range error inside the JSON
// library, not a parse error: it must still come back as a message (found
// by the safetensors fuzzer).
TEST(SafetensorsTest, NumberOverflowInHeader) {
  std::string e = errorOf(fileWith(R"({"__metadata__":5555555555555555E55555})", 0));
  EXPECT_NE(e.find("header is not valid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("number overflow"), std::string::npos) << e;
}

TEST(SafetensorsTest, UnknownDtype) {
  std::string e = errorOf(
      fileWith(R"({"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(e.find("tensor 'a': unknown dtype 'F17'"), std::string::npos) << e;
}

TEST(SafetensorsTest, OffsetsOutOfRange) {
  std::string e = errorOf(
      fileWith(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8));
  EXPECT_NE(e.find("end past the data buffer (8 bytes)"), std::string::npos) << e;
  e = errorOf(
      fileWith(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", 8));
  EXPECT_NE(e.find("begin after end"), std::string::npos) << e;
  e = errorOf(
      fileWith(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}})", 8));
  EXPECT_NE(e.find("data_offsets must be"), std::string::npos) << e;
}

TEST(SafetensorsTest, OverlappingTensors) {
  std::string e = errorOf(fileWith(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12));
  EXPECT_NE(e.find("tensor 'b' [4, 12) overlaps tensor 'a' [0, 8)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("file offset"), std::string::npos) << e;
}

TEST(SafetensorsTest, HolesAndTrailingBytes) {
  std::string e = errorOf(
      fileWith(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12));
  EXPECT_NE(e.find("hole of 4 bytes before tensor 'a'"), std::string::npos) << e;
  e = errorOf(
      fileWith(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12));
  EXPECT_NE(e.find("4 bytes after the last tensor"), std::string::npos) << e;
}

TEST(SafetensorsTest, ShapeSizeMismatch) {
  std::string e = errorOf(
      fileWith(R"({"a":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(e.find("shape [3, 2] of BF16 needs 12 bytes but data_offsets hold 8"),
            std::string::npos)
      << e;
  // A shape whose byte count overflows is a mismatch, not a wraparound.
  e = errorOf(fileWith(
      R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})",
      0));
  EXPECT_NE(e.find("more than 2^63"), std::string::npos) << e;
}

TEST(SafetensorsTest, WrongFieldTypes) {
  EXPECT_NE(errorOf(fileWith(R"({"a":[1]})", 0)).find("must be an object"),
            std::string::npos);
  EXPECT_NE(errorOf(fileWith(R"({"a":{"dtype":1,"shape":[],"data_offsets":[0,4]}})", 4))
                .find("'dtype'"),
            std::string::npos);
  EXPECT_NE(errorOf(fileWith(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4))
                .find("shape entries"),
            std::string::npos);
  EXPECT_NE(errorOf(fileWith(R"({"__metadata__":{"k":1}})", 0)).find("__metadata__"),
            std::string::npos);
}

} // namespace
