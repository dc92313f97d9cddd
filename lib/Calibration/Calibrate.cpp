//===- Calibrate.cpp - Run real text through the model, record statistics -===//

#include "nibble/Calibration/Calibrate.h"

#include "nibble/Reference/LlamaReference.h"

#include <map>

namespace nibble::calibration {

std::string linearName(const std::string &weightName) {
  if (weightName == "model.embed_tokens.weight")
    return "lm_head"; // tied: the classifier reads the embedding
  const std::string suffix = ".weight";
  if (weightName.size() > suffix.size() &&
      weightName.compare(weightName.size() - suffix.size(), suffix.size(),
                         suffix) == 0) {
    std::string base = weightName.substr(0, weightName.size() - suffix.size());
    return base;
  }
  return weightName;
}

namespace {

/// Runs every window through a fresh reference with `observer` installed.
bool runWindows(const model::Model &model, const std::vector<int32_t> &tokens,
                const Windows &w, reference::LinearInputObserver observer,
                const std::function<void(int64_t, int64_t)> &progress,
                const std::map<std::string, const float *> &overrides,
                std::string &error) {
  const model::LlamaConfig &c = model.config();
  if (w.firstToken < 0 || w.sequences <= 0 || w.seqLen <= 0) {
    error = "calibration windows need firstToken >= 0 and positive sequence "
            "count and length";
    return false;
  }
  if (w.endToken() > int64_t(tokens.size())) {
    error = "calibration windows need tokens [" + std::to_string(w.firstToken) +
            ", " + std::to_string(w.endToken()) + ") but the text has " +
            std::to_string(tokens.size()) + " tokens";
    return false;
  }
  const int64_t bos = c.bosId >= 0 ? 1 : 0;
  if (w.seqLen + bos > c.maxSeqLen) {
    error = "sequence length " + std::to_string(w.seqLen) +
            " exceeds the model's context of " + std::to_string(c.maxSeqLen);
    return false;
  }
  reference::LlamaReference ref(model, w.seqLen + bos);
  ref.setObserver(std::move(observer));
  for (const auto &[name, weights] : overrides)
    if (!ref.overrideLinear(name, weights)) {
      error = "no linear named " + name + " to override";
      return false;
    }
  for (int64_t s = 0; s < w.sequences; ++s) {
    ref.reset();
    std::vector<int32_t> window;
    if (bos)
      window.push_back(c.bosId);
    auto begin = tokens.begin() + w.firstToken + s * w.seqLen;
    window.insert(window.end(), begin, begin + w.seqLen);
    if (!ref.prefill(window, nullptr, error))
      return false;
    if (progress)
      progress(s + 1, w.sequences);
  }
  return true;
}

} // namespace

bool calibrate(const model::Model &model, const std::vector<int32_t> &tokens,
               const CalibrationOptions &options, quant::StatsFile &stats,
               std::string &error) {
  // The reference produces one row per linear per token; rows are batched
  // so that the Hessian update is a rank-64 BLAS syrk, not rank-1.
  constexpr int64_t kBatch = 64;
  struct Pending {
    std::vector<float> rows;
    int64_t k = 0;
  };
  std::map<std::string, Pending> pending;
  auto flush = [&](const std::string &name, Pending &p) {
    if (p.rows.empty())
      return;
    stats.layer(name, p.k, options.hessians)
        .add(p.rows.data(), int64_t(p.rows.size()) / p.k);
    p.rows.clear();
  };
  auto observer = [&](const std::string &weightName, const float *x,
                      int64_t k) {
    std::string name = linearName(weightName);
    if (options.filter && !options.filter(name))
      return;
    Pending &p = pending[name];
    p.k = k;
    p.rows.insert(p.rows.end(), x, x + k);
    if (int64_t(p.rows.size()) >= kBatch * k)
      flush(name, p);
  };
  bool ok = runWindows(model, tokens, options.windows, observer,
                       options.progress, options.overrides, error);
  for (auto &[name, p] : pending)
    flush(name, p);
  return ok;
}

bool collectInputs(const model::Model &model,
                   const std::vector<int32_t> &tokens, const Windows &windows,
                   const std::function<bool(const std::string &)> &filter,
                   std::map<std::string, std::vector<float>> &inputs,
                   std::string &error) {
  auto observer = [&](const std::string &weightName, const float *x,
                      int64_t k) {
    std::string name = linearName(weightName);
    if (filter && !filter(name))
      return;
    auto &v = inputs[name];
    v.insert(v.end(), x, x + k);
  };
  return runWindows(model, tokens, windows, observer, nullptr, {}, error);
}

} // namespace nibble::calibration
