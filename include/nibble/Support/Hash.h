//===- Hash.h - SHA-256 of data and files (OpenSSL) -----------------------===//

#ifndef NIBBLE_SUPPORT_HASH_H
#define NIBBLE_SUPPORT_HASH_H

#include <cstddef>
#include <string>

namespace nibble::support {

/// Lower-case hex SHA-256 of `size` bytes.
std::string sha256Hex(const void *data, size_t size);

} // namespace nibble::support

#endif // NIBBLE_SUPPORT_HASH_H
