//===- Strings.h - Small string helpers -----------------------------------===//

#ifndef NIBBLE_SUPPORT_STRINGS_H
#define NIBBLE_SUPPORT_STRINGS_H

#include <string>

namespace nibble::support {

/// `s` without leading and trailing spaces, tabs, CRs and newlines.
std::string trim(const std::string &s);

} // namespace nibble::support

#endif // NIBBLE_SUPPORT_STRINGS_H
