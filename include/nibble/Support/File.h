//===- File.h - Whole-file reads and atomic writes ------------------------===//

#ifndef NIBBLE_SUPPORT_FILE_H
#define NIBBLE_SUPPORT_FILE_H

#include <cstddef>
#include <string>

namespace nibble::support {

/// Reads a whole (small) file into `out`. False and `error` ("cannot open
/// PATH: reason" / "cannot read PATH: reason") on failure.
bool readFile(const std::string &path, std::string &out, std::string &error);

/// Writes `size` bytes to `path` atomically: a temporary file in the same
/// directory, then rename. Nothing is left behind on failure.
bool writeFileAtomic(const std::string &path, const void *data, size_t size,
                     std::string &error);

/// Streams a file to `path` atomically, for outputs too large to build in
/// one buffer: open() creates a temporary file next to `path` (mkstemp in the
/// same directory, so the final rename never crosses file systems), write()
/// appends, commit() fsyncs, closes and renames it over `path` (replacing an
/// existing file only then). Any failure, discard(), or destruction before a
/// successful commit() removes the temporary file: `path` is either the old
/// file (or absent) or the complete new one. Errors name `path`.
class AtomicFileWriter {
public:
  AtomicFileWriter() = default;
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter &) = delete;
  AtomicFileWriter &operator=(const AtomicFileWriter &) = delete;

  bool open(const std::string &path, std::string &error);
  bool write(const void *data, size_t size, std::string &error);
  /// Appends `count` zero bytes.
  bool writeZeros(size_t count, std::string &error);
  bool commit(std::string &error);
  /// Closes and removes the temporary file (no-op when none is open).
  void discard();

  /// Bytes written so far.
  size_t written() const { return written_; }

private:
  std::string path_, tmp_;
  int fd_ = -1;
  size_t written_ = 0;
};

} // namespace nibble::support

#endif // NIBBLE_SUPPORT_FILE_H
