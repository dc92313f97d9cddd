// libFuzzer target: the bundle container reader (nibble::bundle::Bundle).
//
// Random bytes almost never carry valid SHA-256 checksums, so each input is
// also tried with its checksums recomputed (every in-bounds section's, then
// the header's): mutations then reach the structural checks and the accepting
// path. An accepted bundle must describe in-bounds, aligned, non-overlapping
// sections that the writer accepts and reproduces.
#include "nibble/Bundle/Bundle.h"
#include "nibble/Support/Hash.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using nibble::bundle::Bundle;
using nibble::bundle::BundleWriter;

namespace {

uint64_t get(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

void sha256Raw(const uint8_t *data, size_t size, uint8_t *out) {
  std::string hex = nibble::support::sha256Hex(data, size);
  for (size_t i = 0; i < 32; ++i)
    out[i] = uint8_t(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
}

/// The input with its checksums made consistent (docs/bundle.md layout).
std::vector<uint8_t> fixChecksums(const uint8_t *data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  if (size < 64)
    return b;
  uint64_t count = get(b.data() + 12, 4), table = get(b.data() + 16, 8);
  if (table > size || count > (size - table) / 88)
    return b;
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t *e = b.data() + table + i * 88;
    uint64_t off = get(e + 32, 8), len = get(e + 40, 8);
    if (off <= size && len <= size - off)
      sha256Raw(b.data() + off, size_t(len), e + 56);
  }
  std::vector<uint8_t> covered(b.begin(), b.begin() + 32);
  covered.insert(covered.end(), b.begin() + table,
                 b.begin() + table + count * 88);
  sha256Raw(covered.data(), covered.size(), b.data() + 32);
  return b;
}

void check(const uint8_t *data, size_t size) {
  std::string error;
  auto b = Bundle::fromMemory("fuzz.nbl", data, size, error);
  if (!b) {
    if (error.rfind("fuzz.nbl: ", 0) != 0)
      std::abort(); // every rejection names the file and says why
    return;
  }
  // Accepted: sections lie in the file, aligned, after the header, disjoint.
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  BundleWriter rewrite;
  for (const auto &s : b->sections()) {
    if (s.offset < 64 || s.offset > size || s.size > size - s.offset ||
        s.alignment == 0 || s.offset % s.alignment != 0 || !b->has(s.name) ||
        b->sectionSize(s.name) != s.size || b->section(s.name).size() != s.size)
      std::abort();
    if (s.size)
      spans.push_back({s.offset, s.offset + s.size});
    if (!rewrite.addView(s.name, b->section(s.name), error, s.alignment))
      std::abort(); // the writer accepts whatever the reader accepted
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second)
      std::abort();
  // Written again, the same sections read back unchanged.
  std::string bytes = rewrite.bytes();
  auto again = Bundle::fromMemory(
      "rewrite.nbl", reinterpret_cast<const uint8_t *>(bytes.data()),
      bytes.size(), error);
  if (!again || again->sectionNames() != b->sectionNames())
    std::abort();
  for (const auto &name : b->sectionNames())
    if (again->section(name) != b->section(name))
      std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check(data, size);
  std::vector<uint8_t> fixed = fixChecksums(data, size);
  if (!fixed.empty() && std::memcmp(fixed.data(), data, size) != 0)
    check(fixed.data(), fixed.size());
  return 0;
}
