//===- Hash.cpp - SHA-256 through OpenSSL's EVP interface -----------------===//

#include "nibble/Support/Hash.h"

#include <openssl/evp.h>

namespace nibble::support {

std::string sha256Hex(const void *data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, size, digest, &len, EVP_sha256(), nullptr);
  static const char *hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

} // namespace nibble::support
