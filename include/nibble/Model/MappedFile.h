//===- MappedFile.h - Read-only memory-mapped files -----------------------===//

#ifndef NIBBLE_MODEL_MAPPEDFILE_H
#define NIBBLE_MODEL_MAPPEDFILE_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace nibble::model {

/// A whole file mapped read-only (weights are never copied wholesale: pages
/// are read on first touch and shared with the page cache).
class MappedFile {
public:
  static std::shared_ptr<MappedFile> open(const std::string &path,
                                          std::string &error);
  /// A copy of `size` bytes presented as a file named `name` (tests and
  /// fuzzing feed loaders from memory this way).
  static std::shared_ptr<MappedFile> fromMemory(const std::string &name,
                                                const uint8_t *data,
                                                size_t size);
  ~MappedFile();
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;

  const uint8_t *data() const { return data_; }
  size_t size() const { return size_; }
  const std::string &path() const { return path_; }

private:
  MappedFile() = default;
  const uint8_t *data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  std::unique_ptr<uint8_t[]> owned_; ///< set by fromMemory
};

} // namespace nibble::model

#endif // NIBBLE_MODEL_MAPPEDFILE_H
