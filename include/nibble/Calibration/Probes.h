//===- Probes.h - Calibration through compiled IR -------------------------===//
//
// `nibble-insert-probes` puts `nibble.observe "NAME" %x` on the input of
// every linear; lowered with `probes=call`, each becomes a call
//
//   nibble_observe_f32(int64 id, tensor<*xf32> x)
//
// whose id indexes the module attribute `nibble.probes` (the names). This
// is the host side: the C symbol forwards each call to the active
// ProbeRecorder, which accumulates the same statistics file quant-calibrate
// writes from the C++ reference. Rows of a rank-2 input [T, k] are tokens;
// a rank-1 input is one token.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_CALIBRATION_PROBES_H
#define NIBBLE_CALIBRATION_PROBES_H

#include "nibble/Quant/Stats.h"

#include <cstdint>
#include <string>
#include <vector>

namespace nibble::calibration {

class ProbeRecorder {
public:
  /// `names[id]` is the layer of probe id (the module's nibble.probes).
  ProbeRecorder(quant::StatsFile &stats, std::vector<std::string> names,
                bool hessians = true);
  /// Adds `rows` rows of `k` contiguous floats observed by probe `id`.
  void record(int64_t id, const float *x, int64_t rows, int64_t k);
  /// Records a problem found by the caller (the first one is kept).
  void fail(const std::string &message) {
    if (error_.empty())
      error_ = message;
  }
  /// The first problem met (unknown id, unsupported rank, k changing), or
  /// empty. Calls after an error are ignored.
  const std::string &error() const { return error_; }
  int64_t calls() const { return calls_; }

private:
  quant::StatsFile &stats_;
  std::vector<std::string> names_;
  bool hessians_;
  std::string error_;
  int64_t calls_ = 0;
};

/// Makes `r` receive nibble_observe_f32 calls (null: calls are errors
/// reported on stderr once). Not thread-safe: one recorder at a time.
void setActiveProbeRecorder(ProbeRecorder *r);

} // namespace nibble::calibration

/// The symbol compiled probes call (MLIR's C calling convention for an
/// unranked memref: rank, then a pointer to the ranked descriptor).
extern "C" void nibble_observe_f32(int64_t id, int64_t rank,
                                   void *descriptor);

#endif // NIBBLE_CALIBRATION_PROBES_H
