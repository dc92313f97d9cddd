//===- Bundle.cpp - The on-disk bundle container --------------------------===//
//
// Layout and error messages: docs/bundle.md. Every multi-byte field is
// little-endian and read/written byte by byte, so the code does not depend on
// the host's byte order or alignment.
//
//===----------------------------------------------------------------------===//

#include "nibble/Bundle/Bundle.h"

#include "nibble/Model/MappedFile.h"
#include "nibble/Support/File.h"
#include "nibble/Support/Hash.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

namespace nibble::bundle {

namespace {

// Header fields (byte offsets from the start of the file).
constexpr size_t kHMagic = 0, kHMajor = 8, kHMinor = 10, kHCount = 12,
                 kHTableOffset = 16, kHFileSize = 24, kHChecksum = 32;
// Section table entry fields (byte offsets from the start of the entry).
constexpr size_t kEName = 0, kEOffset = 32, kESize = 40, kEAlignment = 48,
                 kEFlags = 52, kEHash = 56;
constexpr size_t kHashSize = 32;
constexpr uint64_t kTableAlignment = 8;

static_assert(kHChecksum + kHashSize == kHeaderSize, "header is 64 bytes");
static_assert(kEHash + kHashSize == kTableEntrySize, "entry is 88 bytes");
static_assert(kEOffset == kMaxNameLength + 1, "name field is 32 bytes");

void put16(uint8_t *p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = uint8_t(v >> (8 * i));
}
void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = uint8_t(v >> (8 * i));
}
uint16_t get16(const uint8_t *p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t get32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}
uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

/// Raw 32-byte SHA-256 (Support gives lower-case hex).
void sha256Raw(const void *data, size_t size, uint8_t out[kHashSize]) {
  std::string hex = support::sha256Hex(data, size);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < kHashSize; ++i)
    out[i] = uint8_t(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
}

/// The header checksum: SHA-256 of header bytes [0, 32) (everything before
/// the checksum field) followed by the section table.
void headerChecksum(const uint8_t *header, const uint8_t *table,
                    size_t tableSize, uint8_t out[kHashSize]) {
  std::vector<uint8_t> bytes(header, header + kHChecksum);
  bytes.insert(bytes.end(), table, table + tableSize);
  sha256Raw(bytes.data(), bytes.size(), out);
}

bool isPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

uint64_t alignUp(uint64_t v, uint64_t alignment) {
  return (v + alignment - 1) / alignment * alignment;
}

std::string hexByte(uint8_t b) {
  static const char *hex = "0123456789abcdef";
  return std::string("0x") + hex[b >> 4] + hex[b & 15];
}

/// Bytes as a C string literal body: printable ASCII as is, NUL as \0,
/// anything else as \xNN.
std::string escape(const uint8_t *p, size_t n) {
  static const char *hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = p[i];
    if (c == 0)
      out += "\\0";
    else if (c == '"' || c == '\\')
      out += std::string("\\") + char(c);
    else if (c >= 0x20 && c < 0x7f)
      out += char(c);
    else
      out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
  }
  return out;
}

/// A section name for messages: quoted, with '"' and '\\' escaped.
std::string quoted(std::string_view name) {
  return "\"" +
         escape(reinterpret_cast<const uint8_t *>(name.data()), name.size()) +
         "\"";
}

bool checkAlignment(uint64_t alignment) {
  return isPowerOfTwo(alignment) && alignment <= kMaxAlignment;
}

} // namespace

bool isValidSectionName(std::string_view name, std::string &error) {
  if (name.empty()) {
    error = "section name is empty";
    return false;
  }
  if (name.size() > kMaxNameLength) {
    error = "section name " + quoted(name) + " is " +
            std::to_string(name.size()) + " bytes (expected at most " +
            std::to_string(kMaxNameLength) + ")";
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    uint8_t c = uint8_t(name[i]);
    if (c < 0x21 || c > 0x7e) {
      error = "section name " + quoted(name) + " has byte " + hexByte(c) +
              " at position " + std::to_string(i) +
              " (expected visible ASCII 0x21..0x7e)";
      return false;
    }
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

bool BundleWriter::add(std::string name, std::string_view bytes,
                       std::string &error, uint32_t alignment) {
  return addImpl(std::move(name), bytes, /*copy=*/true, alignment, error);
}

bool BundleWriter::addView(std::string name, std::string_view bytes,
                           std::string &error, uint32_t alignment) {
  return addImpl(std::move(name), bytes, /*copy=*/false, alignment, error);
}

bool BundleWriter::addImpl(std::string name, std::string_view bytes, bool copy,
                           uint32_t alignment, std::string &error) {
  if (!isValidSectionName(name, error))
    return false;
  for (const auto &s : sections_)
    if (s->name == name) {
      error = "duplicate section name " + quoted(name);
      return false;
    }
  if (!checkAlignment(alignment)) {
    error = "section " + quoted(name) + ": alignment " +
            std::to_string(alignment) + " is not a power of two in 1.." +
            std::to_string(kMaxAlignment);
    return false;
  }
  auto s = std::make_unique<Section>();
  s->name = std::move(name);
  s->alignment = alignment;
  if (copy) {
    s->owned.assign(bytes.data(), bytes.size());
    s->data = s->owned;
  } else {
    s->data = bytes;
  }
  sections_.push_back(std::move(s));
  return true;
}

namespace {

/// Header + section table bytes and where each section goes.
struct Layout {
  std::vector<uint8_t> head; ///< header followed by the table
  std::vector<uint64_t> offsets;
  uint64_t fileSize = 0;
};

} // namespace

// The layout is computed from the sections alone: the table directly after
// the header, then each section at the next multiple of its alignment.
template <typename Section>
static Layout
computeLayout(const std::vector<std::unique_ptr<Section>> &sections) {
  Layout l;
  uint64_t tableOffset = kHeaderSize;
  uint64_t tableSize = sections.size() * kTableEntrySize;
  l.head.assign(kHeaderSize + tableSize, 0);
  uint64_t cursor = tableOffset + tableSize;
  for (size_t i = 0; i < sections.size(); ++i) {
    const auto &s = *sections[i];
    uint64_t offset = alignUp(cursor, s.alignment);
    l.offsets.push_back(offset);
    cursor = offset + s.data.size();
    uint8_t *e = l.head.data() + tableOffset + i * kTableEntrySize;
    std::memcpy(e + kEName, s.name.data(), s.name.size()); // rest stays 0
    put64(e + kEOffset, offset);
    put64(e + kESize, s.data.size());
    put32(e + kEAlignment, s.alignment);
    put32(e + kEFlags, 0);
    sha256Raw(s.data.data(), s.data.size(), e + kEHash);
  }
  l.fileSize = cursor;
  uint8_t *h = l.head.data();
  std::memcpy(h + kHMagic, kMagic, sizeof kMagic);
  put16(h + kHMajor, kVersionMajor);
  put16(h + kHMinor, kVersionMinor);
  put32(h + kHCount, uint32_t(sections.size()));
  put64(h + kHTableOffset, tableOffset);
  put64(h + kHFileSize, l.fileSize);
  headerChecksum(h, h + tableOffset, tableSize, h + kHChecksum);
  return l;
}

std::string BundleWriter::bytes() const {
  Layout l = computeLayout(sections_);
  std::string out(size_t(l.fileSize), '\0');
  std::memcpy(out.data(), l.head.data(), l.head.size());
  for (size_t i = 0; i < sections_.size(); ++i)
    if (!sections_[i]->data.empty())
      std::memcpy(out.data() + l.offsets[i], sections_[i]->data.data(),
                  sections_[i]->data.size());
  return out;
}

bool BundleWriter::write(const std::string &path, std::string &error) const {
  if (sections_.size() > UINT32_MAX) {
    error = "cannot write " + path + ": too many sections";
    return false;
  }
  Layout l = computeLayout(sections_);
  support::AtomicFileWriter out;
  if (!out.open(path, error) || !out.write(l.head.data(), l.head.size(), error))
    return false;
  for (size_t i = 0; i < sections_.size(); ++i) {
    const auto &s = *sections_[i];
    if (!out.writeZeros(size_t(l.offsets[i] - out.written()), error) ||
        !out.write(s.data.data(), s.data.size(), error))
      return false;
  }
  if (out.written() != l.fileSize) { // cannot happen; never commit a bad file
    error = "cannot write " + path + ": internal layout error";
    return false;
  }
  return out.commit(error);
}

//===----------------------------------------------------------------------===//
// Reader
//===----------------------------------------------------------------------===//

std::unique_ptr<Bundle> Bundle::open(const std::string &path,
                                     std::string &error) {
  auto file = model::MappedFile::open(path, error);
  if (!file)
    return nullptr;
  return load(std::move(file), error);
}

std::unique_ptr<Bundle> Bundle::fromMemory(const std::string &name,
                                           const uint8_t *data, size_t size,
                                           std::string &error) {
  return load(model::MappedFile::fromMemory(name, data, size), error);
}

std::unique_ptr<Bundle> Bundle::load(std::shared_ptr<model::MappedFile> file,
                                     std::string &error) {
  const std::string &path = file->path();
  const uint8_t *p = file->data();
  const uint64_t n = file->size();
  auto fail = [&](const std::string &what) {
    error = path + ": " + what;
    return nullptr;
  };
  auto at = [](uint64_t offset) {
    return "offset " + std::to_string(offset) + ": ";
  };
  const std::string kMagicText =
      escape(reinterpret_cast<const uint8_t *>(kMagic), sizeof kMagic);

  // --- Header ---------------------------------------------------------------
  if (n == 0)
    return fail(at(0) +
                "not a Nibble bundle (the file is empty, expected "
                "the magic \"" +
                kMagicText + "\")");
  size_t magicBytes = std::min<uint64_t>(n, sizeof kMagic);
  if (std::memcmp(p, kMagic, magicBytes) != 0)
    return fail(at(0) + "not a Nibble bundle (magic is \"" +
                escape(p, magicBytes) + "\", expected \"" + kMagicText + "\")");
  if (n < kHeaderSize)
    return fail("truncated: file has " + std::to_string(n) +
                " bytes, the bundle header alone is " +
                std::to_string(kHeaderSize));
  uint32_t major = get16(p + kHMajor), minor = get16(p + kHMinor);
  if (major != kVersionMajor)
    return fail("unsupported bundle version " + std::to_string(major) + "." +
                std::to_string(minor) + " (this runtime reads " +
                std::to_string(kVersionMajor) + ".x)");
  uint64_t fileSize = get64(p + kHFileSize);
  if (fileSize > n)
    return fail("truncated: header says " + std::to_string(fileSize) +
                " bytes, file has " + std::to_string(n));
  if (fileSize < n)
    return fail(at(kHFileSize) + "header says " + std::to_string(fileSize) +
                " bytes, file has " + std::to_string(n) +
                " (trailing data after the bundle)");
  uint32_t count = get32(p + kHCount);
  uint64_t tableOffset = get64(p + kHTableOffset);
  if (tableOffset < kHeaderSize)
    return fail(at(kHTableOffset) + "section table offset " +
                std::to_string(tableOffset) + " overlaps the " +
                std::to_string(kHeaderSize) + "-byte header (expected >= " +
                std::to_string(kHeaderSize) + ")");
  if (tableOffset % kTableAlignment != 0)
    return fail(at(kHTableOffset) + "section table offset " +
                std::to_string(tableOffset) + " is not a multiple of " +
                std::to_string(kTableAlignment));
  // count <= 2^32 and kTableEntrySize < 2^7: no overflow in the product.
  uint64_t tableSize = uint64_t(count) * kTableEntrySize;
  std::string tableText = "section table at offset " +
                          std::to_string(tableOffset) + " (" +
                          std::to_string(count) + " entries, " +
                          std::to_string(tableSize) + " bytes)";
  if (tableOffset > n || tableSize > n - tableOffset)
    return fail(at(kHTableOffset) + tableText +
                " ends past the end of the file (" + std::to_string(n) +
                " bytes)");
  uint8_t hash[kHashSize];
  headerChecksum(p, p + tableOffset, size_t(tableSize), hash);
  if (std::memcmp(hash, p + kHChecksum, kHashSize) != 0)
    return fail(at(kHChecksum) +
                "checksum mismatch over header bytes 0..31 "
                "and the " +
                tableText + " (the file is corrupt)");

  // --- Section table
  // ----------------------------------------------------------
  std::unique_ptr<Bundle> b(new Bundle());
  b->sections_.reserve(count);
  std::unordered_map<std::string, uint32_t> byName;
  auto sectionText = [](const SectionInfo &s) {
    return "section " + quoted(s.name) + " at offset " +
           std::to_string(s.offset) + " (size " + std::to_string(s.size) + ")";
  };
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t e = tableOffset + uint64_t(i) * kTableEntrySize;
    const uint8_t *entry = p + e;
    std::string entryText = "section table entry " + std::to_string(i) + ": ";
    size_t len = 0;
    while (len <= kMaxNameLength && entry[kEName + len] != 0)
      ++len;
    if (len == 0)
      return fail(at(e) + entryText + "empty name");
    if (len > kMaxNameLength)
      return fail(at(e) + entryText + "name \"" + escape(entry, len) +
                  "\" has no terminating NUL (expected at most " +
                  std::to_string(kMaxNameLength) + " characters)");
    for (size_t k = len + 1; k <= kMaxNameLength; ++k)
      if (entry[kEName + k] != 0)
        return fail(at(e + k) + entryText + "name is not NUL-padded (byte " +
                    std::to_string(k) + " is " + hexByte(entry[kEName + k]) +
                    " after the terminating NUL, expected 0)");
    for (size_t k = 0; k < len; ++k) {
      uint8_t c = entry[kEName + k];
      if (c < 0x21 || c > 0x7e)
        return fail(at(e + k) + entryText + "name \"" + escape(entry, len) +
                    "\" has byte " + hexByte(c) + " at position " +
                    std::to_string(k) + " (expected visible ASCII 0x21..0x7e)");
    }
    SectionInfo s;
    s.name.assign(reinterpret_cast<const char *>(entry), len);
    s.offset = get64(entry + kEOffset);
    s.size = get64(entry + kESize);
    s.alignment = get32(entry + kEAlignment);
    uint32_t flags = get32(entry + kEFlags);
    auto [it, inserted] = byName.emplace(s.name, i);
    if (!inserted)
      return fail(at(e) + entryText + "duplicate section name " +
                  quoted(s.name) + " (entry " + std::to_string(it->second) +
                  " has it too)");
    std::string named = "section " + quoted(s.name) + ": ";
    if (!checkAlignment(s.alignment))
      return fail(at(e + kEAlignment) + named + "alignment " +
                  std::to_string(s.alignment) +
                  " is not a power of two in 1.." +
                  std::to_string(kMaxAlignment));
    if (flags != 0)
      return fail(at(e + kEFlags) + named + "unknown flags 0x" + [&] {
        static const char *hex = "0123456789abcdef";
        std::string h;
        for (int sh = 28; sh >= 0; sh -= 4)
          h += hex[(flags >> sh) & 15];
        return h;
      }() + " (expected 0: version 1 defines no flags)");
    if (s.offset % s.alignment != 0)
      return fail(at(e + kEOffset) + sectionText(s) +
                  ": offset is not a multiple of its alignment " +
                  std::to_string(s.alignment));
    if (s.offset < kHeaderSize)
      return fail(at(e + kEOffset) + sectionText(s) + ": overlaps the " +
                  std::to_string(kHeaderSize) + "-byte header");
    if (s.offset > n || s.size > n - s.offset)
      return fail(at(e + kEOffset) + sectionText(s) +
                  ": ends past the end of the file (" + std::to_string(n) +
                  " bytes)");
    if (s.size > 0 && tableSize > 0 && s.offset < tableOffset + tableSize &&
        tableOffset < s.offset + s.size)
      return fail(at(e + kEOffset) + sectionText(s) + ": overlaps the " +
                  tableText);
    b->sections_.push_back(std::move(s));
  }

  // --- Overlap and padding --------------------------------------------------
  // Every byte is the header, the table, a section or zero padding.
  struct Span {
    uint64_t begin, end;
    int section; ///< index, or -1 for the header/table
  };
  std::vector<Span> spans;
  spans.push_back({0, kHeaderSize, -1});
  if (tableSize > 0)
    spans.push_back({tableOffset, tableOffset + tableSize, -1});
  for (size_t i = 0; i < b->sections_.size(); ++i)
    if (b->sections_[i].size > 0)
      spans.push_back({b->sections_[i].offset,
                       b->sections_[i].offset + b->sections_[i].size, int(i)});
  std::sort(spans.begin(), spans.end(), [](const Span &a, const Span &c) {
    return a.begin != c.begin ? a.begin < c.begin : a.section < c.section;
  });
  uint64_t cursor = 0;
  int last = -1;
  for (const Span &s : spans) {
    if (s.begin < cursor) {
      // Header/table overlaps were reported above, so both are sections.
      if (s.section < 0 || last < 0)
        return fail(at(s.begin) + "overlapping regions");
      return fail(sectionText(b->sections_[size_t(s.section)]) + " overlaps " +
                  sectionText(b->sections_[size_t(last)]));
    }
    for (uint64_t k = cursor; k < s.begin; ++k)
      if (p[k] != 0)
        return fail(at(k) + "padding byte is " + hexByte(p[k]) +
                    " (expected 0; the file is corrupt)");
    cursor = s.end;
    last = s.section;
  }
  for (uint64_t k = cursor; k < n; ++k)
    if (p[k] != 0)
      return fail(at(k) + "padding byte is " + hexByte(p[k]) +
                  " (expected 0; the file is corrupt)");

  // --- Section checksums ----------------------------------------------------
  for (uint32_t i = 0; i < count; ++i) {
    const SectionInfo &s = b->sections_[i];
    sha256Raw(p + s.offset, size_t(s.size), hash);
    const uint8_t *recorded =
        p + tableOffset + uint64_t(i) * kTableEntrySize + kEHash;
    if (std::memcmp(hash, recorded, kHashSize) != 0)
      return fail(sectionText(s) + ": checksum mismatch (the file is corrupt)");
  }

  b->path_ = path;
  b->major_ = major;
  b->minor_ = minor;
  b->file_ = std::move(file);
  return b;
}

const SectionInfo *Bundle::find(std::string_view name) const {
  for (const SectionInfo &s : sections_)
    if (s.name == name)
      return &s;
  return nullptr;
}

std::string_view Bundle::section(std::string_view name) const {
  const SectionInfo *s = find(name);
  if (!s)
    return {};
  return {reinterpret_cast<const char *>(file_->data() + s->offset),
          size_t(s->size)};
}

const uint8_t *Bundle::sectionData(std::string_view name) const {
  const SectionInfo *s = find(name);
  return s ? file_->data() + s->offset : nullptr;
}

size_t Bundle::sectionSize(std::string_view name) const {
  const SectionInfo *s = find(name);
  return s ? size_t(s->size) : 0;
}

std::vector<std::string> Bundle::sectionNames() const {
  std::vector<std::string> names;
  names.reserve(sections_.size());
  for (const SectionInfo &s : sections_)
    names.push_back(s.name);
  return names;
}

} // namespace nibble::bundle
