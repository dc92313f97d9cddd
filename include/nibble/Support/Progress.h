//===- Progress.h - Progress of long work on stderr -----------------------===//
//
// On a terminal: one line redrawn in place, "label [#####     ] 12/40 ETA
// 0:31". Otherwise (logs, CI): a plain line at each 10% step and at the end,
// so logs stay readable.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_SUPPORT_PROGRESS_H
#define NIBBLE_SUPPORT_PROGRESS_H

#include <chrono>
#include <cstdint>
#include <string>

namespace nibble::support {

class Progress {
public:
  Progress(std::string label, int64_t total, bool quiet = false);
  /// Reports `done` of `total` items finished (monotonic).
  void update(int64_t done, const std::string &detail = "");
  /// Ends the line on a terminal.
  void finish();

private:
  std::string label_;
  int64_t total_;
  bool quiet_, tty_;
  int lastDecile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

} // namespace nibble::support

#endif // NIBBLE_SUPPORT_PROGRESS_H
