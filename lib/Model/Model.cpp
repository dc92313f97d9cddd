//===- Model.cpp - Model description, config checks, tensor checks --------===//

#include "nibble/Model/Model.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>

namespace nibble::model {

bool LlamaConfig::validate(std::string &error) const {
  auto positive = [&](int64_t v, const char *field, int64_t limit) {
    if (v > 0 && v <= limit)
      return true;
    error = std::string(field) + " is " + std::to_string(v) +
            ", expected a positive value no larger than " +
            std::to_string(limit);
    return false;
  };
  if (!positive(dim, "hidden size (dim)", 1 << 18) ||
      !positive(hiddenDim, "intermediate size (hidden_dim)", 1 << 20) ||
      !positive(numLayers, "layer count", 1 << 10) ||
      !positive(numHeads, "attention head count", 1 << 12) ||
      !positive(numKVHeads, "key/value head count", 1 << 12) ||
      !positive(headDim, "head dimension", 1 << 12) ||
      !positive(vocabSize, "vocabulary size", 1 << 22) ||
      !positive(maxSeqLen, "maximum sequence length", 1 << 24))
    return false;
  if (numHeads % numKVHeads != 0) {
    error = "attention heads (" + std::to_string(numHeads) +
            ") must be a multiple of key/value heads (" +
            std::to_string(numKVHeads) + ")";
    return false;
  }
  if (headDim % 2 != 0) {
    error = "head dimension " + std::to_string(headDim) +
            " must be even for RoPE";
    return false;
  }
  if (!(normEps > 0) || !std::isfinite(normEps)) {
    error = "rms_norm_eps must be a positive number";
    return false;
  }
  if (!(ropeTheta > 0) || !std::isfinite(ropeTheta)) {
    error = "rope_theta must be a positive number";
    return false;
  }
  if (ropeScaling.kind != RopeScaling::Kind::None &&
      (!(ropeScaling.factor > 0) || !std::isfinite(ropeScaling.factor))) {
    error = "rope_scaling.factor must be a positive number";
    return false;
  }
  if (ropeScaling.kind == RopeScaling::Kind::Llama3 &&
      !(ropeScaling.highFreqFactor > ropeScaling.lowFreqFactor &&
        ropeScaling.lowFreqFactor > 0 && ropeScaling.originalMaxPositions > 0)) {
    error = "rope_scaling (llama3) needs high_freq_factor > low_freq_factor "
            "> 0 and original_max_position_embeddings > 0";
    return false;
  }
  if (bosId >= vocabSize || eosId >= vocabSize) {
    error = "bos/eos token id outside the vocabulary";
    return false;
  }
  return true;
}

std::vector<float> LlamaConfig::ropeInverseFrequencies() const {
  std::vector<float> inv(size_t(headDim / 2));
  for (int64_t i = 0; i < headDim / 2; ++i)
    inv[i] = 1.0f / std::pow(float(ropeTheta), float(2 * i) / float(headDim));
  switch (ropeScaling.kind) {
  case RopeScaling::Kind::None:
    break;
  case RopeScaling::Kind::Linear:
    for (float &f : inv)
      f = f / float(ropeScaling.factor);
    break;
  case RopeScaling::Kind::Llama3: {
    // As Hugging Face's _compute_llama3_parameters: long wavelengths are
    // divided by the factor, short ones kept, the band between blended.
    const float factor = float(ropeScaling.factor);
    const float lo = float(ropeScaling.lowFreqFactor);
    const float hi = float(ropeScaling.highFreqFactor);
    const float oldCtx = float(ropeScaling.originalMaxPositions);
    const float loWavelen = oldCtx / lo, hiWavelen = oldCtx / hi;
    for (float &f : inv) {
      float wavelen = 2.0f * float(M_PI) / f;
      if (wavelen > loWavelen) {
        f = f / factor;
      } else if (wavelen >= hiWavelen) {
        float smooth = (oldCtx / wavelen - lo) / (hi - lo);
        f = (1 - smooth) * f / factor + smooth * f;
      }
    }
    break;
  }
  }
  return inv;
}

std::string layerTensorName(int64_t layer, const char *suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

const char *const kBlockLinears[7] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
    "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
    "mlp.down_proj"};

std::vector<std::string> linearNames(const LlamaConfig &config) {
  std::vector<std::string> names;
  for (int64_t l = 0; l < config.numLayers; ++l)
    for (const char *s : kBlockLinears)
      names.push_back(layerTensorName(l, s));
  names.push_back("lm_head");
  return names;
}

std::unique_ptr<Model> Model::load(const std::string &path,
                                   std::string &error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    error = "cannot open " + path + ": no such file or directory";
    return nullptr;
  }
  if (S_ISDIR(st.st_mode))
    return loadHuggingFace(path, error);
  return loadLlama2c(path, error);
}

std::string Model::defaultTokenizerPath() const {
  if (format_ == "huggingface")
    return source_;
  size_t slash = source_.rfind('/');
  std::string dir = slash == std::string::npos ? "." : source_.substr(0, slash);
  for (std::string name : {std::string("tokenizer.bin"),
                           "tok" + std::to_string(config_.vocabSize) + ".bin",
                           std::string("tokenizer.model")}) {
    struct stat st;
    if (stat((dir + "/" + name).c_str(), &st) == 0)
      return dir + "/" + name;
  }
  return "";
}

const TensorView *Model::find(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView &Model::get(const std::string &name) const {
  const TensorView *t = find(name);
  if (!t) {
    std::fprintf(stderr, "internal error: tensor '%s' was not checked\n",
                 name.c_str());
    std::abort();
  }
  return *t;
}

const TensorView &Model::lmHead() const {
  return config_.tiedEmbeddings ? get("model.embed_tokens.weight")
                                : get("lm_head.weight");
}

bool Model::checkTensors(std::string &error) const {
  const LlamaConfig &c = config_;
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"model.embed_tokens.weight", {c.vocabSize, c.dim}},
      {"model.norm.weight", {c.dim}},
  };
  if (!c.tiedEmbeddings)
    expected.push_back({"lm_head.weight", {c.vocabSize, c.dim}});
  for (int64_t l = 0; l < c.numLayers; ++l) {
    auto add = [&](const char *s, std::vector<int64_t> shape) {
      expected.push_back({layerTensorName(l, s), std::move(shape)});
    };
    add("input_layernorm.weight", {c.dim});
    add("self_attn.q_proj.weight", {c.qDim(), c.dim});
    add("self_attn.k_proj.weight", {c.kvDim(), c.dim});
    add("self_attn.v_proj.weight", {c.kvDim(), c.dim});
    add("self_attn.o_proj.weight", {c.dim, c.qDim()});
    add("post_attention_layernorm.weight", {c.dim});
    add("mlp.gate_proj.weight", {c.hiddenDim, c.dim});
    add("mlp.up_proj.weight", {c.hiddenDim, c.dim});
    add("mlp.down_proj.weight", {c.dim, c.hiddenDim});
  }
  for (const auto &[name, shape] : expected) {
    const TensorView *t = find(name);
    if (!t) {
      error = source_ + ": tensor '" + name + "' is missing";
      return false;
    }
    if (t->shape != shape) {
      error = t->file + ": tensor '" + name + "' has shape " +
              shapeString(t->shape) + ", expected " + shapeString(shape) +
              " from the config (file offset " + std::to_string(t->fileOffset) +
              ")";
      return false;
    }
    if (t->dtype != DType::F32 && t->dtype != DType::F16 &&
        t->dtype != DType::BF16) {
      error = t->file + ": tensor '" + name + "' has dtype " +
              std::string(dtypeName(t->dtype)) +
              ", expected F32, F16 or BF16 (file offset " +
              std::to_string(t->fileOffset) + ")";
      return false;
    }
  }
  return true;
}

} // namespace nibble::model
