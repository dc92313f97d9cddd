//===- FloatModelTest.cpp - Float IR of the decoder == the C++ reference --===//
//
// Builds the float IR of a model, binds its checkpoint weights, lowers it
// with the reference pipeline, JIT-compiles it and compares the logits of a
// 64-token prompt with the plain C++ forward pass.
//
//===----------------------------------------------------------------------===//

#include "JitSupport.h"
#include "TestData.h"

#include "nibble/Calibration/Calibrate.h"
#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Import/FloatModel.h"
#include "nibble/Pipelines/Pipelines.h"
#include "nibble/Quant/Weights.h"
#include "nibble/Reference/LlamaReference.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "llvm/Support/TargetSelect.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

using namespace nibble;
using nibble::jit::Context;
using nibble::jit::runCompiled;

namespace {

struct Comparison {
  float maxDiff = 0, range = 0;
  int argmaxMismatches = 0;
};

Comparison compare(const model::Model &m, const std::vector<int32_t> &tokens) {
  Context c;
  std::string error;
  import::FloatModelOptions opts;
  opts.seqLen = int64_t(tokens.size());
  auto module = import::buildFloatModel(*c.ctx, m, opts, error);
  EXPECT_TRUE(module) << error;
  if (!module)
    return {};
  EXPECT_TRUE(import::bindWeights(*module, m, /*copy=*/false, error)) << error;
  const int64_t V = m.config().vocabSize;
  std::vector<float> got = runCompiled(*module, tokens, V);

  reference::LlamaReference ref(m);
  std::vector<float> want;
  EXPECT_TRUE(ref.prefill(tokens, &want, error)) << error;
  Comparison r;
  if (got.size() != want.size()) {
    ADD_FAILURE() << "logit counts differ";
    return r;
  }
  float lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < want.size(); ++i) {
    lo = std::min(lo, want[i]);
    hi = std::max(hi, want[i]);
    r.maxDiff = std::max(r.maxDiff, std::fabs(got[i] - want[i]));
  }
  r.range = hi - lo;
  for (size_t t = 0; t < tokens.size(); ++t) {
    auto g = got.begin() + t * V, w = want.begin() + t * V;
    if (std::max_element(g, g + V) - g != std::max_element(w, w + V) - w)
      ++r.argmaxMismatches;
  }
  return r;
}

/// BOS + the start of the dev text, 64 tokens.
std::vector<int32_t> promptTokens(const std::string &shared,
                                  const std::string &tokPath) {
  std::string error;
  auto tok = tokenizer::loadTokenizer(tokPath, error);
  EXPECT_TRUE(tok) << error;
  if (!tok)
    return {};
  std::string text = testdata::readText(shared + "/data/tinystories_dev.txt");
  std::vector<int32_t> ids = tok->encode(text.substr(0, 2000), /*addBos=*/true);
  ids.resize(64);
  return ids;
}

TEST(FloatModelTest, Stories260KMatchesReference) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string error;
  auto m =
      model::Model::load(shared + "/models/stories260K/stories260K.bin", error);
  ASSERT_TRUE(m) << error;
  auto tokens = promptTokens(shared, shared + "/models/stories260K/tok512.bin");
  ASSERT_EQ(tokens.size(), 64u);
  Comparison r = compare(*m, tokens);
  EXPECT_LE(r.maxDiff, 1e-4f * r.range) << "range " << r.range;
  EXPECT_EQ(r.argmaxMismatches, 0);
  std::printf("stories260K: max |diff| %g over logit range %g\n", r.maxDiff,
              r.range);
}

TEST(FloatModelTest, TinyStories656KMatchesReference) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string dir = shared + "/models/tinystories-656k";
  std::string error;
  auto m = model::Model::load(dir, error);
  ASSERT_TRUE(m) << error;
  auto tokens = promptTokens(shared, dir + "/tokenizer.json");
  ASSERT_EQ(tokens.size(), 64u);
  Comparison r = compare(*m, tokens);
  EXPECT_LE(r.maxDiff, 1e-4f * r.range) << "range " << r.range;
  EXPECT_EQ(r.argmaxMismatches, 0);
  std::printf("tinystories-656k: max |diff| %g over logit range %g\n",
              r.maxDiff, r.range);
}

// The KV-cache step functions the runtime calls: a prefill chunk of 8 and a
// decode step, run as 2 chunks + 48 steps, reproduce the whole-sequence
// logits of the reference at every position.
void checkSteps(const model::Model &m, const std::vector<int32_t> &tokens,
                std::optional<formats::Format> kvFormat = std::nullopt,
                const std::string &passes = "", float tolerance = 1e-5f) {
  Context c;
  std::string error;
  const auto &cfg = m.config();
  import::FloatModelOptions prefill;
  prefill.funcName = "prefill";
  prefill.kvCache = true;
  prefill.seqLen = 8;
  prefill.contextLen = 96;
  prefill.kvFormat = kvFormat;
  auto module = import::buildFloatModel(*c.ctx, m, prefill, error);
  ASSERT_TRUE(module) << error;
  import::FloatModelOptions decode = prefill;
  decode.funcName = "decode";
  decode.seqLen = 1;
  ASSERT_TRUE(import::appendFloatFunction(*module, m, decode, error)) << error;
  ASSERT_TRUE(import::bindWeights(*module, m, /*copy=*/false, error)) << error;
  if (!passes.empty()) {
    // Unanchored: the passes run on this module.
    mlir::PassManager pm(c.ctx.get());
    ASSERT_TRUE(mlir::succeeded(mlir::parsePassPipeline(passes, pm)));
    ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  }
  const int64_t V = cfg.vocabSize;
  auto steps = nibble::jit::CompiledSteps::create(
      *module, {"prefill", "decode"}, cfg.numLayers, 96, cfg.numKVHeads,
      cfg.headDim, V, "", kvFormat.has_value());
  ASSERT_TRUE(steps);
  std::vector<float> got;
  int64_t pos = 0;
  for (; pos < 16; pos += 8) {
    auto l = steps->run(
        "prefill",
        std::vector<int32_t>(tokens.begin() + pos, tokens.begin() + pos + 8),
        pos);
    got.insert(got.end(), l.begin(), l.end());
  }
  for (; pos < int64_t(tokens.size()); ++pos) {
    auto l = steps->run("decode", {tokens[pos]}, pos);
    got.insert(got.end(), l.begin(), l.end());
  }
  reference::LlamaReference ref(m);
  ref.setKVCacheFormat(kvFormat);
  std::vector<float> want;
  ASSERT_TRUE(ref.prefill(tokens, &want, error)) << error;
  ASSERT_EQ(got.size(), want.size());
  float maxDiff = 0, lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < want.size(); ++i) {
    lo = std::min(lo, want[i]);
    hi = std::max(hi, want[i]);
    maxDiff = std::max(maxDiff, std::fabs(got[i] - want[i]));
  }
  EXPECT_LE(maxDiff, tolerance * (hi - lo)) << "range " << hi - lo;
  std::printf("%s steps (KV cache %s): max |diff| %g over logit range %g\n",
              m.source().c_str(), kvFormat ? kvFormat->name().c_str() : "f32",
              maxDiff, hi - lo);
}

TEST(FloatModelTest, KVCacheStepsMatchReferenceStories260K) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string error;
  auto m =
      model::Model::load(shared + "/models/stories260K/stories260K.bin", error);
  ASSERT_TRUE(m) << error;
  checkSteps(*m,
             promptTokens(shared, shared + "/models/stories260K/tok512.bin"));
}

/// A synthetic f32 model with grouped-query heads and an untied lm_head
/// (128 positions), and `n` tokens cycling through its vocabulary.
std::unique_ptr<model::Model> syntheticSteps(const std::string &tag, int n,
                                             std::vector<int32_t> &tokens) {
  testdata::SyntheticSpec spec;
  spec.maxSeq = 128;
  std::string dir = testdata::makeTempDir(tag);
  std::string error;
  EXPECT_TRUE(
      testdata::writeSyntheticHF(dir, spec, model::DType::F32, 1, error))
      << error;
  auto m = model::Model::load(dir, error);
  EXPECT_TRUE(m) << error;
  if (m)
    for (int i = 0; i < n; ++i)
      tokens.push_back((i * 37 + 5) % int32_t(m->config().vocabSize));
  return m;
}

TEST(FloatModelTest, KVCacheStepsMatchReferenceSynthetic) {
  std::vector<int32_t> tokens;
  auto m = syntheticSteps("steps", 64, tokens);
  ASSERT_TRUE(m);
  checkSteps(*m, tokens);
}

// SmoothQuant folds 1/s into the producer of each input set; with a prefill
// and a decode function over the same weights, each function's producer is
// its own (a shared lookup by name divided one function's v_proj rows twice
// and left the other's alone). Folded smoothing is exact up to rounding.
TEST(FloatModelTest, SmoothingStepFunctionsKeepsTheModel) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string error;
  auto m = model::Model::load(shared + "/models/stories260K/stories260K.bin",
                              error);
  ASSERT_TRUE(m) << error;
  std::vector<int32_t> tokens =
      promptTokens(shared, shared + "/models/stories260K/tok512.bin");
  calibration::CalibrationOptions opts;
  opts.windows = {0, 2, 32};
  quant::StatsFile stats;
  ASSERT_TRUE(calibration::calibrate(*m, tokens, opts, stats, error)) << error;
  std::string path = testdata::makeTempDir("smooth-steps") + "/s.safetensors";
  ASSERT_TRUE(stats.save(path, error)) << error;
  checkSteps(*m, tokens, std::nullopt,
             "nibble-smooth{method=smoothquant alpha=0.5 stats=" + path + "}",
             1e-4f);
}

// A quantized KV cache (codes and per-(position, head) scales) computes what
// the reference computes with the same cache rounding, for an integer and a
// float format; and it is not the float cache: the logits differ from the
// float reference.
TEST(FloatModelTest, QuantizedKVCacheStepsMatchReference) {
  std::vector<int32_t> tokens;
  auto m = syntheticSteps("steps-kv", 40, tokens);
  ASSERT_TRUE(m);
  std::string error;
  for (const char *name : {"int8", "e4m3fn"}) {
    SCOPED_TRACE(name);
    auto f = formats::Format::byName(name);
    ASSERT_TRUE(f);
    checkSteps(*m, tokens, f);
  }
  // The cache rounding is visible: the int4 cache's reference logits are
  // not the float ones.
  reference::LlamaReference plain(*m), quant(*m);
  quant.setKVCacheFormat(formats::Format::byName("int4"));
  std::vector<float> a, b;
  ASSERT_TRUE(plain.prefill(tokens, &a, error)) << error;
  ASSERT_TRUE(quant.prefill(tokens, &b, error)) << error;
  float diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, std::fabs(a[i] - b[i]));
  EXPECT_GT(diff, 0.0f);
}

// bf16 weights (widened in the IR), an untied lm_head and llama3 RoPE
// scaling, none of which the shared models exercise.
TEST(FloatModelTest, SyntheticBF16UntiedLlama3Scaling) {
  testdata::SyntheticSpec spec;
  spec.tied = false;
  spec.ropeScalingJson = R"({"rope_type": "llama3", "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 16})";
  std::string dir = testdata::makeTempDir("float-ir");
  std::string error;
  ASSERT_TRUE(
      testdata::writeSyntheticHF(dir, spec, model::DType::BF16, 2, error))
      << error;
  auto m = model::Model::load(dir, error);
  ASSERT_TRUE(m) << error;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 24; ++i)
    tokens.push_back(int32_t((i * 7 + 1) % spec.vocab));
  Comparison r = compare(*m, tokens);
  EXPECT_LE(r.maxDiff, 1e-4f * r.range) << "range " << r.range;
  EXPECT_EQ(r.argmaxMismatches, 0);
}

// The printed module names its weights and holds none of their bytes; it
// parses back, and binding checks names, shapes and element types.
TEST(FloatModelTest, PrintedIRHoldsNoWeightsAndBindingIsChecked) {
  testdata::SyntheticSpec spec;
  std::string dir = testdata::makeTempDir("float-ir");
  std::string error;
  ASSERT_TRUE(
      testdata::writeSyntheticHF(dir, spec, model::DType::F16, 1, error));
  auto m = model::Model::load(dir, error);
  ASSERT_TRUE(m) << error;
  Context c;
  import::FloatModelOptions opts;
  opts.seqLen = 8;
  auto module = import::buildFloatModel(*c.ctx, *m, opts, error);
  ASSERT_TRUE(module) << error;
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  EXPECT_EQ(text.find("dialect_resources"), std::string::npos);
  EXPECT_NE(text.find("dense_resource<model.layers.1.mlp.down_proj.weight> : "
                      "tensor<32x48xf16>"),
            std::string::npos);
  EXPECT_NE(text.find("nibble.linear = \"model.layers.0.self_attn.q_proj\""),
            std::string::npos);
  EXPECT_LT(text.size(), 64u * 1024) << "weights leaked into the text";

  // Parse it back in a fresh context and bind to a model whose shapes
  // differ: the error names the resource and both shapes.
  Context c2;
  auto parsed = mlir::parseSourceString<mlir::ModuleOp>(text, c2.ctx.get());
  ASSERT_TRUE(parsed);
  testdata::SyntheticSpec other = spec;
  other.hidden = 40;
  std::string dir2 = testdata::makeTempDir("float-ir");
  ASSERT_TRUE(
      testdata::writeSyntheticHF(dir2, other, model::DType::F16, 1, error));
  auto m2 = model::Model::load(dir2, error);
  ASSERT_TRUE(m2) << error;
  EXPECT_FALSE(import::bindWeights(*parsed, *m2, true, error));
  EXPECT_NE(error.find("dense_resource<model.layers.0.mlp.gate_proj.weight>: "
                       "the IR expects tensor<48x32xf16>"),
            std::string::npos)
      << error;
  // Same shapes but f32 in the checkpoint: the element type is checked too.
  std::string dir3 = testdata::makeTempDir("float-ir");
  ASSERT_TRUE(
      testdata::writeSyntheticHF(dir3, spec, model::DType::F32, 1, error));
  auto m3 = model::Model::load(dir3, error);
  ASSERT_TRUE(m3);
  EXPECT_FALSE(import::bindWeights(*parsed, *m3, true, error));
  EXPECT_NE(error.find("F32"), std::string::npos) << error;
  // The right checkpoint binds.
  EXPECT_TRUE(import::bindWeights(*parsed, *m, true, error)) << error;
}

// nibble-quantize-weights, run on the bound float IR of stories260K with a
// recipe (GPTQ int4 g32 on attention with calibrated Hessians, RTN int8
// per channel on the MLP, lm_head kept in float), gives exactly the logits
// of the C++ reference run on the weights the rounding library produces
// for the same settings: the pass adds nothing numerically of its own.
TEST(QuantizeWeightsTest, PassMatchesTheLibraryOnStories260K) {
  NIBBLE_REQUIRE_SHARED(shared);
  std::string error;
  std::string path = shared + "/models/stories260K/stories260K.bin";
  auto m = model::Model::load(path, error);
  ASSERT_TRUE(m) << error;
  auto tokens = promptTokens(shared, shared + "/models/stories260K/tok512.bin");
  tokens.resize(32);

  // Calibrate on a slice of the dev text that the prompt does not use.
  auto tok = tokenizer::loadTokenizer(shared + "/models/stories260K/tok512.bin",
                                      error);
  ASSERT_TRUE(tok) << error;
  auto calibTokens = tok->encode(
      testdata::readText(shared + "/data/tinystories_dev.txt"), false);
  quant::StatsFile stats;
  calibration::CalibrationOptions copts;
  copts.windows = {4096, 4, 64};
  ASSERT_TRUE(calibration::calibrate(*m, calibTokens, copts, stats, error))
      << error;
  std::string dir = testdata::makeTempDir("qw");
  ASSERT_TRUE(stats.save(dir + "/stats.safetensors", error)) << error;
  testdata::writeText(dir + "/recipe.json", R"({"rules": [
    {"match": "^lm_head$", "skip": true},
    {"match": "self_attn", "method": "gptq", "format": "int4", "group": 32},
    {"match": "mlp", "method": "rtn", "format": "int8", "group": 0}]})");

  Context c;
  import::FloatModelOptions opts;
  opts.seqLen = int64_t(tokens.size());
  auto module = import::buildFloatModel(*c.ctx, *m, opts, error);
  ASSERT_TRUE(module) << error;
  ASSERT_TRUE(import::bindWeights(*module, *m, /*copy=*/false, error)) << error;
  mlir::PassManager pm(c.ctx.get());
  ASSERT_TRUE(mlir::succeeded(mlir::parsePassPipeline(
      "nibble-quantize-weights{stats=" + dir +
          "/stats.safetensors recipe=" + dir + "/recipe.json}",
      pm)));
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  int quantized = 0;
  module->walk([&](mlir::nibble::MatmulOp) { ++quantized; });
  EXPECT_EQ(quantized, 35); // 5 layers x 7 linears; lm_head kept
  std::vector<float> got = runCompiled(*module, tokens, m->config().vocabSize);

  // The same rounding through the library, written as a llama2.c file.
  std::map<std::string, std::vector<float>> replaced;
  for (const auto &[name, t] : m->tensors()) {
    std::string layer = calibration::linearName(name);
    bool attn = layer.find("self_attn") != std::string::npos;
    bool mlp = layer.find("mlp") != std::string::npos;
    if (!attn && !mlp)
      continue;
    std::vector<float> w;
    t.toFloat(w);
    quant::MatrixView view{w.data(), t.shape[0], t.shape[1]};
    quant::WeightScheme ws;
    ws.format = formats::Format::intN(attn ? 4 : 8, true);
    ws.groupSize = attn ? 32 : 0;
    std::optional<quant::QuantizedWeight> q;
    if (attn) {
      auto r = quant::quantizeGPTQ(
          view, stats.find(layer)->hessian()->hessian(), ws, {}, error);
      ASSERT_TRUE(r) << error;
      q = r->weight;
    } else {
      q = quant::quantizeRTN(view, ws, {}, error);
      ASSERT_TRUE(q) << error;
    }
    replaced[name] = q->dequantize();
  }
  ASSERT_TRUE(testdata::writeLlama2c(dir + "/q.bin", *m, replaced, error))
      << error;
  auto qm = model::Model::load(dir + "/q.bin", error);
  ASSERT_TRUE(qm) << error;
  reference::LlamaReference ref(*qm);
  std::vector<float> want;
  ASSERT_TRUE(ref.prefill(tokens, &want, error)) << error;
  ASSERT_EQ(got.size(), want.size());
  float maxDiff = 0;
  for (size_t i = 0; i < got.size(); ++i)
    maxDiff = std::max(maxDiff, std::fabs(got[i] - want[i]));
  EXPECT_EQ(maxDiff, 0.0f);
}

TEST(QuantizeWeightsTest, ClearErrors) {
  testdata::SyntheticSpec spec;
  std::string dir = testdata::makeTempDir("qw-err"), error;
  ASSERT_TRUE(
      testdata::writeSyntheticHF(dir, spec, model::DType::F32, 1, error));
  auto m = model::Model::load(dir, error);
  ASSERT_TRUE(m) << error;
  auto run = [&](bool bind, const std::string &pipeline) {
    Context c;
    import::FloatModelOptions opts;
    opts.seqLen = 4;
    auto module = import::buildFloatModel(*c.ctx, *m, opts, error);
    EXPECT_TRUE(module);
    if (bind) {
      EXPECT_TRUE(import::bindWeights(*module, *m, true, error));
    }
    std::string diag;
    mlir::ScopedDiagnosticHandler handler(c.ctx.get(),
                                          [&](mlir::Diagnostic &d) {
                                            diag += d.str() + "\n";
                                            return mlir::success();
                                          });
    mlir::PassManager pm(c.ctx.get());
    EXPECT_TRUE(mlir::succeeded(mlir::parsePassPipeline(pipeline, pm)));
    EXPECT_TRUE(mlir::failed(pm.run(*module)));
    return diag;
  };
  EXPECT_NE(
      run(false, "nibble-quantize-weights").find("has no data: bind it first"),
      std::string::npos);
  EXPECT_NE(run(true, "nibble-quantize-weights{method=gptq}")
                .find("needs calibration statistics"),
            std::string::npos);
  EXPECT_NE(
      run(true, "nibble-quantize-weights{group=5}").find("does not divide"),
      std::string::npos);
  EXPECT_NE(run(true, "nibble-quantize-weights{symmetric=false format=e2m1fn}")
                .find("integer"),
            std::string::npos);
  EXPECT_NE(
      run(true, "nibble-quantize-weights{method=magic}").find("unknown method"),
      std::string::npos);
  testdata::writeText(dir + "/bad.json",
                      R"({"rules": [{"match": "(", "group": 4}]})");
  EXPECT_NE(run(true, "nibble-quantize-weights{recipe=" + dir + "/bad.json}")
                .find("bad regex"),
            std::string::npos);
  testdata::writeText(dir + "/bad2.json",
                      R"({"rules": [{"match": "x", "bits": 4}]})");
  EXPECT_NE(run(true, "nibble-quantize-weights{recipe=" + dir + "/bad2.json}")
                .find("unknown key 'bits'"),
            std::string::npos);
}

} // namespace
