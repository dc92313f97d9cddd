//===- Sensitivity.cpp - Output change of quantized linears ---------------===//

#include "nibble/Calibration/Sensitivity.h"

#include "nibble/Formats/Packing.h"
#include "nibble/Reference/LlamaReference.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>

namespace nibble::calibration {

namespace {

/// log-softmax of one row into `out` (f64 sums).
void logSoftmax(const float *logits, int64_t n, float *out) {
  float mx = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    sum += std::exp(double(logits[i] - mx));
  const double lse = double(mx) + std::log(sum);
  for (int64_t i = 0; i < n; ++i)
    out[i] = float(double(logits[i]) - lse);
}

bool checkWindows(const model::Model &model, const std::vector<int32_t> &tokens,
                  const Windows &w, std::string &error) {
  if (w.firstToken < 0 || w.sequences <= 0 || w.seqLen <= 0) {
    error = "windows need firstToken >= 0 and positive sequence count and "
            "length";
    return false;
  }
  if (w.endToken() > int64_t(tokens.size())) {
    error = "windows need tokens [" + std::to_string(w.firstToken) + ", " +
            std::to_string(w.endToken()) + ") but the text has " +
            std::to_string(tokens.size()) + " tokens";
    return false;
  }
  if (w.seqLen + 1 > model.config().maxSeqLen) {
    error = "sequence length " + std::to_string(w.seqLen) +
            " (plus BOS) exceeds the model's context of " +
            std::to_string(model.config().maxSeqLen);
    return false;
  }
  return true;
}

} // namespace

std::vector<int32_t> FloatBaseline::window(int64_t s) const {
  std::vector<int32_t> win;
  if (model_->config().bosId >= 0)
    win.push_back(model_->config().bosId);
  auto begin = tokens_.begin() + windows_.firstToken + s * windows_.seqLen;
  win.insert(win.end(), begin, begin + windows_.seqLen);
  return win;
}

std::optional<FloatBaseline>
FloatBaseline::compute(const model::Model &model,
                       const std::vector<int32_t> &tokens,
                       const Windows &windows, std::string &error) {
  if (!checkWindows(model, tokens, windows, error))
    return std::nullopt;
  Windows local = windows;
  local.firstToken = 0;
  FloatBaseline b(model,
                  std::vector<int32_t>(tokens.begin() + windows.firstToken,
                                       tokens.begin() + windows.endToken()),
                  local);
  const int64_t V = model.config().vocabSize;
  const int64_t T = windows.seqLen;
  b.vocab_ = V;
  b.logProbs_.resize(size_t(windows.sequences * T * V));
  b.argmax_.resize(size_t(windows.sequences * T));
  reference::LlamaReference ref(model, T + 1);
  double nll = 0;
  int64_t scored = 0;
  if (!b.forEachScored(ref, error,
                       [&](int64_t i, const float *logits, int32_t next) {
                         float *lp = b.logProbs_.data() + i * V;
                         logSoftmax(logits, V, lp);
                         b.argmax_[size_t(i)] =
                             int32_t(std::max_element(lp, lp + V) - lp);
                         nll -= lp[next];
                         ++scored;
                       }))
    return std::nullopt;
  b.meanNll_ = nll / double(std::max<int64_t>(1, scored));
  return b;
}

bool FloatBaseline::forEachScored(
    reference::LlamaReference &ref, std::string &error,
    const std::function<void(int64_t, const float *, int32_t)> &fn) const {
  const int64_t T = windows_.seqLen, V = model_->config().vocabSize;
  std::vector<float> logits;
  for (int64_t s = 0; s < windows_.sequences; ++s) {
    std::vector<int32_t> win = window(s);
    const int64_t off = int64_t(win.size()) - T; // 1 with BOS
    ref.reset();
    if (!ref.prefill(win, &logits, error))
      return false;
    // Row p predicts win[p + 1]; score the rows predicting text tokens
    // (without BOS the first token is not predicted).
    for (int64_t t = 0; t < T; ++t)
      if (const int64_t row = t + off - 1; row >= 0)
        fn(s * T + t, logits.data() + row * V, win[size_t(row + 1)]);
  }
  return true;
}

std::unique_ptr<reference::LlamaReference>
FloatBaseline::makeReference() const {
  return std::make_unique<reference::LlamaReference>(*model_,
                                                     windows_.seqLen + 1);
}

std::optional<OutputChange>
FloatBaseline::evaluate(const std::map<std::string, const float *> &overrides,
                        std::string &error) const {
  return evaluate(*makeReference(), overrides, error);
}

std::optional<OutputChange>
FloatBaseline::evaluate(reference::LlamaReference &ref,
                        const std::map<std::string, const float *> &overrides,
                        std::string &error) const {
  const int64_t V = vocab_;
  struct Restore { // the checkpoint's weights again, however this returns
    reference::LlamaReference &ref;
    const std::map<std::string, const float *> &names;
    ~Restore() {
      for (const auto &entry : names)
        ref.overrideLinear(entry.first, nullptr);
    }
  } restore{ref, overrides};
  for (const auto &[name, w] : overrides)
    if (!ref.overrideLinear(name, w)) {
      error = "no linear named " + name;
      return std::nullopt;
    }
  OutputChange c;
  double kl = 0, nll = 0;
  int64_t agree = 0;
  std::vector<float> lq(static_cast<size_t>(V));
  if (!forEachScored(ref, error, [&](int64_t at, const float *logits,
                                     int32_t next) {
        logSoftmax(logits, V, lq.data());
        const float *lp = logProbs_.data() + at * V;
        double k = 0;
        for (int64_t i = 0; i < V; ++i)
          k += std::exp(double(lp[i])) * (double(lp[i]) - double(lq[i]));
        kl += std::max(0.0, k);
        nll -= lq[size_t(next)];
        agree += int32_t(std::max_element(lq.begin(), lq.end()) -
                         lq.begin()) == argmax_[size_t(at)];
        ++c.tokens;
      }))
    return std::nullopt;
  c.kl = kl / double(c.tokens);
  c.deltaNll = nll / double(c.tokens) - meanNll_;
  c.top1 = double(agree) / double(c.tokens);
  return c;
}

double storedBytes(const quant::WeightScheme &scheme, int64_t rows,
                   int64_t cols, unsigned codeBits) {
  return quant::storedBitsPerWeight(scheme, rows, cols, codeBits) *
         double(rows) * double(cols) / 8.0;
}

bool measureSensitivity(const model::Model &model,
                        const FloatBaseline &baseline,
                        const std::vector<std::string> &linears,
                        const std::vector<Candidate> &candidates,
                        const quant::StatsFile *stats, int threads,
                        std::vector<LayerSensitivity> &result,
                        std::string &error,
                        const std::function<void(int64_t, int64_t)> &progress) {
  result.assign(linears.size(), {});
  std::vector<std::vector<float>> weights(linears.size());
  for (size_t l = 0; l < linears.size(); ++l) {
    const model::TensorView *t = linearWeight(model, linears[l]);
    if (!t || !t->toFloat(weights[l])) {
      error = linears[l] + ": no readable weight";
      return false;
    }
    LayerSensitivity &r = result[l];
    r.name = linears[l];
    r.rows = t->shape[0];
    r.cols = t->shape[1];
    r.applies.assign(candidates.size(), false);
    r.bytes.assign(candidates.size(), 0.0);
    r.change.assign(candidates.size(), {});
    for (size_t c = 0; c < candidates.size(); ++c) {
      const quant::WeightScheme &s = candidates[c].spec.scheme;
      if (candidates[c].keepFloat) {
        r.applies[c] = true;
        r.bytes[c] = 4.0 * double(r.rows) * double(r.cols);
        r.change[c].top1 = 1.0; // the float model itself
        continue;
      }
      r.applies[c] = s.groupSize == 0 || r.cols % s.groupSize == 0;
      r.bytes[c] = storedBytes(s, r.rows, r.cols);
    }
  }
  // One job per (layer, candidate) that applies.
  std::vector<std::pair<size_t, size_t>> jobs;
  for (size_t l = 0; l < linears.size(); ++l)
    for (size_t c = 0; c < candidates.size(); ++c)
      if (result[l].applies[c] && !candidates[c].keepFloat)
        jobs.push_back({l, c});
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::string firstError;
  auto worker = [&] {
    std::unique_ptr<reference::LlamaReference> ref = baseline.makeReference();
    while (true) {
      size_t j = next.fetch_add(1);
      if (j >= jobs.size())
        return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!firstError.empty())
          return;
      }
      auto [l, c] = jobs[j];
      const LayerSensitivity &r = result[l];
      std::string err;
      const quant::LinearStats *ls = stats ? stats->find(r.name) : nullptr;
      auto eff = effectiveWeights(candidates[c].spec,
                                  {weights[l].data(), r.rows, r.cols}, ls,
                                  err);
      std::optional<OutputChange> ch;
      if (eff)
        ch = baseline.evaluate(*ref, {{r.name, eff->data()}}, err);
      std::lock_guard<std::mutex> lock(mu);
      if (!ch) {
        if (firstError.empty())
          firstError = r.name + " (" + candidates[c].label + "): " + err;
        return;
      }
      result[l].change[c] = *ch;
      int64_t d = ++done;
      if (progress)
        progress(d, int64_t(jobs.size()));
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t)
    pool.emplace_back(worker);
  worker();
  for (std::thread &t : pool)
    t.join();
  if (!firstError.empty()) {
    error = firstError;
    return false;
  }
  return true;
}

} // namespace nibble::calibration
