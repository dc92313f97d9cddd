//===- Manifest.cpp - The bundle manifest the runtime reads ---------------===//

#include "LoadedBundle.h"

#include <nlohmann/json.hpp>

#include <limits>

namespace nibble::runtime {
namespace {

using nlohmann::json;

/// Typed access to dotted manifest paths with errors that name the field.
class Fields {
public:
  Fields(const json &root, std::string prefix, std::string &error)
      : root_(root), prefix_(std::move(prefix)), error_(error) {}

  const json *find(std::string_view path) const {
    const json *node = &root_;
    while (!path.empty()) {
      size_t dot = path.find('.');
      std::string key(path.substr(0, dot));
      if (!node->is_object())
        return nullptr;
      auto it = node->find(key);
      if (it == node->end())
        return nullptr;
      node = &*it;
      path = dot == std::string_view::npos ? std::string_view()
                                           : path.substr(dot + 1);
    }
    return node;
  }

  bool integer(const char *path, int64_t &out, int64_t min,
               int64_t max = std::numeric_limits<int32_t>::max()) {
    const json *v = require(path);
    if (!v)
      return false;
    if (!v->is_number_integer())
      return fail(path, "is " + show(*v) + ", expected an integer");
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(max))
      return fail(path, "is " + v->dump() + ", expected " +
                            std::to_string(min) + ".." + std::to_string(max));
    out = v->get<int64_t>();
    if (out < min || out > max)
      return fail(path, "is " + std::to_string(out) + ", expected " +
                            std::to_string(min) + ".." + std::to_string(max));
    return true;
  }

  /// An integer id, or -1 when the field is absent or null.
  bool optionalId(const char *path, int64_t &out, int64_t limit) {
    const json *v = find(path);
    if (!v || v->is_null()) {
      out = -1;
      return true;
    }
    return integer(path, out, -1, limit - 1);
  }

  bool string(const char *path, std::string &out) {
    const json *v = require(path);
    if (!v)
      return false;
    if (!v->is_string())
      return fail(path, "is " + show(*v) + ", expected a string");
    out = v->get<std::string>();
    return true;
  }

  bool strings(const char *path, std::vector<std::string> &out) {
    const json *v = require(path);
    if (!v)
      return false;
    if (!v->is_array())
      return fail(path, "is " + show(*v) + ", expected an array of strings");
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string())
        return fail(path, "element " + std::to_string(i) + " is " +
                              show((*v)[i]) + ", expected a string");
      out.push_back((*v)[i].get<std::string>());
    }
    return true;
  }

  bool fail(const std::string &path, const std::string &what) {
    error_ = prefix_ + "field \"" + path + "\" " + what;
    return false;
  }

private:
  const json *require(const char *path) {
    const json *v = find(path);
    if (!v)
      fail(path, "is missing");
    return v;
  }
  static std::string show(const json &v) {
    std::string text = v.dump();
    if (text.size() > 40)
      text = text.substr(0, 37) + "...";
    return std::string(v.type_name()) + " " + text;
  }

  const json &root_;
  std::string prefix_;
  std::string &error_;
};

/// nlohmann's what() without its "[json.exception.parse_error.101] " tag.
std::string withoutTag(const char *what) {
  std::string s(what);
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find("] ");
    if (close != std::string::npos)
      s = s.substr(close + 2);
  }
  return s;
}

} // namespace

bool parseManifest(const std::string &name, std::string_view text,
                   Manifest &m, std::string &error) {
  const std::string prefix = name + ": manifest: ";
  json root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::parse_error &e) {
    error = prefix + "malformed JSON at byte offset " +
            std::to_string(e.byte > 0 ? e.byte - 1 : 0) + ": " +
            withoutTag(e.what());
    return false;
  }
  if (!root.is_object()) {
    error = prefix + "expected a JSON object, found " + root.type_name();
    return false;
  }
  m.text = std::string(text);
  Fields f(root, prefix, error);
  int64_t version = 0;
  if (!f.integer("nibble_bundle", version, 0))
    return false;
  if (version != 1)
    return f.fail("nibble_bundle",
                  "is " + std::to_string(version) +
                      ": unsupported manifest version (this runtime reads 1)");
  if (!f.integer("model.vocab", m.vocab, 1) ||
      !f.integer("model.layers", m.layers, 1) ||
      !f.integer("model.kv_heads", m.kvHeads, 1) ||
      !f.integer("model.head_dim", m.headDim, 1) ||
      !f.string("target.triple", m.triple) ||
      !f.strings("target.features", m.features) ||
      !f.string("entry.decode", m.decodeEntry) ||
      !f.string("entry.prefill", m.prefillEntry) ||
      !f.integer("entry.prefill_chunk", m.prefillChunk, 1) ||
      !f.integer("entry.context", m.context, 1) ||
      !f.integer("weights.bytes", m.weightsBytes, 0,
                 std::numeric_limits<int64_t>::max()) ||
      !f.string("tokenizer.kind", m.tokenizerKind) ||
      !f.integer("tokenizer.vocab", m.tokenizerVocab, 1) ||
      !f.optionalId("tokenizer.bos", m.bos, m.vocab) ||
      !f.optionalId("tokenizer.eos", m.eos, m.vocab))
    return false;
  // The CPU name only appears in messages.
  if (const json *cpu = f.find("target.cpu"); cpu && cpu->is_string())
    m.cpu = cpu->get<std::string>();
  else
    m.cpu = "(not recorded)";
  if (m.prefillChunk > m.context)
    return f.fail("entry.prefill_chunk",
                  "is " + std::to_string(m.prefillChunk) +
                      ", larger than entry.context " +
                      std::to_string(m.context));
  std::string dtype, layout;
  if (!f.string("kv_cache.dtype", dtype) ||
      !f.string("kv_cache.layout", layout))
    return false;
  m.kvDtype = dtype;
  if (dtype != "f32") {
    // A quantized cache: codes of one byte and f32 scales, whatever the
    // format (the code decodes them).
    int64_t codeBytes = 0;
    std::string scales;
    if (!f.integer("kv_cache.code_bytes", codeBytes, 1, 8) ||
        !f.string("kv_cache.scales", scales))
      return false;
    if (codeBytes != 1)
      return f.fail("kv_cache.code_bytes",
                    "is " + std::to_string(codeBytes) +
                        " (this runtime stores one code per byte)");
    if (scales != "f32, layers x context x kv_heads")
      return f.fail("kv_cache.scales",
                    "is \"" + scales +
                        "\" (this runtime allocates \"f32, layers x context "
                        "x kv_heads\")");
  }
  if (layout != "layers x context x kv_heads x head_dim")
    return f.fail("kv_cache.layout",
                  "is \"" + layout +
                      "\" (this runtime allocates layers x context x "
                      "kv_heads x head_dim)");
  if (m.tokenizerKind != "llama2c" && m.tokenizerKind != "hf-bpe" &&
      m.tokenizerKind != "sentencepiece")
    return f.fail("tokenizer.kind",
                  "is \"" + m.tokenizerKind +
                      "\", expected \"llama2c\", \"hf-bpe\" or "
                      "\"sentencepiece\"");
  // One cache must be addressable: layers * context * kv_heads * head_dim
  // floats, as bytes, in int64.
  __int128 floats = __int128(m.layers) * m.context * m.kvHeads * m.headDim;
  if (floats * 4 > std::numeric_limits<int64_t>::max()) {
    error = prefix + "the KV cache (model.layers x entry.context x "
                     "model.kv_heads x model.head_dim floats) is too large";
    return false;
  }
  return true;
}

} // namespace nibble::runtime
