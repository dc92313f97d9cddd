//===- LlamaReference.cpp - Plain C++ float forward pass ------------------===//

#include "nibble/Reference/LlamaReference.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace nibble::reference {

using model::LlamaConfig;
using model::RopePairing;
using model::TensorView;

const float *LlamaReference::weight(const TensorView &t) {
  if (t.dtype == model::DType::F32 &&
      reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
    return reinterpret_cast<const float *>(t.data);
  widened_.emplace_back();
  t.toFloat(widened_.back()); // the loader checked the dtype is a float
  return widened_.back().data();
}

bool LlamaReference::overrideLinear(const std::string &name,
                                    const float *weights) {
  if (name == "lm_head") {
    lmHead_ = weights ? weights : checkpointLmHead_;
    return true;
  }
  // linearNames_ holds 7 names per layer in the order of these members.
  static const float *Layer::*const kSlots[] = {
      &Layer::wq,    &Layer::wk,  &Layer::wv,   &Layer::wo,
      &Layer::wGate, &Layer::wUp, &Layer::wDown};
  const std::string weightName = name + ".weight";
  for (size_t l = 0; l < layers_.size(); ++l)
    for (size_t i = 0; i < 7; ++i)
      if (linearNames_[l * 7 + i] == weightName) {
        layers_[l].*kSlots[i] =
            weights ? weights : checkpointLayers_[l].*kSlots[i];
        return true;
      }
  return false;
}

LlamaReference::LlamaReference(const model::Model &m, int64_t maxSeqLen)
    : config_(m.config()) {
  const LlamaConfig &c = config_;
  maxSeq_ = maxSeqLen > 0 ? maxSeqLen : c.maxSeqLen;
  embed_ = weight(m.get("model.embed_tokens.weight"));
  finalNorm_ = weight(m.get("model.norm.weight"));
  lmHead_ = weight(m.lmHead());
  for (int64_t l = 0; l < c.numLayers; ++l) {
    auto w = [&](const std::string &s) {
      return weight(m.get(model::layerTensorName(l, s.c_str())));
    };
    auto linear = [&](int i) {
      return w(std::string(model::kBlockLinears[i]) + ".weight");
    };
    layers_.push_back({w("input_layernorm.weight"), linear(0), linear(1),
                       linear(2), linear(3), w("post_attention_layernorm.weight"),
                       linear(4), linear(5), linear(6)});
    for (const char *s : model::kBlockLinears)
      linearNames_.push_back(model::layerTensorName(l, s) + ".weight");
  }
  checkpointLayers_ = layers_;
  checkpointLmHead_ = lmHead_;
  linearNames_.push_back(c.tiedEmbeddings ? "model.embed_tokens.weight"
                                          : "lm_head.weight");
  invFreq_ = c.ropeInverseFrequencies();
  keyCache_.assign(size_t(c.numLayers * maxSeq_ * c.kvDim()), 0.0f);
  valueCache_.assign(keyCache_.size(), 0.0f);
  x_.resize(c.dim);
  xn_.resize(c.dim);
  q_.resize(c.qDim());
  k_.resize(c.kvDim());
  v_.resize(c.kvDim());
  att_.resize(maxSeq_);
  attOut_.resize(c.qDim());
  gate_.resize(c.hiddenDim);
  up_.resize(c.hiddenDim);
  tmp_.resize(std::max(c.dim, c.hiddenDim));
}

/// y[o] = sum_i w[o, i] * x[i], w row-major [out, in].
void LlamaReference::linear(const std::string &name, const float *w,
                            const float *x, float *y, int64_t out,
                            int64_t in) const {
  if (observer_)
    observer_(name, x, in);
  for (int64_t o = 0; o < out; ++o) {
    float acc = 0.0f;
    const float *row = w + o * in;
    for (int64_t i = 0; i < in; ++i)
      acc += row[i] * x[i];
    y[o] = acc;
  }
}

/// row <- dequantize(quantize(row, s), s), s = max|row| / maxValue (1 if 0).
static void fakeQuantizeRow(const formats::Format &f, float *row,
                            int64_t n) {
  float absMax = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    absMax = std::max(absMax, std::fabs(row[i]));
  float s = absMax / f.maxValue();
  if (s == 0.0f)
    s = 1.0f;
  for (int64_t i = 0; i < n; ++i)
    row[i] = formats::dequantizeScalar(f, formats::quantizeScalar(f, row[i], s),
                                       s);
}

static void rmsNorm(const float *x, const float *w, float *out, int64_t n,
                    float eps) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    ss += x[i] * x[i];
  float scale = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i)
    out[i] = (x[i] * scale) * w[i];
}

/// Rotates every head of `vec` ([heads, head_dim]) by the angles of the
/// current position.
void LlamaReference::rope(float *vec, int64_t heads) const {
  const int64_t hd = config_.headDim, half = hd / 2;
  for (int64_t i = 0; i < half; ++i) {
    float angle = float(pos_) * invFreq_[i];
    float c = std::cos(angle), s = std::sin(angle);
    for (int64_t h = 0; h < heads; ++h) {
      float *head = vec + h * hd;
      int64_t a = config_.ropePairing == RopePairing::Interleaved ? 2 * i : i;
      int64_t b = config_.ropePairing == RopePairing::Interleaved ? 2 * i + 1
                                                                  : i + half;
      float x0 = head[a], x1 = head[b];
      head[a] = x0 * c - x1 * s;
      head[b] = x1 * c + x0 * s;
    }
  }
}

bool LlamaReference::step(int32_t token, std::vector<float> &logits,
                          std::string &error) {
  const LlamaConfig &c = config_;
  if (token < 0 || token >= c.vocabSize) {
    error = "token id " + std::to_string(token) + " is outside the vocabulary (" +
            std::to_string(c.vocabSize) + ")";
    return false;
  }
  if (pos_ >= maxSeq_) {
    error = "the KV cache is full (" + std::to_string(maxSeq_) + " positions)";
    return false;
  }
  const int64_t D = c.dim, hd = c.headDim, kvDim = c.kvDim();
  const int64_t group = c.numHeads / c.numKVHeads;
  const float eps = float(c.normEps);
  const float invSqrtD = 1.0f / std::sqrt(float(hd));
  std::copy(embed_ + int64_t(token) * D, embed_ + (int64_t(token) + 1) * D,
            x_.begin());

  for (int64_t l = 0; l < c.numLayers; ++l) {
    const Layer &w = layers_[l];
    const std::string *names = &linearNames_[size_t(l) * 7];
    // Attention block.
    rmsNorm(x_.data(), w.attnNorm, xn_.data(), D, eps);
    linear(names[0], w.wq, xn_.data(), q_.data(), c.qDim(), D);
    linear(names[1], w.wk, xn_.data(), k_.data(), kvDim, D);
    linear(names[2], w.wv, xn_.data(), v_.data(), kvDim, D);
    rope(q_.data(), c.numHeads);
    rope(k_.data(), c.numKVHeads);
    float *kc = keyCache_.data() + l * maxSeq_ * kvDim;
    float *vc = valueCache_.data() + l * maxSeq_ * kvDim;
    std::copy(k_.begin(), k_.end(), kc + pos_ * kvDim);
    std::copy(v_.begin(), v_.end(), vc + pos_ * kvDim);
    if (kvFormat_)
      for (float *row : {kc + pos_ * kvDim, vc + pos_ * kvDim})
        for (int64_t h = 0; h < c.numKVHeads; ++h)
          fakeQuantizeRow(*kvFormat_, row + h * hd, hd);
    for (int64_t h = 0; h < c.numHeads; ++h) {
      const float *qh = q_.data() + h * hd;
      const int64_t g = h / group; // the key/value head this head reads
      float maxScore = -INFINITY;
      for (int64_t t = 0; t <= pos_; ++t) {
        const float *kt = kc + t * kvDim + g * hd;
        float dot = 0.0f;
        for (int64_t d = 0; d < hd; ++d)
          dot += qh[d] * kt[d];
        att_[t] = dot * invSqrtD;
        maxScore = std::max(maxScore, att_[t]);
      }
      float sum = 0.0f;
      for (int64_t t = 0; t <= pos_; ++t) {
        att_[t] = std::exp(att_[t] - maxScore);
        sum += att_[t];
      }
      for (int64_t t = 0; t <= pos_; ++t)
        att_[t] = att_[t] / sum;
      float *out = attOut_.data() + h * hd;
      for (int64_t d = 0; d < hd; ++d) {
        float acc = 0.0f;
        for (int64_t t = 0; t <= pos_; ++t)
          acc += att_[t] * vc[t * kvDim + g * hd + d];
        out[d] = acc;
      }
    }
    linear(names[3], w.wo, attOut_.data(), tmp_.data(), D, c.qDim());
    for (int64_t i = 0; i < D; ++i)
      x_[i] += tmp_[i];
    // Feed-forward block (SwiGLU).
    rmsNorm(x_.data(), w.ffnNorm, xn_.data(), D, eps);
    linear(names[4], w.wGate, xn_.data(), gate_.data(), c.hiddenDim, D);
    linear(names[5], w.wUp, xn_.data(), up_.data(), c.hiddenDim, D);
    for (int64_t i = 0; i < c.hiddenDim; ++i) {
      float g = gate_[i];
      gate_[i] = g / (1.0f + std::exp(-g)) * up_[i];
    }
    linear(names[6], w.wDown, gate_.data(), tmp_.data(), D, c.hiddenDim);
    for (int64_t i = 0; i < D; ++i)
      x_[i] += tmp_[i];
  }
  rmsNorm(x_.data(), finalNorm_, xn_.data(), D, eps);
  logits.resize(size_t(c.vocabSize));
  linear(linearNames_.back(), lmHead_, xn_.data(), logits.data(), c.vocabSize,
         D);
  ++pos_;
  return true;
}

bool LlamaReference::prefill(const std::vector<int32_t> &tokens,
                             std::vector<float> *allLogits,
                             std::string &error) {
  std::vector<float> logits;
  if (allLogits)
    allLogits->clear();
  for (int32_t t : tokens) {
    if (!step(t, logits, error))
      return false;
    if (allLogits)
      allLogits->insert(allLogits->end(), logits.begin(), logits.end());
  }
  return true;
}

std::vector<int32_t> generateGreedy(LlamaReference &ref,
                                    const std::vector<int32_t> &prompt,
                                    int64_t maxNewTokens, std::string &error) {
  std::vector<int32_t> out = prompt;
  std::vector<float> logits;
  for (size_t i = 0; i < prompt.size(); ++i)
    if (!ref.step(prompt[i], logits, error))
      return {};
  for (int64_t n = 0; n < maxNewTokens && !logits.empty(); ++n) {
    int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) -
                           logits.begin());
    out.push_back(next);
    if (next == ref.config().eosId || ref.position() >= ref.capacity())
      break;
    if (!ref.step(next, logits, error))
      return {};
  }
  return out;
}

} // namespace nibble::reference
