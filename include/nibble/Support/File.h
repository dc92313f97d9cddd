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

} // namespace nibble::support

#endif // NIBBLE_SUPPORT_FILE_H
