//===- ThreadPoolTest.cpp - Row ranges over the runtime's workers ---------===//

#include "nibble/Runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

using nibble::runtime::ThreadPool;

namespace {

// Every index is covered exactly once, ranges are aligned, and a pool is
// reusable many times in a row (the decode pattern), for several sizes.
TEST(ThreadPoolTest, ParallelForCoversEachRowOnce) {
  for (unsigned threads : {1u, 2u, 3u, 5u}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(64),
                      int64_t(1000)})
      for (int rep = 0; rep < 50; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> ranges{0};
        pool.parallelFor(n, 8, [&](int64_t b, int64_t e) {
          EXPECT_LT(b, e);
          EXPECT_EQ(b % 8, 0) << "range start not aligned";
          ranges.fetch_add(1);
          for (int64_t i = b; i < e; ++i)
            hits[size_t(i)].fetch_add(1);
        });
        EXPECT_LE(ranges.load(), int(threads));
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1)
              << "row " << i << " of " << n << " with " << threads
              << " threads";
      }
  }
}

// Work runs on size() distinct threads, one of them the caller.
TEST(ThreadPoolTest, RunsOnDistinctThreadsIncludingTheCaller) {
  ThreadPool pool(3);
  std::mutex m;
  std::set<std::thread::id> ids;
  std::atomic<int> arrived{0};
  pool.run([&](unsigned) {
    {
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    }
    // Hold every worker until all have arrived: distinct threads.
    arrived.fetch_add(1);
    while (arrived.load() < 3)
      std::this_thread::yield();
  });
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);
}

// Workers that went to sleep (idle past the spin) still wake for work.
TEST(ThreadPoolTest, WakesSleepingWorkers) {
  ThreadPool pool(2);
  for (int rep = 0; rep < 3; ++rep) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::atomic<int> ran{0};
    pool.run([&](unsigned) { ran.fetch_add(1); });
    EXPECT_EQ(ran.load(), 2);
  }
}

} // namespace
