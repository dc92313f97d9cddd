//===- Probes.cpp - Calibration through compiled IR -----------------------===//

#include "nibble/Calibration/Probes.h"

#include <cstdio>
#include <string>

namespace nibble::calibration {

namespace {
ProbeRecorder *active = nullptr;
} // namespace

ProbeRecorder::ProbeRecorder(quant::StatsFile &stats,
                             std::vector<std::string> names, bool hessians)
    : stats_(stats), names_(std::move(names)), hessians_(hessians) {}

void ProbeRecorder::record(int64_t id, const float *x, int64_t rows,
                           int64_t k) {
  ++calls_;
  if (!error_.empty())
    return;
  if (id < 0 || id >= int64_t(names_.size())) {
    error_ = "probe id " + std::to_string(id) + " is not in nibble.probes (" +
             std::to_string(names_.size()) + " names)";
    return;
  }
  const std::string &name = names_[size_t(id)];
  if (const quant::LinearStats *s = stats_.find(name); s && s->k() != k) {
    error_ = "probe '" + name + "' observed " + std::to_string(k) +
             " channels after " + std::to_string(s->k());
    return;
  }
  stats_.layer(name, k, hessians_).add(x, rows);
}

void setActiveProbeRecorder(ProbeRecorder *r) { active = r; }

} // namespace nibble::calibration

extern "C" void nibble_observe_f32(int64_t id, int64_t rank,
                                   void *descriptor) {
  using nibble::calibration::active;
  if (!active) {
    static bool warned = false;
    if (!warned)
      std::fprintf(stderr, "nibble_observe_f32: no active probe recorder; "
                           "observations are dropped\n");
    warned = true;
    return;
  }
  // {allocated, aligned, offset, sizes[rank], strides[rank]}
  struct Header {
    float *allocated, *aligned;
    int64_t offset;
  };
  auto *h = static_cast<Header *>(descriptor);
  auto *dims = reinterpret_cast<int64_t *>(h + 1);
  const float *base = h->aligned + h->offset;
  if (rank == 1) {
    const int64_t k = dims[0], stride = dims[1];
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j)
      row[size_t(j)] = base[j * stride];
    active->record(id, row.data(), 1, k);
  } else if (rank == 2) {
    const int64_t t = dims[0], k = dims[1], s0 = dims[2], s1 = dims[3];
    if (s1 == 1 && s0 == k) {
      active->record(id, base, t, k);
      return;
    }
    std::vector<float> rows(static_cast<size_t>(t * k));
    for (int64_t i = 0; i < t; ++i)
      for (int64_t j = 0; j < k; ++j)
        rows[size_t(i * k + j)] = base[i * s0 + j * s1];
    active->record(id, rows.data(), t, k);
  } else {
    active->fail("probe " + std::to_string(id) + " observed a rank-" +
                 std::to_string(rank) + " tensor (expected [tokens, k] or [k])");
  }
}
