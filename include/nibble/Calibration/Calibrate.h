//===- Calibrate.h - Run real text through the model, record statistics ---===//
//
// Calibration feeds token windows through the float reference
// (nibble/Reference/LlamaReference.h, whose numerics the float IR
// reproduces bit for bit) and records, for the input of every linear layer,
// the statistics of nibble/Quant/Stats.h under the layer's name (the
// `nibble.linear` name of the float IR: the canonical weight name without
// ".weight"; lm_head is "lm_head").
//
// Windows: the token stream is cut into `sequences` windows of `seqLen`
// tokens starting at token `firstToken`; each window is run from an empty
// KV cache with BOS prepended. Calibration and evaluation use disjoint
// windows of the same text (see docs/calibration.md).
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_CALIBRATION_CALIBRATE_H
#define NIBBLE_CALIBRATION_CALIBRATE_H

#include "nibble/Model/Model.h"
#include "nibble/Quant/Stats.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace nibble::calibration {

struct Windows {
  int64_t firstToken = 0;
  int64_t sequences = 8;
  int64_t seqLen = 128;
  /// Tokens the windows cover: [firstToken, endToken()).
  int64_t endToken() const { return firstToken + sequences * seqLen; }
};

/// The layer name under which statistics of `weightName`'s input are kept.
std::string linearName(const std::string &weightName);

struct CalibrationOptions {
  Windows windows;
  /// Record the GPTQ Hessian X^T X (k^2 doubles per layer).
  bool hessians = true;
  /// Only layers whose name this returns true for (all when empty).
  std::function<bool(const std::string &)> filter;
  /// Called after each window (done, total), e.g. for a progress bar.
  std::function<void(int64_t, int64_t)> progress;
  /// Linears (by name, e.g. "model.layers.0.mlp.up_proj" or "lm_head") run
  /// with these f32 [out, in] weights instead of the checkpoint's: the
  /// already-quantized layers of sequential (block-by-block) calibration.
  std::map<std::string, const float *> overrides;
};

/// Runs the windows of `tokens` and accumulates into `stats`. Fails (with
/// `error`) when the windows run past the tokens or exceed the model's
/// context, or on a token outside the vocabulary.
bool calibrate(const model::Model &model, const std::vector<int32_t> &tokens,
               const CalibrationOptions &options, quant::StatsFile &stats,
               std::string &error);

/// The raw inputs of the chosen layers over the windows (row-major [t, k]),
/// for measuring layer output error on held-out text.
bool collectInputs(const model::Model &model,
                   const std::vector<int32_t> &tokens, const Windows &windows,
                   const std::function<bool(const std::string &)> &filter,
                   std::map<std::string, std::vector<float>> &inputs,
                   std::string &error);

} // namespace nibble::calibration

#endif // NIBBLE_CALIBRATION_CALIBRATE_H
