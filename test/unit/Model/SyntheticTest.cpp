//===- SyntheticTest.cpp - Synthetic model shapes and files ---------------===//

#include "TestData.h"

#include "nibble/Model/Model.h"
#include "nibble/Model/Synthetic.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "gtest/gtest.h"

#include <sys/stat.h>

using namespace nibble;
using namespace nibble::model;

namespace {

SyntheticShape parsed(const std::string &spec) {
  SyntheticShape shape;
  std::string error;
  EXPECT_TRUE(parseSyntheticShape(spec, shape, error)) << spec << ": " << error;
  return shape;
}

std::string parseError(const std::string &spec) {
  SyntheticShape shape;
  std::string error;
  EXPECT_FALSE(parseSyntheticShape(spec, shape, error)) << spec;
  return error;
}

TEST(SyntheticShapeTest, NamesAndOverrides) {
  SyntheticShape d = parsed("default");
  EXPECT_EQ(d.dim, 64);
  EXPECT_EQ(d.vocab, 512);
  SyntheticShape l = parsed("llama2-7b,layers=2,context=512");
  EXPECT_EQ(l.dim, 4096);
  EXPECT_EQ(l.hidden, 11008);
  EXPECT_EQ(l.heads, 32);
  EXPECT_EQ(l.kvHeads, 32);
  EXPECT_EQ(l.vocab, 32000);
  EXPECT_EQ(l.layers, 2);
  EXPECT_EQ(l.context, 512);
  // Overrides alone start from the default shape.
  SyntheticShape o = parsed("dim=128,kv-heads=4");
  EXPECT_EQ(o.dim, 128);
  EXPECT_EQ(o.kvHeads, 4);
  EXPECT_EQ(o.hidden, 192);
  // Llama-2-7B with two layers: 32000*4096 + 2 * (2*4096 + 4*4096^2 +
  // 3*11008*4096) + 4096 + 512*128 floats after the 28-byte header.
  EXPECT_EQ(syntheticModelBytes(l),
            28 + 4ull * (32000ull * 4096 + 2 * (8192ull + 4ull * 4096 * 4096 +
                                                 3ull * 11008 * 4096) +
                         4096 + 512 * 128));
}

TEST(SyntheticShapeTest, ErrorsNameThePart) {
  EXPECT_NE(parseError("llama3").find("unknown name \"llama3\""),
            std::string::npos);
  EXPECT_NE(parseError("default,depth=3").find("\"depth=3\" is not KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(parseError("default,dim=x").find("dim \"x\" is not an integer"),
            std::string::npos);
  EXPECT_NE(parseError("default,layers=0").find("layers \"0\""),
            std::string::npos);
  EXPECT_NE(parseError("dim=102").find("not a multiple of heads 4"),
            std::string::npos);
  EXPECT_NE(parseError("heads=8,kv-heads=3").find("kv-heads 3"),
            std::string::npos);
  EXPECT_NE(parseError("dim=12,heads=4").find("head width 3 is odd"),
            std::string::npos);
  EXPECT_NE(parseError("vocab=100").find("under 259"), std::string::npos);
}

TEST(SyntheticShapeTest, WrittenModelLoadsWithItsShape) {
  std::string dir = testdata::makeTempDir("synthetic");
  SyntheticShape shape = parsed("dim=96,hidden=160,layers=2,heads=6,"
                                "kv-heads=3,vocab=700,context=40");
  std::string error;
  ASSERT_TRUE(writeSyntheticModel(dir, 7, shape, error)) << error;
  struct stat st;
  ASSERT_EQ(::stat((dir + "/model.bin").c_str(), &st), 0);
  EXPECT_EQ(uint64_t(st.st_size), syntheticModelBytes(shape));
  auto m = Model::load(dir + "/model.bin", error);
  ASSERT_TRUE(m) << error;
  const LlamaConfig &c = m->config();
  EXPECT_EQ(c.dim, 96);
  EXPECT_EQ(c.hiddenDim, 160);
  EXPECT_EQ(c.numLayers, 2);
  EXPECT_EQ(c.numHeads, 6);
  EXPECT_EQ(c.numKVHeads, 3);
  EXPECT_EQ(c.vocabSize, 700);
  EXPECT_EQ(c.maxSeqLen, 40);
  // The vocabulary is filled past the words with numbered pieces.
  auto tok = tokenizer::loadTokenizer(dir + "/tokenizer.bin", error);
  ASSERT_TRUE(tok) << error;
  EXPECT_EQ(tok->vocabSize(), 700);
}

} // namespace
