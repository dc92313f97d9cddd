//===- Model.h - The one model description both loaders produce -----------===//
//
// A Llama-family decoder: its architecture (LlamaConfig) and a map from
// canonical tensor names to read-only views into memory-mapped checkpoint
// files. Canonical names are the Hugging Face ones:
//
//   model.embed_tokens.weight                    [vocab, dim]
//   model.layers.{i}.input_layernorm.weight      [dim]
//   model.layers.{i}.self_attn.q_proj.weight     [heads*head_dim, dim]
//   model.layers.{i}.self_attn.k_proj.weight     [kv_heads*head_dim, dim]
//   model.layers.{i}.self_attn.v_proj.weight     [kv_heads*head_dim, dim]
//   model.layers.{i}.self_attn.o_proj.weight     [dim, heads*head_dim]
//   model.layers.{i}.post_attention_layernorm.weight [dim]
//   model.layers.{i}.mlp.gate_proj.weight        [hidden, dim]
//   model.layers.{i}.mlp.up_proj.weight          [hidden, dim]
//   model.layers.{i}.mlp.down_proj.weight        [dim, hidden]
//   model.norm.weight                            [dim]
//   lm_head.weight                               [vocab, dim] (absent when tied)
//
// Linear weights are [out, in] (PyTorch layout). llama2.c checkpoints use the
// same layout but pair RoPE dimensions as interleaved (2i, 2i+1); HF
// checkpoints pair (i, i + head_dim/2) ("rotate_half"). The description
// records which, so q/k weights are used exactly as stored.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_MODEL_MODEL_H
#define NIBBLE_MODEL_MODEL_H

#include "nibble/Model/MappedFile.h"
#include "nibble/Model/Tensor.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nibble::model {

enum class RopePairing : uint8_t {
  Interleaved, ///< llama2.c / Meta: rotate (x[2i], x[2i+1])
  RotateHalf,  ///< Hugging Face: rotate (x[i], x[i + head_dim/2])
};

struct RopeScaling {
  enum class Kind : uint8_t { None, Linear, Llama3 };
  Kind kind = Kind::None;
  double factor = 1.0;
  double lowFreqFactor = 1.0;  ///< llama3
  double highFreqFactor = 4.0; ///< llama3
  int64_t originalMaxPositions = 8192; ///< llama3
};

struct LlamaConfig {
  int64_t dim = 0;       ///< hidden_size
  int64_t hiddenDim = 0; ///< intermediate_size (SwiGLU)
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0;
  int64_t headDim = 0;
  int64_t vocabSize = 0;
  int64_t maxSeqLen = 0; ///< max_position_embeddings / llama2.c seq_len
  double normEps = 1e-5;
  double ropeTheta = 10000.0;
  RopeScaling ropeScaling;
  RopePairing ropePairing = RopePairing::RotateHalf;
  bool tiedEmbeddings = false;
  int32_t bosId = -1;
  int32_t eosId = -1;

  int64_t qDim() const { return numHeads * headDim; }
  int64_t kvDim() const { return numKVHeads * headDim; }
  /// Checks the numbers are consistent (positive, heads divide, ...).
  bool validate(std::string &error) const;
  /// RoPE inverse frequencies, head_dim/2 values, computed in float as the
  /// reference does (theta^(-2i/d), then rope_scaling).
  std::vector<float> ropeInverseFrequencies() const;
};

/// Canonical names of layer tensors.
std::string layerTensorName(int64_t layer, const char *suffix);

/// The seven linears of a decoder block in forward order, as name suffixes
/// without ".weight": self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj.
extern const char *const kBlockLinears[7];

/// Every linear of the decoder in forward order, by layer name (no
/// ".weight"): each block's seven ("model.layers.L.self_attn.q_proj", ...),
/// then "lm_head" (the embedding table when tied).
std::vector<std::string> linearNames(const LlamaConfig &config);

class Model {
public:
  /// Opens a model: a directory is a Hugging Face checkpoint (config.json +
  /// model.safetensors or model.safetensors.index.json), a file is a llama2.c
  /// checkpoint. Null and `error` set on failure.
  static std::unique_ptr<Model> load(const std::string &path,
                                     std::string &error);
  static std::unique_ptr<Model> loadHuggingFace(const std::string &dir,
                                                std::string &error);
  static std::unique_ptr<Model> loadLlama2c(const std::string &file,
                                            std::string &error);
  /// llama2.c checkpoint already in memory (the fuzz entry point). The
  /// returned model keeps `file` alive.
  static std::unique_ptr<Model>
  fromLlama2c(std::shared_ptr<MappedFile> file, std::string &error);

  const LlamaConfig &config() const { return config_; }
  const std::string &source() const { return source_; }
  /// "huggingface" or "llama2c".
  const std::string &format() const { return format_; }
  const std::map<std::string, TensorView> &tensors() const {
    return tensors_;
  }
  /// Null when absent.
  const TensorView *find(const std::string &name) const;
  /// A tensor the loader verified to exist (aborts otherwise: a bug).
  const TensorView &get(const std::string &name) const;
  /// Where the tokenizer of this checkpoint is expected: the HF directory
  /// itself, or tokenizer.bin / tok<vocab>.bin / tokenizer.model next to a
  /// llama2.c file. Empty when none is found.
  std::string defaultTokenizerPath() const;
  /// lm_head.weight, or the embedding when tied.
  const TensorView &lmHead() const;

  /// Parses config.json text (the fuzz entry point for configs).
  static bool parseHFConfig(const std::string &json, const std::string &name,
                            LlamaConfig &config, std::string &error);

private:
  /// Checks every canonical tensor is present with the shape the config
  /// implies and a float dtype.
  bool checkTensors(std::string &error) const;

  LlamaConfig config_;
  std::string source_;
  std::string format_;
  std::map<std::string, TensorView> tensors_;
  std::vector<std::shared_ptr<MappedFile>> files_;
};

} // namespace nibble::model

#endif // NIBBLE_MODEL_MODEL_H
