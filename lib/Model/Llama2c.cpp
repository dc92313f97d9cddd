//===- Llama2c.cpp - llama2.c legacy checkpoints --------------------------===//
//
// Layout (karpathy/llama2.c, "legacy" export): 7 little-endian int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
// negative vocab_size means the classifier is stored separately), then f32
// tensors: token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim],
// wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim],
// w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim],
// rms_final [dim], freq_cis_real and freq_cis_imag [seq_len, head_size/2]
// (unused: RoPE is recomputed), then wcls [vocab, dim] when not shared.
// Stacked [L, ...] arrays become per-layer views under the canonical names.
//
//===----------------------------------------------------------------------===//

#include "nibble/Model/Model.h"

#include <cstring>

namespace nibble::model {

namespace {
int32_t readI32(const uint8_t *p) {
  return int32_t(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                 uint32_t(p[3]) << 24);
}
} // namespace

std::unique_ptr<Model> Model::loadLlama2c(const std::string &file,
                                          std::string &error) {
  auto mapped = MappedFile::open(file, error);
  if (!mapped)
    return nullptr;
  return fromLlama2c(std::move(mapped), error);
}

std::unique_ptr<Model> Model::fromLlama2c(std::shared_ptr<MappedFile> file,
                                          std::string &error) {
  const std::string &path = file->path();
  const uint8_t *data = file->data();
  const size_t size = file->size();
  constexpr size_t kHeader = 7 * 4;
  if (size < kHeader) {
    error = path + ": file is " + std::to_string(size) +
            " bytes, too short for the 28-byte llama2.c header";
    return nullptr;
  }
  if (std::memcmp(data, "24ka", 4) == 0) { // 0x616b3432 little-endian
    error = path + ": llama2.c version " + std::to_string(readI32(data + 4)) +
            " export (magic 'ak42') is not supported; export with "
            "--version 0 (legacy)";
    return nullptr;
  }
  static const char *kFields[7] = {"dim",        "hidden_dim", "n_layers",
                                   "n_heads",    "n_kv_heads", "vocab_size",
                                   "seq_len"};
  int32_t h[7];
  for (int i = 0; i < 7; ++i)
    h[i] = readI32(data + 4 * i);
  for (int i = 0; i < 7; ++i)
    if (i != 5 && h[i] <= 0) {
      error = path + ": header field " + kFields[i] + " is " +
              std::to_string(h[i]) + ", expected a positive value (file offset " +
              std::to_string(4 * i) + ")";
      return nullptr;
    }
  if (h[5] == 0 || h[5] == INT32_MIN) {
    error = path + ": header field vocab_size is " + std::to_string(h[5]) +
            " (file offset 20)";
    return nullptr;
  }

  std::unique_ptr<Model> model(new Model());
  model->source_ = path;
  model->format_ = "llama2c";
  LlamaConfig &c = model->config_;
  c.dim = h[0];
  c.hiddenDim = h[1];
  c.numLayers = h[2];
  c.numHeads = h[3];
  c.numKVHeads = h[4];
  c.vocabSize = h[5] < 0 ? -int64_t(h[5]) : h[5];
  c.maxSeqLen = h[6];
  c.tiedEmbeddings = h[5] > 0;
  c.headDim = c.numHeads > 0 ? c.dim / c.numHeads : 0;
  c.normEps = 1e-5;
  c.ropeTheta = 10000.0;
  c.ropePairing = RopePairing::Interleaved;
  c.bosId = 1;
  c.eosId = 2;
  if (c.dim % c.numHeads != 0) {
    error = path + ": dim " + std::to_string(c.dim) +
            " is not a multiple of n_heads " + std::to_string(c.numHeads);
    return nullptr;
  }
  std::string why;
  if (!c.validate(why)) {
    error = path + ": " + why;
    return nullptr;
  }

  // Walk the tensors in file order; every one must fit in the file.
  uint64_t offset = kHeader;
  const int64_t L = c.numLayers, D = c.dim, H = c.hiddenDim, KV = c.kvDim();
  auto take = [&](const std::string &what, std::vector<int64_t> shape,
                  uint64_t &at) {
    uint64_t n = 4;
    for (int64_t d : shape)
      n *= uint64_t(d);
    if (n > size || offset > size - n) {
      error = path + ": tensor " + what + " " + shapeString(shape) +
              " needs bytes [" + std::to_string(offset) + ", " +
              std::to_string(offset + n) + ") but the file has " +
              std::to_string(size) + " bytes";
      return false;
    }
    at = offset;
    offset += n;
    return true;
  };
  auto view = [&](const std::string &name, std::vector<int64_t> shape,
                  uint64_t at) {
    TensorView v;
    v.name = name;
    v.dtype = DType::F32;
    v.shape = std::move(shape);
    v.nbytes = size_t(v.numElements()) * 4;
    v.data = data + at;
    v.file = path;
    v.fileOffset = at;
    model->tensors_.emplace(name, std::move(v));
  };
  // Stacked per-layer arrays: [L, rows, cols] split into L views.
  auto stacked = [&](const std::string &what, const char *suffix,
                     std::vector<int64_t> perLayer) {
    std::vector<int64_t> shape = {L};
    shape.insert(shape.end(), perLayer.begin(), perLayer.end());
    uint64_t at;
    if (!take(what, shape, at))
      return false;
    uint64_t bytes = 4;
    for (int64_t d : perLayer)
      bytes *= uint64_t(d);
    for (int64_t l = 0; l < L; ++l)
      view(layerTensorName(l, suffix), perLayer, at + uint64_t(l) * bytes);
    return true;
  };
  uint64_t at;
  if (!take("token_embedding", {c.vocabSize, D}, at))
    return nullptr;
  view("model.embed_tokens.weight", {c.vocabSize, D}, at);
  if (!stacked("rms_att", "input_layernorm.weight", {D}) ||
      !stacked("wq", "self_attn.q_proj.weight", {D, D}) ||
      !stacked("wk", "self_attn.k_proj.weight", {KV, D}) ||
      !stacked("wv", "self_attn.v_proj.weight", {KV, D}) ||
      !stacked("wo", "self_attn.o_proj.weight", {D, D}) ||
      !stacked("rms_ffn", "post_attention_layernorm.weight", {D}) ||
      !stacked("w1", "mlp.gate_proj.weight", {H, D}) ||
      !stacked("w2", "mlp.down_proj.weight", {D, H}) ||
      !stacked("w3", "mlp.up_proj.weight", {H, D}))
    return nullptr;
  if (!take("rms_final", {D}, at))
    return nullptr;
  view("model.norm.weight", {D}, at);
  if (!take("freq_cis_real", {c.maxSeqLen, c.headDim / 2}, at) ||
      !take("freq_cis_imag", {c.maxSeqLen, c.headDim / 2}, at))
    return nullptr;
  if (!c.tiedEmbeddings) {
    if (!take("wcls", {c.vocabSize, D}, at))
      return nullptr;
    view("lm_head.weight", {c.vocabSize, D}, at);
  }
  if (offset != size) {
    error = path + ": " + std::to_string(size - offset) +
            " unexpected bytes after the last tensor (file offset " +
            std::to_string(offset) + "; expected a file of " +
            std::to_string(offset) + " bytes for this header)";
    return nullptr;
  }
  model->files_.push_back(std::move(file));
  if (!model->checkTensors(error))
    return nullptr;
  return model;
}

} // namespace nibble::model
