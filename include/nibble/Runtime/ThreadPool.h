//===- ThreadPool.h - The runtime's worker threads (plain C++) -*- C++ -*-===//
//
// A fixed set of threads that the generated kernels' row ranges are split
// over. The calling thread is worker 0, so a pool of T threads starts T - 1
// and never runs more than T at once (no oversubscription). Decode calls
// kernels thousands of times a second, so idle workers spin briefly on a
// generation counter before sleeping on a condition variable: a run costs
// no thread creation and, while warm, no system call.
//
// Not reentrant: one run at a time, from one thread.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_RUNTIME_THREADPOOL_H
#define NIBBLE_RUNTIME_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nibble::runtime {

class ThreadPool {
public:
  /// `threads` workers in all, the caller included; 0 means one per
  /// hardware thread.
  explicit ThreadPool(unsigned threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  unsigned size() const { return unsigned(workers_.size()) + 1; }

  /// Runs fn(worker) on every worker (the caller is worker 0) and returns
  /// when all have finished.
  void run(const std::function<void(unsigned)> &fn);

  /// Splits [0, n) into size() contiguous ranges whose bounds are
  /// multiples of `align` (except n), one per worker, and runs
  /// fn(begin, end) on each non-empty range.
  void parallelFor(int64_t n, int64_t align,
                   const std::function<void(int64_t, int64_t)> &fn);

private:
  void workerLoop(unsigned id);

  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(unsigned)> *job_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
};

} // namespace nibble::runtime

#endif // NIBBLE_RUNTIME_THREADPOOL_H
