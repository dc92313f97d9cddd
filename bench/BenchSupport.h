//===- BenchSupport.h - Shared pieces of the kernel benchmarks ------------===//

#ifndef NIBBLE_BENCH_BENCHSUPPORT_H
#define NIBBLE_BENCH_BENCHSUPPORT_H

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nibble::bench {

/// Whether hugeAlloc asks for transparent huge pages: yes unless the
/// environment sets NIBBLE_BENCH_HUGE_PAGES=0 (for the A/B in
/// docs/performance.md).
inline bool hugePagesWanted() {
  const char *v = std::getenv("NIBBLE_BENCH_HUGE_PAGES");
  return !(v && std::strcmp(v, "0") == 0);
}

/// Zero-initialised 2 MiB-aligned memory (free with std::free), advised
/// for transparent huge pages (or, with NIBBLE_BENCH_HUGE_PAGES=0, against
/// them): cold weight streams then take no TLB miss per 4 KiB page, and
/// the hardware prefetcher, which stops at 4 KiB boundaries, runs on.
inline void *hugeAlloc(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  bytes = (bytes + kHuge - 1) / kHuge * kHuge;
  void *p = std::aligned_alloc(kHuge, bytes);
  if (!p)
    std::abort();
  madvise(p, bytes, hugePagesWanted() ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  std::memset(p, 0, bytes);
  return p;
}

/// MiB of this process's anonymous memory in transparent huge pages
/// (AnonHugePages of /proc/self/smaps_rollup; -1 when unreadable): shows
/// whether the kernel granted what hugeAlloc asked for.
inline double anonHugeMiB() {
  std::FILE *f = std::fopen("/proc/self/smaps_rollup", "r");
  if (!f)
    return -1;
  char line[256];
  double kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "AnonHugePages: %lf kB", &kb) == 1)
      break;
  std::fclose(f);
  return kb < 0 ? -1 : kb / 1024.0;
}

/// Sum of n values with 64 independent accumulators (several vector
/// registers' worth, no reassociation needed): a loop bound by its loads,
/// not by the latency of one add chain. The read probes: the including
/// file must be compiled for the machine's vector width (-march=native) to
/// stream at the machine's read bandwidth. Over packed weights, use
/// uint32_t (no floating-point assists on whatever bits are read).
template <typename T> T sumRange(const T *p, size_t n) {
  constexpr int kAcc = 64;
  T a[kAcc] = {};
  size_t i = 0;
  for (; i + kAcc <= n; i += kAcc)
    for (int j = 0; j < kAcc; ++j)
      a[j] += p[i + j];
  for (; i < n; ++i)
    a[0] += p[i];
  T s = 0;
  for (T v : a)
    s += v;
  return s;
}

} // namespace nibble::bench

#endif // NIBBLE_BENCH_BENCHSUPPORT_H
