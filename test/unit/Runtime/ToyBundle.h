//===- ToyBundle.h - Bundles around ToyModel.c for the runtime tests ------===//
//
// A manifest, a llama2.c tokenizer written here, the toy model's shared
// library as the code, and a small weights blob, packed with BundleWriter.
// Tests change the manifest (JSON) or the sections to get bad bundles.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_TEST_UNIT_RUNTIME_TOYBUNDLE_H
#define NIBBLE_TEST_UNIT_RUNTIME_TOYBUNDLE_H

#include "../Tokenizer/TestUtil.h"
#include "TestData.h"
#include "nibble/Bundle/Bundle.h"
#include "nibble/Runtime/CpuFeatures.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nibble::runtime::test {

using json = nlohmann::ordered_json;

inline std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

/// The toy tokenizer: llama2.c's specials, 256 byte tokens, the printable
/// ASCII characters, then a few merges; the last piece is " and".
inline std::vector<tokenizer::test::Llama2cEntry> toyPieces() {
  std::vector<tokenizer::test::Llama2cEntry> p = {
      {0, "<unk>"}, {0, "\n<s>\n"}, {0, "\n</s>\n"}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    p.push_back({0, name});
  }
  for (char c = 32; c < 127; ++c)
    p.push_back({-100, std::string(1, c)});
  // Listed by falling score (merged first); " and" forms via "an", "and".
  const char *merges[] = {"an", "and", "th", "he",  "the",
                          " the", "in", " t", " a", " and"};
  float score = -1;
  for (const char *m : merges)
    p.push_back({score -= 1, m});
  return p;
}
inline int32_t toyVocab() { return int32_t(toyPieces().size()); }
inline std::string toyTokenizer() {
  return tokenizer::test::llama2cFile(8, toyPieces());
}

/// An LLVM triple of another architecture than this machine's.
inline std::string foreignTriple() {
  return std::string(hostArch()) == "aarch64" ? "x86_64-unknown-linux-gnu"
                                              : "aarch64-unknown-linux-gnu";
}
inline std::string hostTriple() {
  return std::string(hostArch()) + "-unknown-linux-gnu";
}

constexpr int64_t kToyContext = 32, kToyChunk = 4, kToyLayers = 2,
                  kToyKvHeads = 2, kToyHeadDim = 4;
constexpr int8_t kToyWeight0 = 3;

inline json toyManifest() {
  return json{
      {"nibble_bundle", 1},
      {"compiler", "toy (runtime tests)"},
      {"model",
       {{"name", "toy"},
        {"source", "test/unit/Runtime/ToyModel.c"},
        {"dim", 8},
        {"hidden_dim", 16},
        {"layers", kToyLayers},
        {"heads", 2},
        {"kv_heads", kToyKvHeads},
        {"head_dim", kToyHeadDim},
        {"vocab", toyVocab()},
        {"max_seq_len", kToyContext}}},
      {"target",
       {{"spec", "native"},
        {"triple", hostTriple()},
        {"cpu", "toy-cpu"},
        {"features", json::array()}}},
      {"entry",
       {{"decode", "_mlir_ciface_nibble_decode"},
        {"prefill", "_mlir_ciface_nibble_prefill"},
        {"prefill_chunk", kToyChunk},
        {"context", kToyContext}}},
      {"kv_cache",
       {{"dtype", "f32"},
        {"layout", "layers x context x kv_heads x head_dim"}}},
      {"weights", {{"bytes", 4}}},
      {"tokenizer",
       {{"kind", "llama2c"}, {"vocab", toyVocab()}, {"bos", 1}, {"eos", 2}}},
      {"card",
       {{"weights",
         {{"method", "none (toy)"},
          {"format", "int8"},
          {"tensors", json::array({{{"name", "w0"}, {"type", "int8"}},
                                   {{"name", "w1"}, {"type", "f32"}}})}}},
        {"calibration", {{"text", "none"}}},
        {"evaluation", nullptr}}}};
}

/// The sections of a toy bundle, in the order they are written.
struct ToyBundle {
  std::string manifestText = toyManifest().dump(2);
  std::string code = readBytes(NIBBLE_TOY_MODEL_SO);
  std::string weights = std::string{char(kToyWeight0), 1, 2, 3};
  std::string tokenizer = toyTokenizer();
  std::vector<std::string> omit; ///< sections to leave out

  void setManifest(const json &m) { manifestText = m.dump(2); }

  std::string bytes() const {
    bundle::BundleWriter w;
    std::string error;
    auto add = [&](const char *name, const std::string &data,
                   uint32_t alignment) {
      if (std::find(omit.begin(), omit.end(), name) == omit.end()) {
        EXPECT_TRUE(w.add(name, data, error, alignment)) << error;
      }
    };
    add("manifest", manifestText, 64);
    add("code", code, 4096);
    add("weights", weights, 4096);
    add("tokenizer", tokenizer, 64);
    return w.bytes();
  }
  /// Writes the bundle as DIR/NAME and returns the path.
  std::string write(const std::string &dir,
                    const std::string &name = "toy.nbl") const {
    std::string path = dir + "/" + name;
    writeBytes(path, bytes());
    return path;
  }
};

/// A temporary directory removed with the test.
struct TempDir {
  std::string path = testdata::makeTempDir("runtime");
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

} // namespace nibble::runtime::test

#endif // NIBBLE_TEST_UNIT_RUNTIME_TOYBUNDLE_H
