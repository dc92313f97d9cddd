//===- BenchSupport.h - Shared pieces of the kernel benchmarks ------------===//

#ifndef NIBBLE_BENCH_BENCHSUPPORT_H
#define NIBBLE_BENCH_BENCHSUPPORT_H

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

namespace nibble::bench {

/// Zero-initialised 2 MiB-aligned memory (free with std::free), advised
/// for transparent huge pages: cold weight streams then take no TLB misses
/// per 4 KiB page.
inline void *hugeAlloc(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  bytes = (bytes + kHuge - 1) / kHuge * kHuge;
  void *p = std::aligned_alloc(kHuge, bytes);
  if (!p)
    std::abort();
  madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
  return p;
}

} // namespace nibble::bench

#endif // NIBBLE_BENCH_BENCHSUPPORT_H
