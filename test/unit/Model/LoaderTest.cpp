//===- LoaderTest.cpp - HF and llama2.c loaders, one model description ----===//

#include "TestData.h"

#include "nibble/Model/Model.h"
#include "nibble/Model/Safetensors.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <cstring>

using namespace nibble;
using namespace nibble::model;
using nibble::testdata::SyntheticSpec;

namespace {

std::unique_ptr<Model> loadOk(const std::string &path) {
  std::string error;
  auto m = Model::load(path, error);
  EXPECT_TRUE(m) << error;
  return m;
}

std::string loadError(const std::string &path) {
  std::string error;
  auto m = Model::load(path, error);
  EXPECT_FALSE(m) << "loaded a malformed model from " << path;
  return error;
}

std::string syntheticDir(const SyntheticSpec &spec, DType dtype, int shards) {
  std::string dir = nibble::testdata::makeTempDir("hf");
  std::string error;
  EXPECT_TRUE(nibble::testdata::writeSyntheticHF(dir, spec, dtype, shards, error))
      << error;
  return dir;
}

TEST(LoaderTest, SharedLlama2cCheckpoint) {
  NIBBLE_REQUIRE_SHARED(shared);
  auto m = loadOk(shared + "/models/stories260K/stories260K.bin");
  ASSERT_TRUE(m);
  const LlamaConfig &c = m->config();
  EXPECT_EQ(m->format(), "llama2c");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hiddenDim, 172);
  EXPECT_EQ(c.numLayers, 5);
  EXPECT_EQ(c.numHeads, 8);
  EXPECT_EQ(c.numKVHeads, 4);
  EXPECT_EQ(c.vocabSize, 512);
  EXPECT_EQ(c.maxSeqLen, 512);
  EXPECT_TRUE(c.tiedEmbeddings);
  EXPECT_EQ(c.ropePairing, RopePairing::Interleaved);
  // Stacked arrays become per-layer views at the right offsets: wq of layer
  // 1 starts after the embedding, rms_att of all layers and wq of layer 0.
  const TensorView &wq1 = m->get("model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(wq1.fileOffset, 28u + 4u * (512 * 64 + 5 * 64 + 64 * 64));
  EXPECT_EQ(wq1.shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(&m->lmHead(), &m->get("model.embed_tokens.weight"));
}

TEST(LoaderTest, SharedHuggingFaceDirectory) {
  NIBBLE_REQUIRE_SHARED(shared);
  auto m = loadOk(shared + "/models/tinystories-656k");
  ASSERT_TRUE(m);
  const LlamaConfig &c = m->config();
  EXPECT_EQ(m->format(), "huggingface");
  EXPECT_EQ(c.dim, 128);
  EXPECT_EQ(c.hiddenDim, 384);
  EXPECT_EQ(c.numLayers, 2);
  EXPECT_EQ(c.numHeads, 8);
  EXPECT_EQ(c.numKVHeads, 4);
  EXPECT_EQ(c.headDim, 16);
  EXPECT_EQ(c.vocabSize, 2048);
  EXPECT_DOUBLE_EQ(c.normEps, 1e-6);
  EXPECT_TRUE(c.tiedEmbeddings);
  EXPECT_EQ(c.ropePairing, RopePairing::RotateHalf);
  EXPECT_EQ(c.bosId, 1);
  EXPECT_EQ(c.eosId, 2);
  // The file stores the tied matrix once, as lm_head.weight.
  EXPECT_EQ(m->get("model.embed_tokens.weight").data,
            m->get("lm_head.weight").data);
}

// f16, bf16 and sharded twins of one f32 checkpoint hold the same values.
TEST(LoaderTest, HalfPrecisionAndShardedTwinsMatchF32) {
  SyntheticSpec spec;
  auto f32 = loadOk(syntheticDir(spec, DType::F32, 1));
  ASSERT_TRUE(f32);
  for (auto [dtype, shards] : {std::pair{DType::F16, 1}, {DType::BF16, 1},
                               {DType::F32, 3}, {DType::BF16, 2}}) {
    auto twin = loadOk(syntheticDir(spec, dtype, shards));
    ASSERT_TRUE(twin);
    ASSERT_EQ(twin->tensors().size(), f32->tensors().size());
    for (const auto &[name, t] : f32->tensors()) {
      const TensorView *u = twin->find(name);
      ASSERT_TRUE(u) << name;
      EXPECT_EQ(u->dtype, dtype);
      std::vector<float> a, b;
      ASSERT_TRUE(t.toFloat(a));
      ASSERT_TRUE(u->toFloat(b));
      ASSERT_EQ(a, b) << name << " as " << dtypeName(dtype) << " in "
                      << shards << " shard(s)";
    }
  }
}

TEST(LoaderTest, ConfigFieldsAndRopeScaling) {
  SyntheticSpec spec;
  spec.ropeScalingJson = R"({"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 32})";
  auto m = loadOk(syntheticDir(spec, DType::F32, 1));
  ASSERT_TRUE(m);
  const LlamaConfig &c = m->config();
  ASSERT_EQ(c.ropeScaling.kind, RopeScaling::Kind::Llama3);
  EXPECT_EQ(c.ropeScaling.originalMaxPositions, 32);
  LlamaConfig plain = c;
  plain.ropeScaling = {};
  auto base = plain.ropeInverseFrequencies(); // head_dim 8: 1, 0.1, 0.01, 0.001
  ASSERT_EQ(base.size(), 4u);
  EXPECT_FLOAT_EQ(base[1], 0.1f);
  // Wavelength 2*pi/f against 32/4 = 8 and 32/1 = 32: the fastest
  // frequency (wavelength 6.3) is kept, the slower ones divided by 8.
  auto scaled = c.ropeInverseFrequencies();
  EXPECT_EQ(scaled[0], base[0]);
  for (int i = 1; i < 4; ++i)
    EXPECT_FLOAT_EQ(scaled[i], base[i] / 8.0f) << i;
  // With a 16-token original context the first lies between 16/4 and 16/1
  // and is blended: s = (16 / (2 pi) - 1) / 3, f = (1 - s) / 8 + s.
  LlamaConfig mid = c;
  mid.ropeScaling.originalMaxPositions = 16;
  double sm = (16.0 / (2 * M_PI) - 1.0) / 3.0;
  EXPECT_NEAR(mid.ropeInverseFrequencies()[0], (1 - sm) / 8 + sm, 1e-6);
  // Linear scaling divides every frequency.
  LlamaConfig lin = plain;
  lin.ropeScaling.kind = RopeScaling::Kind::Linear;
  lin.ropeScaling.factor = 2.0;
  EXPECT_FLOAT_EQ(lin.ropeInverseFrequencies()[2], base[2] / 2.0f);
}

TEST(LoaderTest, ConfigErrors) {
  std::string dir = syntheticDir(SyntheticSpec{}, DType::F32, 1);
  std::string good = nibble::testdata::readText(dir + "/config.json");
  auto withConfig = [&](const std::string &text) {
    nibble::testdata::writeText(dir + "/config.json", text);
    return loadError(dir);
  };
  auto replace = [&](const std::string &from, const std::string &to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  std::string e = withConfig(replace("\"hidden_size\": 32,", ""));
  EXPECT_NE(e.find("config.json: required field 'hidden_size' is missing"),
            std::string::npos)
      << e;
  e = withConfig(replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": \"2\""));
  EXPECT_NE(e.find("field 'num_hidden_layers' must be an integer"),
            std::string::npos)
      << e;
  e = withConfig(replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"));
  EXPECT_NE(e.find("must be a multiple of key/value heads"), std::string::npos) << e;
  e = withConfig(replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 2}"));
  EXPECT_NE(e.find("rope_scaling type 'yarn' is not supported"), std::string::npos) << e;
  e = withConfig(replace("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""));
  EXPECT_NE(e.find("hidden_act 'gelu'"), std::string::npos) << e;
  e = withConfig("{\"hidden_size\": 32,");
  EXPECT_NE(e.find("config.json: not valid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("byte offset"), std::string::npos) << e;
  e = withConfig("{\"hidden_size\": 1e99999}");
  EXPECT_NE(e.find("config.json: not valid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("number overflow"), std::string::npos) << e;
  e = withConfig("[]");
  EXPECT_NE(e.find("expected a JSON object"), std::string::npos) << e;
}

TEST(LoaderTest, MissingTensorAndShapeMismatch) {
  SyntheticSpec spec;
  std::string dir = syntheticDir(spec, DType::F32, 1);
  // Rewrite the file without one tensor.
  std::string error;
  auto file = MappedFile::open(dir + "/model.safetensors", error);
  ASSERT_TRUE(file) << error;
  auto header = parseSafetensors(file->data(), file->size(), "m", error);
  ASSERT_TRUE(header) << error;
  std::vector<SafetensorsWriteEntry> keep;
  for (const auto &e : header->entries)
    if (e.name != "model.layers.1.mlp.up_proj.weight")
      keep.push_back({e.name, e.dtype, e.shape,
                      file->data() + header->dataOffset() + e.begin});
  std::string dir2 = nibble::testdata::makeTempDir("hf-missing");
  nibble::testdata::writeText(dir2 + "/config.json",
                             nibble::testdata::readText(dir + "/config.json"));
  ASSERT_TRUE(writeSafetensors(dir2 + "/model.safetensors", keep, error)) << error;
  std::string e = loadError(dir2);
  EXPECT_NE(e.find("tensor 'model.layers.1.mlp.up_proj.weight' is missing"),
            std::string::npos)
      << e;
  // A config that disagrees with the tensors names the tensor and shapes.
  std::string cfg = nibble::testdata::readText(dir + "/config.json");
  cfg.replace(cfg.find("\"intermediate_size\": 48"), 23, "\"intermediate_size\": 40");
  nibble::testdata::writeText(dir + "/config.json", cfg);
  e = loadError(dir);
  EXPECT_NE(e.find("has shape [48, 32], expected [40, 32]"), std::string::npos) << e;
  EXPECT_NE(e.find("model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight'"),
            std::string::npos) << e;
}

TEST(LoaderTest, ShardIndexErrors) {
  std::string dir = syntheticDir(SyntheticSpec{}, DType::F32, 2);
  std::string index = nibble::testdata::readText(dir + "/model.safetensors.index.json");
  std::string broken = index;
  broken.replace(broken.find("model-00002-of-00002"), 20, "model-00003-of-00002");
  nibble::testdata::writeText(dir + "/model.safetensors.index.json", broken);
  std::string e = loadError(dir);
  EXPECT_NE(e.find("cannot open " + dir + "/model-00003-of-00002.safetensors"),
            std::string::npos)
      << e;
  broken = index;
  broken.replace(broken.find("\"weight_map\""), 12, "\"weights\"");
  nibble::testdata::writeText(dir + "/model.safetensors.index.json", broken);
  e = loadError(dir);
  EXPECT_NE(e.find("'weight_map' is missing"), std::string::npos) << e;
  std::remove((dir + "/model.safetensors.index.json").c_str());
  e = loadError(dir);
  EXPECT_NE(e.find("neither model.safetensors nor"), std::string::npos) << e;
}

// llama2.c files from a valid header and a buffer of the right size.
std::vector<uint8_t> llama2cFile(std::vector<int32_t> header, size_t floats) {
  std::vector<uint8_t> f(28 + 4 * floats, 0);
  std::memcpy(f.data(), header.data(), 28);
  return f;
}

std::string llama2cError(const std::vector<uint8_t> &bytes) {
  std::string path = nibble::testdata::makeTempDir("l2c") + "/m.bin";
  nibble::testdata::writeText(path, std::string(bytes.begin(), bytes.end()));
  std::string e = loadError(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  return e;
}

TEST(LoaderTest, Llama2cErrors) {
  // dim 8, hidden 12, 1 layer, 2 heads, 1 kv head, vocab 10, seq 4.
  std::vector<int32_t> h = {8, 12, 1, 2, 1, 10, 4};
  const size_t kv = 4, floats = 10 * 8 + 8 + 64 + 2 * kv * 8 + 64 + 8 +
                                3 * 12 * 8 + 8 + 4 * 2 * 2;
  {
    std::string path = nibble::testdata::makeTempDir("l2c") + "/ok.bin";
    auto f = llama2cFile(h, floats);
    nibble::testdata::writeText(path, std::string(f.begin(), f.end()));
    ASSERT_TRUE(loadOk(path));
  }
  auto f = llama2cFile(h, floats);
  f.resize(20);
  EXPECT_NE(llama2cError(f).find("too short for the 28-byte"), std::string::npos);
  f = llama2cFile(h, floats - 5);
  std::string e = llama2cError(f);
  EXPECT_NE(e.find("tensor freq_cis_imag [4, 2] needs bytes"), std::string::npos) << e;
  f = llama2cFile(h, floats + 2);
  EXPECT_NE(llama2cError(f).find("8 unexpected bytes after the last tensor"),
            std::string::npos);
  auto bad = h;
  bad[3] = 0;
  e = llama2cError(llama2cFile(bad, floats));
  EXPECT_NE(e.find("n_heads is 0"), std::string::npos) << e;
  EXPECT_NE(e.find("file offset 12"), std::string::npos) << e;
  bad = h;
  bad[4] = 3;
  EXPECT_NE(llama2cError(llama2cFile(bad, floats)).find("multiple of key/value heads"),
            std::string::npos);
  // Unshared classifier: a negative vocab needs the extra wcls tensor.
  bad = h;
  bad[5] = -10;
  EXPECT_NE(llama2cError(llama2cFile(bad, floats)).find("tensor wcls"),
            std::string::npos);
  {
    std::string path = nibble::testdata::makeTempDir("l2c") + "/untied.bin";
    auto g = llama2cFile(bad, floats + 80);
    nibble::testdata::writeText(path, std::string(g.begin(), g.end()));
    auto m = loadOk(path);
    ASSERT_TRUE(m);
    EXPECT_FALSE(m->config().tiedEmbeddings);
    EXPECT_EQ(m->lmHead().fileOffset, 28u + 4 * floats);
  }
  f = llama2cFile(h, floats);
  std::memcpy(f.data(), "24ka\x02\0\0\0", 8);
  EXPECT_NE(llama2cError(f).find("version 2 export"), std::string::npos);
  EXPECT_NE(loadError("/nonexistent/model.bin").find("cannot open"),
            std::string::npos);
}

} // namespace
