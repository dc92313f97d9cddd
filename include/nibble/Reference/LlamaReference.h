//===- LlamaReference.h - Plain C++ float forward pass (the oracle) -------===//
//
// The Llama decoder in plain, single-threaded C++ float arithmetic, written
// to be read and checked, not to be fast: token embedding, per layer
// RMSNorm -> q/k/v -> RoPE (interleaved or rotate_half pairing, as the
// model description says) -> grouped-query causal attention over a KV cache
// -> o_proj -> residual -> RMSNorm -> SwiGLU FFN -> residual, then the final
// RMSNorm and lm_head. It is the logits oracle for every backend and the
// source of activations for calibration until compiled code takes over; it
// is not Nibble's inference path.
//
// Numerics are pinned down so compiled code can match them closely: every
// sum is accumulated in float in index order, RMSNorm is
// x * (1 / sqrt(mean(x^2) + eps)) * w, attention scores are dot / sqrt(d),
// softmax subtracts the row max, SiLU is x / (1 + exp(-x)), and RoPE angles
// are float(pos) * inv_freq[i] with inv_freq from
// LlamaConfig::ropeInverseFrequencies().
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_REFERENCE_LLAMAREFERENCE_H
#define NIBBLE_REFERENCE_LLAMAREFERENCE_H

#include "nibble/Formats/Format.h"
#include "nibble/Model/Model.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace nibble::reference {

/// Which linear layer an activation feeds: the canonical weight name (e.g.
/// "model.layers.0.self_attn.q_proj.weight") and the input row.
using LinearInputObserver = std::function<void(
    const std::string &weightName, const float *input, int64_t size)>;

class LlamaReference {
public:
  /// Weights stored as f32 are used in place (no copy); f16/bf16 ones are
  /// widened once. The KV cache holds `maxSeqLen` positions (0: the model's).
  explicit LlamaReference(const model::Model &model, int64_t maxSeqLen = 0);

  const model::LlamaConfig &config() const { return config_; }
  /// Number of positions already in the KV cache.
  int64_t position() const { return pos_; }
  int64_t capacity() const { return maxSeq_; }
  /// Empties the KV cache.
  void reset() { pos_ = 0; }

  /// Runs one token at position position() and returns the logits
  /// (vocabSize floats, valid until the next call). False (and `error`) when
  /// the token is outside the vocabulary or the cache is full.
  bool step(int32_t token, std::vector<float> &logits, std::string &error);

  /// Runs `tokens` from the current position; `allLogits` gets one row of
  /// vocabSize per token (row-major) when non-null.
  bool prefill(const std::vector<int32_t> &tokens,
               std::vector<float> *allLogits, std::string &error);

  /// Quantize the KV cache: each head's key and value row is stored as
  /// decode(encode(x / s)) * s, s = max|x| / maxValue(format) (1 for a zero
  /// row), as the generated step functions do (FloatModelOptions::kvFormat).
  /// Unset (the default): f32 caches.
  void setKVCacheFormat(std::optional<formats::Format> format) {
    kvFormat_ = std::move(format);
  }

  /// Uses `weights` (f32, the linear's [out, in] shape, kept alive by the
  /// caller) for the linear `name` — "model.layers.L.self_attn.q_proj" and
  /// so on, or "lm_head" — instead of the checkpoint's. False for an
  /// unknown name. Null restores the checkpoint's weights. Sequential
  /// calibration runs later layers over already-quantized earlier ones this
  /// way; sensitivity scoring swaps one linear at a time.
  bool overrideLinear(const std::string &name, const float *weights);

  /// Called with the input of every linear layer (calibration probes).
  void setObserver(LinearInputObserver observer) {
    observer_ = std::move(observer);
  }

private:
  struct Layer {
    const float *attnNorm, *wq, *wk, *wv, *wo, *ffnNorm, *wGate, *wUp, *wDown;
  };
  const float *weight(const model::TensorView &t);
  void linear(const std::string &name, const float *w, const float *x,
              float *y, int64_t out, int64_t in) const;
  void rope(float *vec, int64_t heads) const;

  model::LlamaConfig config_;
  int64_t maxSeq_ = 0;
  int64_t pos_ = 0;
  const float *embed_ = nullptr, *finalNorm_ = nullptr, *lmHead_ = nullptr;
  std::vector<Layer> layers_;
  /// The checkpoint's weights, restored by overrideLinear(name, nullptr).
  std::vector<Layer> checkpointLayers_;
  const float *checkpointLmHead_ = nullptr;
  std::vector<std::string> linearNames_; ///< 7 per layer, then lm_head
  std::vector<std::vector<float>> widened_; ///< f16/bf16 weights as f32
  std::vector<float> invFreq_;
  std::vector<float> keyCache_, valueCache_; ///< [layer][pos][kvDim]
  // Scratch buffers.
  std::vector<float> x_, xn_, q_, k_, v_, att_, attOut_, gate_, up_, tmp_;
  LinearInputObserver observer_;
  std::optional<formats::Format> kvFormat_;
};

/// Greedy decoding: feeds `prompt`, then appends argmax tokens until
/// `maxNewTokens` or the EOS id. Returns prompt + generated ids.
std::vector<int32_t> generateGreedy(LlamaReference &ref,
                                    const std::vector<int32_t> &prompt,
                                    int64_t maxNewTokens, std::string &error);

} // namespace nibble::reference

#endif // NIBBLE_REFERENCE_LLAMAREFERENCE_H
