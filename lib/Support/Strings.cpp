//===- Strings.cpp - Small string helpers ---------------------------------===//

#include "nibble/Support/Strings.h"

namespace nibble::support {

std::string trim(const std::string &s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos)
    return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

} // namespace nibble::support
