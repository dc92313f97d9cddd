//===- Sensitivity.h - What quantizing layers does to the model's output --===//
//
// The float model's next-token distributions over a slice of text, kept so
// that any set of replaced linears (quantized, then dequantized to f32) can
// be scored against them: mean KL(float || variant) per token, the change
// of mean negative log-likelihood (log perplexity), and top-1 agreement.
// Scoring one linear at a time for each candidate format gives the
// per-layer sensitivities the budget allocator works with
// (nibble/Quant/BitAllocation.h); scoring the chosen mix on a disjoint
// slice checks the result.
//
// Windows are those of calibration (BOS, then seqLen tokens of the text);
// the positions predicting the seqLen text tokens are scored. Memory: one
// f32 log-probability row per scored token (sequences x seqLen x vocab).
// Plain C++ over the reference forward pass.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_CALIBRATION_SENSITIVITY_H
#define NIBBLE_CALIBRATION_SENSITIVITY_H

#include "nibble/Calibration/Calibrate.h"
#include "nibble/Calibration/LayerError.h"
#include "nibble/Model/Model.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nibble::reference {
class LlamaReference;
} // namespace nibble::reference

namespace nibble::calibration {

struct OutputChange {
  double kl = 0;       ///< mean KL(float || variant), nats per token
  double deltaNll = 0; ///< mean NLL(variant) - mean NLL(float), nats/token
  double top1 = 0;     ///< fraction of tokens whose argmax agrees
  int64_t tokens = 0;  ///< tokens scored
};

class FloatBaseline {
public:
  /// Runs the float model over `windows` of `tokens`.
  static std::optional<FloatBaseline>
  compute(const model::Model &model, const std::vector<int32_t> &tokens,
          const Windows &windows, std::string &error);

  /// Runs the model with `overrides` (linear name -> f32 [out, in]
  /// weights) over the same windows and compares it with the float run.
  std::optional<OutputChange>
  evaluate(const std::map<std::string, const float *> &overrides,
           std::string &error) const;
  /// The same on a reference made by makeReference() (reused across calls:
  /// no reallocation of its cache, no re-widening of f16 weights); the
  /// overrides are undone afterwards.
  std::optional<OutputChange>
  evaluate(reference::LlamaReference &ref,
           const std::map<std::string, const float *> &overrides,
           std::string &error) const;
  /// A reference sized for these windows.
  std::unique_ptr<reference::LlamaReference> makeReference() const;

  double meanNll() const { return meanNll_; }
  const Windows &windows() const { return windows_; }

private:
  FloatBaseline(const model::Model &model, std::vector<int32_t> tokens,
                Windows windows)
      : model_(&model), tokens_(std::move(tokens)), windows_(windows) {}
  /// BOS + the window's tokens.
  std::vector<int32_t> window(int64_t s) const;
  /// Runs every window through `ref` and calls fn(index of the scored
  /// token, its logits row, the token it predicts) for each scored token.
  bool forEachScored(
      reference::LlamaReference &ref, std::string &error,
      const std::function<void(int64_t, const float *, int32_t)> &fn) const;

  const model::Model *model_;
  std::vector<int32_t> tokens_; ///< only the slice the windows cover
  Windows windows_;             ///< firstToken relative to tokens_
  int64_t vocab_ = 0;
  std::vector<float> logProbs_; ///< scored tokens x vocab
  std::vector<int32_t> argmax_;
  double meanNll_ = 0;
};

/// A candidate scheme for every layer: a format, group and scale storage,
/// rounded with one method.
struct Candidate {
  std::string label; ///< e.g. "int4/g32"
  MethodSpec spec;
  bool keepFloat = false; ///< "f32": the layer stays float (4 bytes/weight)
};

struct LayerSensitivity {
  std::string name; ///< "model.layers.0.mlp.down_proj", "lm_head"
  int64_t rows = 0, cols = 0;
  /// Per candidate (same order): whether it applies (the group divides the
  /// columns), the stored bytes (codes, scales, zero points), the
  /// relative weight error and the output change with only this layer
  /// quantized.
  std::vector<bool> applies;
  std::vector<double> bytes;
  std::vector<OutputChange> change;
};

/// Bytes a scheme stores for a rows x cols matrix
/// (quant::storedBitsPerWeight times the weights, over 8).
double storedBytes(const quant::WeightScheme &scheme, int64_t rows,
                   int64_t cols, unsigned codeBits = 0);

/// Scores every (linear, candidate) pair with only that linear quantized
/// (the others float). `stats` supplies what the method needs (may be null
/// for RTN). Work is spread over `threads` threads; `progress(done, total)`
/// is called from one of them at a time.
bool measureSensitivity(const model::Model &model,
                        const FloatBaseline &baseline,
                        const std::vector<std::string> &linears,
                        const std::vector<Candidate> &candidates,
                        const quant::StatsFile *stats, int threads,
                        std::vector<LayerSensitivity> &result,
                        std::string &error,
                        const std::function<void(int64_t, int64_t)> &progress =
                            {});

} // namespace nibble::calibration

#endif // NIBBLE_CALIBRATION_SENSITIVITY_H
