//===- HuggingFace.cpp - Hugging Face Llama-family checkpoint directories -===//

#include "nibble/Model/Model.h"
#include "nibble/Model/Safetensors.h"
#include "nibble/Support/File.h"

#include "Json.h"

#include <nlohmann/json.hpp>

#include <set>
#include <sys/stat.h>

namespace nibble::model {

using json = nlohmann::json;

namespace {

bool fileExists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool parseJson(const std::string &text, const std::string &name, json &out,
               std::string &error) {
  std::string what;
  std::optional<uint64_t> offset;
  if (!detail::parseJsonText(text, out, what, offset)) {
    error = name + ": not valid JSON: " + what +
            (offset ? " (byte offset " + std::to_string(*offset) + ")" : "");
    return false;
  }
  if (!out.is_object()) {
    error = name + ": expected a JSON object at the top level";
    return false;
  }
  return true;
}

/// Typed field readers: an absent field is an error when `required`;
/// a field of the wrong type always is.
struct Fields {
  const json &obj;
  const std::string &name;
  std::string &error;

  const json *lookup(const char *key) const {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  bool missing(const char *key) {
    error = name + ": required field '" + key + "' is missing";
    return false;
  }
  bool wrongType(const char *key, const char *what) {
    error = name + ": field '" + key + "' must be " + what;
    return false;
  }
  bool integer(const char *key, int64_t &out, bool required) {
    const json *v = lookup(key);
    if (!v)
      return !required || missing(key);
    if (!v->is_number_integer())
      return wrongType(key, "an integer");
    out = v->get<int64_t>();
    return true;
  }
  bool number(const char *key, double &out, bool required) {
    const json *v = lookup(key);
    if (!v)
      return !required || missing(key);
    if (!v->is_number())
      return wrongType(key, "a number");
    out = v->get<double>();
    return true;
  }
  bool boolean(const char *key, bool &out) {
    const json *v = lookup(key);
    if (!v)
      return true;
    if (!v->is_boolean())
      return wrongType(key, "true or false");
    out = v->get<bool>();
    return true;
  }
  bool string(const char *key, std::string &out) {
    const json *v = lookup(key);
    if (!v)
      return true;
    if (!v->is_string())
      return wrongType(key, "a string");
    out = v->get<std::string>();
    return true;
  }
  /// An id or a list of ids (the first is used).
  bool tokenId(const char *key, int32_t &out) {
    const json *v = lookup(key);
    if (!v)
      return true;
    if (v->is_array() && !v->empty())
      v = &(*v)[0];
    if (!v->is_number_integer() || v->get<int64_t>() < 0 ||
        v->get<int64_t>() > INT32_MAX)
      return wrongType(key, "a non-negative token id or a list of them");
    out = int32_t(v->get<int64_t>());
    return true;
  }
};

} // namespace

bool Model::parseHFConfig(const std::string &text, const std::string &name,
                          LlamaConfig &c, std::string &error) {
  try {
    json cfg;
    if (!parseJson(text, name, cfg, error))
      return false;
    Fields f{cfg, name, error};
    std::string modelType, act = "silu";
    if (!f.string("model_type", modelType) || !f.string("hidden_act", act))
      return false;
    if (!modelType.empty() && modelType != "llama" && modelType != "mistral") {
      error = name + ": model_type '" + modelType +
              "' is not supported (expected 'llama' or 'mistral')";
      return false;
    }
    if (act != "silu") {
      error = name + ": hidden_act '" + act +
              "' is not supported (expected 'silu')";
      return false;
    }
    bool attnBias = false, mlpBias = false;
    if (!f.boolean("attention_bias", attnBias) ||
        !f.boolean("mlp_bias", mlpBias))
      return false;
    if (attnBias || mlpBias) {
      error = name + ": attention_bias/mlp_bias = true is not supported";
      return false;
    }
    c.numKVHeads = 0;
    c.headDim = 0;
    c.tiedEmbeddings = false; // the transformers LlamaConfig default
    if (!f.integer("hidden_size", c.dim, true) ||
        !f.integer("intermediate_size", c.hiddenDim, true) ||
        !f.integer("num_hidden_layers", c.numLayers, true) ||
        !f.integer("num_attention_heads", c.numHeads, true) ||
        !f.integer("num_key_value_heads", c.numKVHeads, false) ||
        !f.integer("head_dim", c.headDim, false) ||
        !f.integer("vocab_size", c.vocabSize, true) ||
        !f.integer("max_position_embeddings", c.maxSeqLen, true) ||
        !f.number("rms_norm_eps", c.normEps, true) ||
        !f.number("rope_theta", c.ropeTheta, false) ||
        !f.boolean("tie_word_embeddings", c.tiedEmbeddings) ||
        !f.tokenId("bos_token_id", c.bosId) ||
        !f.tokenId("eos_token_id", c.eosId))
      return false;
    if (c.numKVHeads == 0)
      c.numKVHeads = c.numHeads;
    if (c.headDim == 0 && c.numHeads > 0)
      c.headDim = c.dim / c.numHeads;
    c.ropePairing = RopePairing::RotateHalf;

    if (const json *rs = f.lookup("rope_scaling")) {
      if (!rs->is_object()) {
        error = name + ": field 'rope_scaling' must be an object or null";
        return false;
      }
      Fields r{*rs, name, error};
      std::string type;
      if (!r.string("rope_type", type))
        return false;
      if (type.empty() && !r.string("type", type))
        return false;
      if (type == "default" || type.empty()) {
        c.ropeScaling.kind = RopeScaling::Kind::None;
      } else if (type == "linear" || type == "llama3") {
        c.ropeScaling.kind = type == "linear" ? RopeScaling::Kind::Linear
                                              : RopeScaling::Kind::Llama3;
        if (!r.number("factor", c.ropeScaling.factor, true))
          return false;
        if (type == "llama3" &&
            (!r.number("low_freq_factor", c.ropeScaling.lowFreqFactor, true) ||
             !r.number("high_freq_factor", c.ropeScaling.highFreqFactor,
                       true) ||
             !r.integer("original_max_position_embeddings",
                        c.ropeScaling.originalMaxPositions, true)))
          return false;
      } else {
        error = name + ": rope_scaling type '" + type +
                "' is not supported (expected linear or llama3)";
        return false;
      }
    }
    std::string why;
    if (!c.validate(why)) {
      error = name + ": " + why;
      return false;
    }
    return true;
  } catch (const std::exception &e) {
    // Only reachable through a bug in the typed accessors above.
    error = name + ": " + e.what();
    return false;
  }
}

std::unique_ptr<Model> Model::loadHuggingFace(const std::string &dir,
                                              std::string &error) {
  std::unique_ptr<Model> model(new Model());
  model->source_ = dir;
  model->format_ = "huggingface";
  std::string configPath = dir + "/config.json", text;
  if (!support::readFile(configPath, text, error) ||
      !parseHFConfig(text, configPath, model->config_, error))
    return nullptr;

  // Which files hold the weights: one model.safetensors, or the shards the
  // index names (each listed tensor must be in the shard the index says).
  std::vector<std::string> files;
  std::map<std::string, std::string> weightMap;
  std::string indexPath = dir + "/model.safetensors.index.json";
  if (fileExists(dir + "/model.safetensors")) {
    files.push_back("model.safetensors");
  } else if (fileExists(indexPath)) {
    if (!support::readFile(indexPath, text, error))
      return nullptr;
    try {
      json index;
      if (!parseJson(text, indexPath, index, error))
        return nullptr;
      auto wm = index.find("weight_map");
      if (wm == index.end() || !wm->is_object()) {
        error = indexPath + ": required object 'weight_map' is missing";
        return nullptr;
      }
      std::set<std::string> seen;
      for (auto it = wm->begin(); it != wm->end(); ++it) {
        if (!it.value().is_string()) {
          error = indexPath + ": weight_map['" + it.key() +
                  "'] must be a file name";
          return nullptr;
        }
        std::string shard = it.value().get<std::string>();
        if (shard.empty() || shard.find('/') != std::string::npos ||
            shard == "." || shard == "..") {
          error = indexPath + ": weight_map['" + it.key() +
                  "'] names '" + shard + "', expected a file in " + dir;
          return nullptr;
        }
        weightMap[it.key()] = shard;
        if (seen.insert(shard).second)
          files.push_back(shard);
      }
    } catch (const std::exception &e) {
      error = indexPath + ": " + e.what();
      return nullptr;
    }
  } else {
    error = dir + ": neither model.safetensors nor "
                  "model.safetensors.index.json is present";
    return nullptr;
  }

  for (const std::string &fileName : files) {
    std::string path = dir + "/" + fileName;
    auto file = MappedFile::open(path, error);
    if (!file)
      return nullptr;
    auto header = parseSafetensors(file->data(), file->size(), path, error);
    if (!header)
      return nullptr;
    for (const auto &e : header->entries) {
      if (!weightMap.empty()) {
        auto it = weightMap.find(e.name);
        if (it == weightMap.end() || it->second != fileName)
          continue; // not this shard's tensor according to the index
      }
      if (model->tensors_.count(e.name)) {
        error = path + ": tensor '" + e.name + "' appears in two files";
        return nullptr;
      }
      TensorView v;
      v.name = e.name;
      v.dtype = e.dtype;
      v.shape = e.shape;
      v.fileOffset = header->dataOffset() + e.begin;
      v.data = file->data() + v.fileOffset;
      v.nbytes = size_t(e.end - e.begin);
      v.file = path;
      model->tensors_.emplace(e.name, std::move(v));
    }
    model->files_.push_back(std::move(file));
  }
  for (const auto &[tensor, shard] : weightMap)
    if (!model->tensors_.count(tensor)) {
      error = dir + "/" + shard + ": tensor '" + tensor +
              "' is listed in the index but missing from the file";
      return nullptr;
    }
  // Tied embeddings are often saved once, under either name (transformers
  // drops the duplicate and notes the alias in __metadata__): view the one
  // present under both names.
  if (model->config_.tiedEmbeddings) {
    auto &t = model->tensors_;
    if (!t.count("model.embed_tokens.weight") && t.count("lm_head.weight"))
      t.emplace("model.embed_tokens.weight", t.at("lm_head.weight"));
  }
  if (!model->checkTensors(error))
    return nullptr;
  return model;
}

} // namespace nibble::model
