//===- TestData.cpp - Shared test data and synthetic checkpoints ----------===//

#include "TestData.h"

#include "nibble/Formats/Half.h"
#include "nibble/Support/File.h"
#include "nibble/Model/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <sys/stat.h>

#ifndef NIBBLE_SHARED_DIR_DEFAULT
#define NIBBLE_SHARED_DIR_DEFAULT ""
#endif

namespace nibble::testdata {

std::string sharedDir() {
  const char *env = std::getenv("NIBBLE_SHARED_DIR");
  std::string dir = env && *env ? env : NIBBLE_SHARED_DIR_DEFAULT;
  struct stat st;
  if (dir.empty() || stat((dir + "/models").c_str(), &st) != 0)
    return "";
  return dir;
}

std::string makeTempDir(const std::string &tag) {
  const char *base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/nibble-" +
                     tag + "-XXXXXX";
  if (!mkdtemp(tmpl.data()))
    return "";
  return tmpl;
}

std::string readText(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void writeText(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

bool writeSyntheticHF(const std::string &dir, const SyntheticSpec &s,
                      model::DType dtype, int shards, std::string &error) {
  using model::DType;
  std::ostringstream cfg;
  cfg << "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n"
      << "  \"model_type\": \"llama\",\n  \"hidden_size\": " << s.dim
      << ",\n  \"intermediate_size\": " << s.hidden
      << ",\n  \"num_hidden_layers\": " << s.layers
      << ",\n  \"num_attention_heads\": " << s.heads
      << ",\n  \"num_key_value_heads\": " << s.kvHeads
      << ",\n  \"vocab_size\": " << s.vocab
      << ",\n  \"max_position_embeddings\": " << s.maxSeq
      << ",\n  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n"
      << "  \"rope_scaling\": " << s.ropeScalingJson
      << ",\n  \"tie_word_embeddings\": " << (s.tied ? "true" : "false")
      << ",\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n"
      << "  \"hidden_act\": \"silu\"\n}\n";
  writeText(dir + "/config.json", cfg.str());

  // Random weights rounded to bf16 and kept inside f16's normal range, so
  // the f32, f16 and bf16 files hold the same numbers.
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto value = [&](float scale) {
    float v = normal(rng) * scale;
    if (std::abs(v) < 1e-3f)
      v = v < 0 ? -1e-3f : 1e-3f;
    return formats::bf16ToFloat(formats::floatToBF16(v));
  };
  struct T {
    std::string name;
    std::vector<int64_t> shape;
    float scale;
    bool norm;
  };
  const int64_t hd = s.dim / s.heads;
  std::vector<T> tensors = {{"model.embed_tokens.weight", {s.vocab, s.dim}, 1.0f, false}};
  for (int64_t l = 0; l < s.layers; ++l) {
    auto n = [&](const char *x) { return model::layerTensorName(l, x); };
    float ws = 1.0f / std::sqrt(float(s.dim));
    tensors.push_back({n("input_layernorm.weight"), {s.dim}, 0.1f, true});
    tensors.push_back({n("self_attn.q_proj.weight"), {s.heads * hd, s.dim}, ws, false});
    tensors.push_back({n("self_attn.k_proj.weight"), {s.kvHeads * hd, s.dim}, ws, false});
    tensors.push_back({n("self_attn.v_proj.weight"), {s.kvHeads * hd, s.dim}, ws, false});
    tensors.push_back({n("self_attn.o_proj.weight"), {s.dim, s.heads * hd}, ws, false});
    tensors.push_back({n("post_attention_layernorm.weight"), {s.dim}, 0.1f, true});
    tensors.push_back({n("mlp.gate_proj.weight"), {s.hidden, s.dim}, ws, false});
    tensors.push_back({n("mlp.up_proj.weight"), {s.hidden, s.dim}, ws, false});
    tensors.push_back({n("mlp.down_proj.weight"), {s.dim, s.hidden},
                       1.0f / std::sqrt(float(s.hidden)), false});
  }
  tensors.push_back({"model.norm.weight", {s.dim}, 0.1f, true});
  if (!s.tied)
    tensors.push_back({"lm_head.weight", {s.vocab, s.dim}, 1.0f / std::sqrt(float(s.dim)), false});

  std::vector<std::vector<uint8_t>> storage;
  std::vector<model::SafetensorsWriteEntry> entries;
  for (const T &t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape)
      n *= d;
    std::vector<uint8_t> bytes(size_t(n) * model::dtypeSize(dtype));
    for (int64_t i = 0; i < n; ++i) {
      float v = t.norm ? 1.0f + value(t.scale) : value(t.scale);
      v = formats::bf16ToFloat(formats::floatToBF16(v));
      if (dtype == DType::F32) {
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      } else {
        uint16_t h = dtype == DType::F16 ? formats::floatToHalf(v)
                                         : formats::floatToBF16(v);
        bytes[2 * i] = uint8_t(h);
        bytes[2 * i + 1] = uint8_t(h >> 8);
      }
    }
    storage.push_back(std::move(bytes));
    entries.push_back({t.name, dtype, t.shape, storage.back().data()});
  }
  if (shards <= 1)
    return model::writeSafetensors(dir + "/model.safetensors", entries, error,
                                   {{"format", "pt"}});
  std::ostringstream index;
  index << "{\"metadata\": {}, \"weight_map\": {";
  size_t per = (entries.size() + size_t(shards) - 1) / size_t(shards);
  for (int sh = 0; sh < shards; ++sh) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", sh + 1,
                  shards);
    std::vector<model::SafetensorsWriteEntry> part;
    for (size_t i = sh * per; i < std::min(entries.size(), (sh + 1) * per); ++i) {
      part.push_back(entries[i]);
      index << (i ? ", " : "") << "\"" << entries[i].name << "\": \"" << name
            << "\"";
    }
    if (!model::writeSafetensors(dir + "/" + name, part, error))
      return false;
  }
  index << "}}\n";
  writeText(dir + "/model.safetensors.index.json", index.str());
  return true;
}

bool writeLlama2c(const std::string &path, const model::Model &m,
                  const std::map<std::string, std::vector<float>> &replace,
                  std::string &error) {
  const model::LlamaConfig &c = m.config();
  std::vector<float> body;
  auto put = [&](const std::string &name) {
    auto it = replace.find(name);
    if (it != replace.end()) {
      body.insert(body.end(), it->second.begin(), it->second.end());
      return;
    }
    std::vector<float> v;
    m.get(name).toFloat(v);
    body.insert(body.end(), v.begin(), v.end());
  };
  put("model.embed_tokens.weight");
  for (const char *s : {"input_layernorm.weight", "self_attn.q_proj.weight",
                        "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                        "self_attn.o_proj.weight",
                        "post_attention_layernorm.weight",
                        "mlp.gate_proj.weight", "mlp.down_proj.weight",
                        "mlp.up_proj.weight"})
    for (int64_t l = 0; l < c.numLayers; ++l)
      put(model::layerTensorName(l, s));
  put("model.norm.weight");
  body.resize(body.size() + size_t(c.maxSeqLen * c.headDim), 0.0f); // freq_cis
  if (!c.tiedEmbeddings)
    put("lm_head.weight");
  int32_t header[7] = {int32_t(c.dim),        int32_t(c.hiddenDim),
                       int32_t(c.numLayers),  int32_t(c.numHeads),
                       int32_t(c.numKVHeads),
                       int32_t(c.tiedEmbeddings ? c.vocabSize : -c.vocabSize),
                       int32_t(c.maxSeqLen)};
  std::vector<uint8_t> bytes(sizeof header + body.size() * 4);
  std::memcpy(bytes.data(), header, sizeof header);
  std::memcpy(bytes.data() + sizeof header, body.data(), body.size() * 4);
  return support::writeFileAtomic(path, bytes.data(), bytes.size(), error);
}

} // namespace nibble::testdata
