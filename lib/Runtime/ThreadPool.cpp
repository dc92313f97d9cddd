//===- ThreadPool.cpp - The runtime's worker threads ----------------------===//

#include "nibble/Runtime/ThreadPool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NIBBLE_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define NIBBLE_CPU_RELAX() asm volatile("yield")
#else
#define NIBBLE_CPU_RELAX() ((void)0)
#endif

namespace nibble::runtime {

namespace {
/// How long an idle worker spins before it sleeps: long enough to cover
/// the gap between two kernels of one decode step.
constexpr auto kSpin = std::chrono::microseconds(200);
} // namespace

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < threads; ++i)
    workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::workerLoop(unsigned id) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    auto start = std::chrono::steady_clock::now();
    for (unsigned spins = 0; g == seen; ++spins) {
      NIBBLE_CPU_RELAX();
      if ((spins & 255) == 255 &&
          std::chrono::steady_clock::now() - start > kSpin) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] {
          return generation_.load(std::memory_order_acquire) != seen;
        });
      }
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_relaxed))
      return;
    (*job_)(id);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(unsigned)> &fn) {
  if (workers_.empty()) {
    fn(0);
    return;
  }
  job_ = &fn;
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  {
    // Under the lock so a worker between its check and its wait cannot
    // miss the change.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  fn(0);
  while (pending_.load(std::memory_order_acquire) != 0)
    NIBBLE_CPU_RELAX();
}

void ThreadPool::parallelFor(int64_t n, int64_t align,
                             const std::function<void(int64_t, int64_t)> &fn) {
  const int64_t t = size();
  const int64_t units = (n + align - 1) / align;
  run([&](unsigned w) {
    int64_t b = std::min(n, units * w / t * align);
    int64_t e = std::min(n, units * (w + 1) / t * align);
    if (b < e)
      fn(b, e);
  });
}

} // namespace nibble::runtime
