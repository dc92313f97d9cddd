//===- Bundle.h - The on-disk bundle container ----------------------------===//
//
// A bundle is one file holding named byte sections (compiled code, packed
// weights, metadata), each aligned and checksummed. The byte layout is
// specified in docs/bundle.md. Plain C++: no MLIR/LLVM, no exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_BUNDLE_BUNDLE_H
#define NIBBLE_BUNDLE_BUNDLE_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::model {
class MappedFile;
} // namespace nibble::model

namespace nibble::bundle {

/// Format constants (docs/bundle.md).
inline constexpr char kMagic[8] = {'N', 'I', 'B', 'B', 'L', 'E', 'B', '\0'};
inline constexpr uint16_t kVersionMajor = 1;
inline constexpr uint16_t kVersionMinor = 0;
inline constexpr size_t kHeaderSize = 64;
inline constexpr size_t kTableEntrySize = 88;
inline constexpr size_t kMaxNameLength = 31;
inline constexpr uint32_t kDefaultAlignment = 64;
inline constexpr uint32_t kMaxAlignment = 65536;

/// Checks a section name: 1..31 bytes of visible ASCII (0x21..0x7e). On
/// failure `error` says why (without a file name).
bool isValidSectionName(std::string_view name, std::string &error);

/// Builds a bundle. Sections are laid out in the order added; the output is
/// a pure function of the (name, bytes, alignment) sequence: byte-identical
/// for the same sections, with zeroed padding and no timestamps.
class BundleWriter {
public:
  /// Adds a section holding a copy of `bytes`. False with `error` (and
  /// nothing added) when the name is invalid or already used, or the
  /// alignment is not a power of two in [1, kMaxAlignment].
  bool add(std::string name, std::string_view bytes, std::string &error,
           uint32_t alignment = kDefaultAlignment);
  /// As add(), but references `bytes` without copying (for large weights):
  /// the caller keeps them alive and unchanged until the last write()/bytes().
  bool addView(std::string name, std::string_view bytes, std::string &error,
               uint32_t alignment = kDefaultAlignment);

  size_t sectionCount() const { return sections_.size(); }

  /// Writes the bundle to `path` atomically (temporary file in the same
  /// directory, fsync, rename): on failure `error` names the path and
  /// neither a partial file nor the temporary is left; an existing file at
  /// `path` is replaced only on success.
  bool write(const std::string &path, std::string &error) const;
  /// The whole bundle in memory (tests, fuzz seeds, small bundles).
  std::string bytes() const;

private:
  struct Section {
    std::string name;
    std::string owned;     ///< the bytes, when copied
    std::string_view data; ///< points into `owned` or the caller's bytes
    uint32_t alignment;
  };
  bool addImpl(std::string name, std::string_view bytes, bool copy,
               uint32_t alignment, std::string &error);
  // unique_ptr keeps `data` valid when the vector grows.
  std::vector<std::unique_ptr<Section>> sections_;
};

/// Where a section lies in the file, as recorded in the section table.
struct SectionInfo {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t alignment = 0;
};

/// A validated, read-only bundle. Holds the file mapping; section views stay
/// valid while the Bundle lives.
class Bundle {
public:
  /// Maps `path` and validates everything before returning: header, table
  /// checksum, names, alignment, bounds, overlap, zero padding and every
  /// section's SHA-256 (so opening reads the whole file once). nullptr with
  /// `error` ("PATH: offset N: what (expected ...)") on failure.
  static std::unique_ptr<Bundle> open(const std::string &path,
                                      std::string &error);
  /// As open(), from a copy of `size` bytes presented as a file `name`.
  /// Offsets are aligned within the file; the copy itself is only
  /// malloc-aligned (open() maps pages, so section pointers are aligned up
  /// to the page size there).
  static std::unique_ptr<Bundle> fromMemory(const std::string &name,
                                            const uint8_t *data, size_t size,
                                            std::string &error);

  uint32_t versionMajor() const { return major_; }
  uint32_t versionMinor() const { return minor_; }
  const std::string &path() const { return path_; }

  bool has(std::string_view name) const { return find(name) != nullptr; }
  /// The section's bytes; an empty view when absent (use has() to tell an
  /// empty section from a missing one).
  std::string_view section(std::string_view name) const;
  /// nullptr when absent.
  const uint8_t *sectionData(std::string_view name) const;
  /// 0 when absent.
  size_t sectionSize(std::string_view name) const;
  /// Names in table order (the order the writer added them).
  std::vector<std::string> sectionNames() const;
  /// Table entries in table order.
  const std::vector<SectionInfo> &sections() const { return sections_; }

private:
  Bundle() = default;
  static std::unique_ptr<Bundle> load(std::shared_ptr<model::MappedFile> file,
                                      std::string &error);
  const SectionInfo *find(std::string_view name) const;

  std::shared_ptr<model::MappedFile> file_;
  std::string path_;
  uint32_t major_ = 0, minor_ = 0;
  std::vector<SectionInfo> sections_;
};

} // namespace nibble::bundle

#endif // NIBBLE_BUNDLE_BUNDLE_H
