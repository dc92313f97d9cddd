//===- Progress.cpp - Progress of long work on stderr ---------------------===//

#include "nibble/Support/Progress.h"

#include <cstdio>
#include <unistd.h>

namespace nibble::support {

Progress::Progress(std::string label, int64_t total, bool quiet)
    : label_(std::move(label)), total_(total > 0 ? total : 1), quiet_(quiet),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()) {}

static std::string clock(double seconds) {
  long s = long(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

void Progress::update(int64_t done, const std::string &detail) {
  if (quiet_)
    return;
  double elapsed = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start_)
                       .count();
  double frac = double(done) / double(total_);
  std::string eta = done > 0 ? clock(elapsed / frac - elapsed) : "?";
  if (tty_) {
    const int width = 30;
    int filled = int(frac * width);
    std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld ETA %s %s\033[K",
                 label_.c_str(), filled,
                 "##############################", width - filled, "",
                 (long long)done, (long long)total_, eta.c_str(),
                 detail.c_str());
    std::fflush(stderr);
    return;
  }
  int decile = int(frac * 10);
  if (decile != lastDecile_ || done == total_) {
    lastDecile_ = decile;
    std::fprintf(stderr, "%s: %lld/%lld (%s elapsed, ETA %s) %s\n",
                 label_.c_str(), (long long)done, (long long)total_,
                 clock(elapsed).c_str(), eta.c_str(), detail.c_str());
  }
}

void Progress::finish() {
  if (!quiet_ && tty_)
    std::fprintf(stderr, "\n");
}

} // namespace nibble::support
