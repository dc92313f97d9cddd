//===- BundleTest.cpp - The bundle container: layout, validation, I/O -----===//

#include "nibble/Bundle/Bundle.h"
#include "nibble/Support/Hash.h"

#include "TestData.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace nibble;
using bundle::Bundle;
using bundle::BundleWriter;

namespace {

// Field offsets from docs/bundle.md, restated here so the tests check the
// documented layout rather than the implementation's constants.
constexpr size_t kMajor = 8, kMinor = 10, kCount = 12, kTableOffset = 16,
                 kFileSize = 24, kChecksum = 32, kTable = 64, kEntry = 88;
constexpr size_t kEOffset = 32, kESize = 40, kEAlign = 48, kEFlags = 52,
                 kEHash = 56;

struct TempDir {
  std::string path = testdata::makeTempDir("bundle");
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto &e : std::filesystem::directory_iterator(path))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string readBytes(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

uint64_t get(const std::string &b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | uint8_t(b[at + size_t(i)]);
  return v;
}
void put(std::string &b, size_t at, int n, uint64_t v) {
  for (int i = 0; i < n; ++i)
    b[at + size_t(i)] = char(uint8_t(v >> (8 * i)));
}

std::string sha256Raw(const std::string &bytes) {
  std::string hex = support::sha256Hex(bytes.data(), bytes.size());
  std::string raw;
  for (size_t i = 0; i < 64; i += 2)
    raw += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return raw;
}

/// Recomputes the header checksum (header bytes 0..31 + the table) so a
/// hand-crafted table reaches the structural checks.
void rehashHeader(std::string &b) {
  uint64_t table = get(b, kTableOffset, 8);
  uint64_t count = get(b, kCount, 4);
  std::string tableBytes =
      table <= b.size() ? b.substr(table, count * kEntry) : std::string();
  b.replace(kChecksum, 32, sha256Raw(b.substr(0, 32) + tableBytes));
}
/// Recomputes entry `i`'s section checksum from its offset/size.
void rehashSection(std::string &b, size_t i) {
  size_t e = kTable + i * kEntry;
  b.replace(
      e + kEHash, 32,
      sha256Raw(b.substr(get(b, e + kEOffset, 8), get(b, e + kESize, 8))));
}

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    s[i] = char(seed >> 24);
  }
  return s;
}

/// meta (64), empty (64), weights (4096), code (1): a representative bundle.
BundleWriter sampleWriter() {
  BundleWriter w;
  std::string error;
  EXPECT_TRUE(w.add("meta", "{\"model\":\"tiny\"}", error)) << error;
  EXPECT_TRUE(w.add("empty", "", error)) << error;
  EXPECT_TRUE(w.add("weights", pattern(5000, 7), error, 4096)) << error;
  EXPECT_TRUE(w.add("code", pattern(100, 9), error, 1)) << error;
  return w;
}

std::string openError(const std::string &bytes, const std::string &name) {
  std::string error;
  auto b =
      Bundle::fromMemory(name, reinterpret_cast<const uint8_t *>(bytes.data()),
                         bytes.size(), error);
  return b ? std::string() : error;
}

} // namespace

TEST(Bundle, RoundTripThroughAFile) {
  TempDir dir;
  std::string path = dir.path + "/model.nbl", error;
  BundleWriter w = sampleWriter();
  ASSERT_TRUE(w.write(path, error)) << error;
  EXPECT_EQ(readBytes(path), w.bytes());

  auto b = Bundle::open(path, error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->path(), path);
  EXPECT_EQ(b->versionMajor(), 1u);
  EXPECT_EQ(b->versionMinor(), 0u);
  EXPECT_EQ(b->sectionNames(),
            (std::vector<std::string>{"meta", "empty", "weights", "code"}));
  EXPECT_EQ(b->section("meta"), "{\"model\":\"tiny\"}");
  EXPECT_EQ(b->section("weights"), pattern(5000, 7));
  EXPECT_EQ(b->section("code"), pattern(100, 9));
  EXPECT_TRUE(b->has("empty"));
  EXPECT_EQ(b->sectionSize("empty"), 0u);
  EXPECT_NE(b->sectionData("empty"), nullptr);
  EXPECT_FALSE(b->has("missing"));
  EXPECT_TRUE(b->section("missing").empty());
  EXPECT_EQ(b->sectionData("missing"), nullptr);
  EXPECT_EQ(b->sectionSize("missing"), 0u);

  uint64_t end = kTable + 4 * kEntry;
  for (const auto &s : b->sections()) {
    EXPECT_EQ(s.offset % s.alignment, 0u) << s.name;
    EXPECT_GE(s.offset, end) << s.name; // in order added, no overlap
    end = s.offset + s.size;
  }
  EXPECT_EQ(b->sections()[2].alignment, 4096u);
  EXPECT_EQ(b->sections()[2].offset, 4096u);
  // The mapping is page-aligned, so a 4096-aligned section's pointer is too.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->sectionData("weights")) % 4096, 0u);
}

TEST(Bundle, DocumentedLayout) {
  std::string bytes = sampleWriter().bytes();
  ASSERT_GE(bytes.size(), kTable + 4 * kEntry);
  EXPECT_EQ(bytes.substr(0, 8), std::string("NIBBLEB\0", 8));
  EXPECT_EQ(get(bytes, kMajor, 2), 1u);
  EXPECT_EQ(get(bytes, kMinor, 2), 0u);
  EXPECT_EQ(get(bytes, kCount, 4), 4u);
  EXPECT_EQ(get(bytes, kTableOffset, 8), kTable);
  EXPECT_EQ(get(bytes, kFileSize, 8), bytes.size());
  EXPECT_EQ(bytes.substr(kChecksum, 32),
            sha256Raw(bytes.substr(0, 32) + bytes.substr(kTable, 4 * kEntry)));
  // Entry 2: "weights", 5000 bytes at 4096, alignment 4096, flags 0.
  size_t e = kTable + 2 * kEntry;
  EXPECT_EQ(bytes.substr(e, 32),
            std::string("weights") + std::string(25, '\0'));
  EXPECT_EQ(get(bytes, e + kEOffset, 8), 4096u);
  EXPECT_EQ(get(bytes, e + kESize, 8), 5000u);
  EXPECT_EQ(get(bytes, e + kEAlign, 4), 4096u);
  EXPECT_EQ(get(bytes, e + kEFlags, 4), 0u);
  EXPECT_EQ(bytes.substr(e + kEHash, 32), sha256Raw(pattern(5000, 7)));
  // meta directly after the table at the next multiple of 64; the file ends
  // with the last section (code, alignment 1, right after weights).
  EXPECT_EQ(get(bytes, kTable + kEOffset, 8), 448u); // 64 + 352 -> 448
  EXPECT_EQ(bytes.size(), 4096u + 5000u + 100u);
}

TEST(Bundle, FromMemoryMatchesFile) {
  std::string bytes = sampleWriter().bytes(), error;
  auto b = Bundle::fromMemory("mem.nbl",
                              reinterpret_cast<const uint8_t *>(bytes.data()),
                              bytes.size(), error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->path(), "mem.nbl");
  EXPECT_EQ(b->section("weights"), pattern(5000, 7));
}

TEST(Bundle, EmptyBundle) {
  BundleWriter w;
  std::string bytes = w.bytes(), error;
  EXPECT_EQ(bytes.size(), 64u);
  auto b = Bundle::fromMemory("e.nbl",
                              reinterpret_cast<const uint8_t *>(bytes.data()),
                              bytes.size(), error);
  ASSERT_TRUE(b) << error;
  EXPECT_TRUE(b->sectionNames().empty());
}

TEST(Bundle, Deterministic) {
  TempDir dir;
  std::string error;
  ASSERT_TRUE(sampleWriter().write(dir.path + "/a.nbl", error)) << error;
  ASSERT_TRUE(sampleWriter().write(dir.path + "/b.nbl", error)) << error;
  std::string a = readBytes(dir.path + "/a.nbl");
  EXPECT_EQ(a, readBytes(dir.path + "/b.nbl"));
  EXPECT_EQ(a, sampleWriter().bytes());
  // Referenced (addView) and copied bytes give the same file.
  std::string meta = "{\"model\":\"tiny\"}", weights = pattern(5000, 7),
              code = pattern(100, 9);
  BundleWriter v;
  ASSERT_TRUE(v.addView("meta", meta, error) && v.addView("empty", "", error) &&
              v.addView("weights", weights, error, 4096) &&
              v.addView("code", code, error, 1))
      << error;
  EXPECT_EQ(v.bytes(), a);
  // Order matters: the same sections in another order are another file.
  BundleWriter r;
  ASSERT_TRUE(r.add("empty", "", error) && r.add("meta", meta, error) &&
              r.add("weights", weights, error, 4096) &&
              r.add("code", code, error, 1));
  EXPECT_NE(r.bytes(), a);
}

TEST(Bundle, AddCopiesAddViewReferences) {
  std::string copied = "aaaa", referenced = "bbbb", error;
  BundleWriter w;
  ASSERT_TRUE(w.add("copied", copied, error));
  ASSERT_TRUE(w.addView("referenced", referenced, error));
  copied[0] = 'X';
  referenced[0] = 'Y';
  std::string bytes = w.bytes();
  auto b =
      Bundle::fromMemory("m", reinterpret_cast<const uint8_t *>(bytes.data()),
                         bytes.size(), error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->section("copied"), "aaaa");
  EXPECT_EQ(b->section("referenced"), "Ybbb");
}

TEST(Bundle, WriterRejectsBadNamesAndAlignments) {
  BundleWriter w;
  std::string error;
  EXPECT_TRUE(w.add("a", "x", error));
  EXPECT_FALSE(w.add("", "x", error));
  EXPECT_EQ(error, "section name is empty");
  EXPECT_FALSE(w.add(std::string(32, 'n'), "x", error));
  EXPECT_NE(error.find("is 32 bytes (expected at most 31)"), std::string::npos)
      << error;
  EXPECT_TRUE(w.add(std::string(31, 'n'), "x", error)) << error;
  EXPECT_FALSE(w.add("has space", "x", error));
  EXPECT_NE(error.find("byte 0x20 at position 3"), std::string::npos) << error;
  EXPECT_FALSE(w.add(std::string("nul\0x", 5), "x", error));
  EXPECT_FALSE(w.add("a", "y", error));
  EXPECT_EQ(error, "duplicate section name \"a\"");
  for (uint32_t bad : {0u, 3u, 96u, 131072u}) {
    EXPECT_FALSE(w.add("b", "x", error, bad)) << bad;
    EXPECT_NE(error.find("alignment " + std::to_string(bad) +
                         " is not a power of two in 1..65536"),
              std::string::npos)
        << error;
  }
  EXPECT_FALSE(w.add("q\"x", "x", error, 3)); // quotes escaped in messages
  EXPECT_EQ(error, "section \"q\\\"x\": alignment 3 is not a power of two in "
                   "1..65536");
  EXPECT_TRUE(w.add("b", "x", error, 65536)) << error;
  EXPECT_EQ(w.sectionCount(), 3u);
}

TEST(Bundle, FlippedSectionByteNamesTheSection) {
  std::string good = sampleWriter().bytes(), error;
  auto ok = Bundle::fromMemory(
      "x", reinterpret_cast<const uint8_t *>(good.data()), good.size(), error);
  ASSERT_TRUE(ok) << error;
  for (const auto &s : ok->sections()) {
    if (s.size == 0)
      continue;
    for (uint64_t at :
         {s.offset, s.offset + s.size / 2, s.offset + s.size - 1}) {
      std::string bad = good;
      bad[at] ^= 0x40;
      EXPECT_EQ(openError(bad, "model.nbl"),
                "model.nbl: section \"" + s.name + "\" at offset " +
                    std::to_string(s.offset) + " (size " +
                    std::to_string(s.size) +
                    "): checksum mismatch (the file is corrupt)");
    }
  }
}

TEST(Bundle, EveryFlippedByteIsAnError) {
  // Header, table, padding and sections: no single-bit change goes unseen.
  std::string good = sampleWriter().bytes();
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    std::string error = openError(bad, "model.nbl");
    ASSERT_EQ(error.rfind("model.nbl: ", 0), 0u)
        << "byte " << i << ": " << error;
  }
  std::string bad = good;
  bad[kMinor] ^= 1; // minor 1: readable, but the checksum covers it
  EXPECT_EQ(openError(bad, "m"),
            "m: offset 32: checksum mismatch over header bytes 0..31 and the "
            "section table at offset 64 (4 entries, 352 bytes) (the file is "
            "corrupt)");
  bad = good;
  bad[kTable + 40] ^= 1; // an entry's size
  EXPECT_NE(openError(bad, "m").find("offset 32: checksum mismatch"),
            std::string::npos);
  bad = good;
  bad[kTable + 4 * kEntry + 5] = 7; // padding between the table and "meta"
  EXPECT_EQ(openError(bad, "m"),
            "m: offset 421: padding byte is 0x07 (expected 0; the file is "
            "corrupt)");
}

TEST(Bundle, TruncatedFileNamesTheFile) {
  TempDir dir;
  std::string good = sampleWriter().bytes(), error;
  for (size_t len : {size_t(0), size_t(1), size_t(7), size_t(8), size_t(63),
                     size_t(64), size_t(100), size_t(4096), good.size() - 1}) {
    std::string path = dir.path + "/cut" + std::to_string(len) + ".nbl";
    writeBytes(path, good.substr(0, len));
    auto b = Bundle::open(path, error);
    ASSERT_FALSE(b) << len;
    EXPECT_EQ(error.rfind(path + ": ", 0), 0u) << error;
    if (len == 0)
      EXPECT_EQ(error, path + ": offset 0: not a Nibble bundle (the file is "
                              "empty, expected the magic \"NIBBLEB\\0\")");
    else if (len < 64)
      EXPECT_EQ(error, path + ": truncated: file has " + std::to_string(len) +
                           " bytes, the bundle header alone is 64");
    else
      EXPECT_EQ(error, path + ": truncated: header says " +
                           std::to_string(good.size()) + " bytes, file has " +
                           std::to_string(len));
  }
  std::string path = dir.path + "/long.nbl";
  writeBytes(path, good + std::string(1, '\0'));
  EXPECT_FALSE(Bundle::open(path, error));
  EXPECT_EQ(error, path + ": offset 24: header says " +
                       std::to_string(good.size()) + " bytes, file has " +
                       std::to_string(good.size() + 1) +
                       " (trailing data after the bundle)");
  EXPECT_FALSE(Bundle::open(dir.path + "/missing.nbl", error));
  EXPECT_EQ(error.rfind("cannot open " + dir.path + "/missing.nbl: ", 0), 0u)
      << error;
}

TEST(Bundle, BadMagic) {
  std::string bytes = sampleWriter().bytes();
  bytes.replace(0, 8, "ABCDEFGH");
  EXPECT_EQ(openError(bytes, "model.nbl"),
            "model.nbl: offset 0: not a Nibble bundle (magic is \"ABCDEFGH\", "
            "expected \"NIBBLEB\\0\")");
  EXPECT_EQ(openError(std::string("PK\x03\x04", 4), "w.zip"),
            "w.zip: offset 0: not a Nibble bundle (magic is \"PK\\x03\\x04\", "
            "expected \"NIBBLEB\\0\")");
}

TEST(Bundle, NewerMajorVersionIsRefusedClearly) {
  std::string bytes = sampleWriter().bytes();
  put(bytes, kMajor, 2, 2);
  EXPECT_EQ(
      openError(bytes, "model.nbl"),
      "model.nbl: unsupported bundle version 2.0 (this runtime reads 1.x)");
  put(bytes, kMajor, 2, 0);
  put(bytes, kMinor, 2, 3);
  EXPECT_EQ(
      openError(bytes, "model.nbl"),
      "model.nbl: unsupported bundle version 0.3 (this runtime reads 1.x)");
}

TEST(Bundle, NewerMinorVersionIsRead) {
  std::string bytes = sampleWriter().bytes(), error;
  put(bytes, kMinor, 2, 7);
  rehashHeader(bytes);
  auto b =
      Bundle::fromMemory("m", reinterpret_cast<const uint8_t *>(bytes.data()),
                         bytes.size(), error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->versionMajor(), 1u);
  EXPECT_EQ(b->versionMinor(), 7u);
}

// Hand-crafted tables with a correct header checksum: the structural checks
// themselves must catch these.
TEST(Bundle, CraftedTableErrors) {
  const std::string good = sampleWriter().bytes();
  const size_t e0 = kTable, e1 = kTable + kEntry, e2 = kTable + 2 * kEntry,
               e3 = kTable + 3 * kEntry;
  // Entries: 0 meta @448 (16 bytes), 1 empty @512, 2 weights @4096 (5000),
  // 3 code @9096 (100); file size 9196.
  ASSERT_EQ(get(good, e0 + kEOffset, 8), 448u);
  ASSERT_EQ(get(good, e3 + kEOffset, 8), 9096u);
  auto crafted = [&](auto edit) {
    std::string b = good;
    edit(b);
    rehashHeader(b);
    return openError(b, "model.nbl");
  };
  auto expectError = [](const std::string &error, const std::string &want) {
    EXPECT_EQ(error, "model.nbl: " + want);
  };

  // Overlap: "code" moved onto the middle of "weights" (checksum fixed, so
  // only the overlap can be reported).
  expectError(crafted([&](std::string &b) {
                put(b, e3 + kEOffset, 8, 5000);
                rehashSection(b, 3);
              }),
              "section \"code\" at offset 5000 (size 100) overlaps section "
              "\"weights\" at offset 4096 (size 5000)");
  // Two sections at the same offset.
  expectError(crafted([&](std::string &b) {
                put(b, e3 + kEOffset, 8, 4096);
                rehashSection(b, 3);
              }),
              "section \"code\" at offset 4096 (size 100) overlaps section "
              "\"weights\" at offset 4096 (size 5000)");
  // Out of bounds: past the end, and a size that would wrap around.
  expectError(crafted([&](std::string &b) { put(b, e3 + kESize, 8, 101); }),
              "offset 360: section \"code\" at offset 9096 (size 101): ends "
              "past the end of the file (9196 bytes)");
  expectError(
      crafted([&](std::string &b) { put(b, e2 + kESize, 8, ~uint64_t(0)); }),
      "offset 272: section \"weights\" at offset 4096 (size "
      "18446744073709551615): ends past the end of the file (9196 "
      "bytes)");
  expectError(crafted([&](std::string &b) { put(b, e1 + kEOffset, 8, 9216); }),
              "offset 184: section \"empty\" at offset 9216 (size 0): ends "
              "past the end of the file (9196 bytes)");
  // Misaligned, bad alignment.
  expectError(crafted([&](std::string &b) { put(b, e0 + kEOffset, 8, 449); }),
              "offset 96: section \"meta\" at offset 449 (size 16): offset is "
              "not a multiple of its alignment 64");
  expectError(crafted([&](std::string &b) { put(b, e0 + kEAlign, 4, 3); }),
              "offset 112: section \"meta\": alignment 3 is not a power of two "
              "in 1..65536");
  expectError(crafted([&](std::string &b) { put(b, e0 + kEAlign, 4, 0); }),
              "offset 112: section \"meta\": alignment 0 is not a power of two "
              "in 1..65536");
  // Into the header and the table.
  expectError(crafted([&](std::string &b) { put(b, e0 + kEOffset, 8, 0); }),
              "offset 96: section \"meta\" at offset 0 (size 16): overlaps the "
              "64-byte header");
  expectError(crafted([&](std::string &b) { put(b, e0 + kEOffset, 8, 128); }),
              "offset 96: section \"meta\" at offset 128 (size 16): overlaps "
              "the section table at offset 64 (4 entries, 352 bytes)");
  // Flags.
  expectError(crafted([&](std::string &b) { put(b, e2 + kEFlags, 4, 0x10); }),
              "offset 292: section \"weights\": unknown flags 0x00000010 "
              "(expected 0: version 1 defines no flags)");
  // Names: empty, duplicate, not NUL-padded, unterminated, not visible ASCII.
  expectError(crafted([&](std::string &b) { b.replace(e1, 5, 5, '\0'); }),
              "offset 152: section table entry 1: empty name");
  expectError(crafted([&](std::string &b) { b.replace(e1, 5, "meta\0", 5); }),
              "offset 152: section table entry 1: duplicate section name "
              "\"meta\" (entry 0 has it too)");
  expectError(crafted([&](std::string &b) { b[e1 + 20] = 'Z'; }),
              "offset 172: section table entry 1: name is not NUL-padded "
              "(byte 20 is 0x5a after the terminating NUL, expected 0)");
  expectError(crafted([&](std::string &b) { b.replace(e1, 32, 32, 'q'); }),
              "offset 152: section table entry 1: name "
              "\"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\" has no terminating NUL "
              "(expected at most 31 characters)");
  expectError(crafted([&](std::string &b) { b[e1 + 2] = '\x07'; }),
              "offset 154: section table entry 1: name \"em\\x07ty\" has byte "
              "0x07 at position 2 (expected visible ASCII 0x21..0x7e)");
  // Header fields that locate the table.
  expectError(crafted([&](std::string &b) { put(b, kCount, 4, 0xffffffff); }),
              "offset 16: section table at offset 64 (4294967295 entries, "
              "377957121960 bytes) ends past the end of the file (9196 bytes)");
  expectError(crafted([&](std::string &b) { put(b, kTableOffset, 8, 0); }),
              "offset 16: section table offset 0 overlaps the 64-byte header "
              "(expected >= 64)");
  expectError(crafted([&](std::string &b) { put(b, kTableOffset, 8, 68); }),
              "offset 16: section table offset 68 is not a multiple of 8");
  expectError(crafted([&](std::string &b) {
                put(b, kTableOffset, 8, ~uint64_t(0) - 7);
              }),
              "offset 16: section table at offset 18446744073709551608 (4 "
              "entries, 352 bytes) ends past the end of the file (9196 bytes)");
  // A table with fewer entries: the dropped entry's bytes (and the dropped
  // section's) are now padding, and not zero.
  expectError(crafted([&](std::string &b) { put(b, kCount, 4, 3); }),
              "offset 328: padding byte is 0x63 (expected 0; the file is "
              "corrupt)");
  // Sanity: the helpers alone change nothing.
  EXPECT_EQ(crafted([](std::string &) {}), "");
}

TEST(Bundle, UnwritableDestinationLeavesNothing) {
  TempDir dir;
  std::string error;
  BundleWriter w = sampleWriter();
  std::string missing = dir.path + "/no/such/dir/model.nbl";
  EXPECT_FALSE(w.write(missing, error));
  EXPECT_EQ(error, "cannot create a temporary file next to " + missing +
                       ": No such file or directory");
  // A parent that is a regular file.
  writeBytes(dir.path + "/file", "x");
  std::string underFile = dir.path + "/file/model.nbl";
  EXPECT_FALSE(w.write(underFile, error));
  EXPECT_EQ(
      error.rfind("cannot create a temporary file next to " + underFile, 0), 0u)
      << error;
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"file"}));
}

TEST(Bundle, ReadOnlyDirectoryLeavesNothing) {
  TempDir dir;
  std::string error;
  BundleWriter w = sampleWriter();
  // A read-only directory (root ignores permissions, so this part needs an
  // unprivileged user).
  std::string ro = dir.path + "/ro";
  ASSERT_EQ(mkdir(ro.c_str(), 0555), 0);
  if (access(ro.c_str(), W_OK) == 0) {
    chmod(ro.c_str(), 0755);
    GTEST_SKIP() << "running with privileges that ignore directory "
                    "permissions; read-only directory case not checked";
  }
  EXPECT_FALSE(w.write(ro + "/model.nbl", error));
  EXPECT_EQ(error, "cannot create a temporary file next to " + ro +
                       "/model.nbl: Permission denied");
  EXPECT_TRUE(std::filesystem::is_empty(ro));
  chmod(ro.c_str(), 0755);
}

TEST(Bundle, ExistingFileReplacedOnlyOnSuccess) {
  TempDir dir;
  std::string path = dir.path + "/model.nbl", error;
  writeBytes(path, "old contents");

  // A write that fails halfway (file size limit: write() returns EFBIG)
  // keeps the old file and removes the temporary.
  BundleWriter big;
  ASSERT_TRUE(big.add("weights", pattern(1 << 16, 3), error)) << error;
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto oldHandler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool ok = big.write(path, error);
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, oldHandler);
  EXPECT_FALSE(ok);
  EXPECT_EQ(error, "cannot write " + path + ": File too large");
  EXPECT_EQ(readBytes(path), "old contents");
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"model.nbl"}));

  // A destination that cannot be replaced (a non-empty directory): the
  // rename fails after the data was written; the temporary is removed.
  std::string sub = dir.path + "/sub";
  ASSERT_EQ(mkdir(sub.c_str(), 0755), 0);
  writeBytes(sub + "/keep", "k");
  EXPECT_FALSE(big.write(sub, error));
  EXPECT_EQ(error.rfind("cannot rename to " + sub + ": ", 0), 0u) << error;
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"model.nbl", "sub"}));

  // Success replaces the old file, with nothing else left behind.
  ASSERT_TRUE(big.write(path, error)) << error;
  EXPECT_EQ(readBytes(path), big.bytes());
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"model.nbl", "sub"}));
  auto b = Bundle::open(path, error);
  ASSERT_TRUE(b) << error;
  EXPECT_EQ(b->section("weights"), pattern(1 << 16, 3));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}
