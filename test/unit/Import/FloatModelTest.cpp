//===- FloatModelTest.cpp - Float IR of the decoder == the C++ reference --===//
//
// Builds the float IR of a model, binds its checkpoint weights, lowers it
// with the reference pipeline, JIT-compiles it and compares the logits of a
// 64-token prompt with the plain C++ forward pass.
//
//===----------------------------------------------------------------------===//

#include "TestData.h"

#include "nibble/Import/FloatModel.h"
#include "nibble/Pipelines/Pipelines.h"
#include "nibble/Reference/LlamaReference.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/TargetSelect.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

using namespace nibble;

namespace {

template <typename T, int N> struct MemRef {
  T *allocated;
  T *aligned;
  int64_t offset;
  int64_t sizes[N];
  int64_t strides[N];
};

struct Context {
  Context() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    static bool passesRegistered = [] {
      mlir::registerAllPasses();
      mlir::nibble::registerNibblePasses();
      return true;
    }();
    (void)passesRegistered;
    mlir::DialectRegistry registry;
    mlir::registerAllDialects(registry);
    mlir::registerAllExtensions(registry);
    mlir::registerAllToLLVMIRTranslations(registry);
    ctx = std::make_unique<mlir::MLIRContext>(registry);
    ctx->loadAllAvailableDialects();
  }
  std::unique_ptr<mlir::MLIRContext> ctx;
};

/// Lowers `module` with the reference pipeline and runs @forward on
/// `tokens`; returns [T x vocab] logits.
std::vector<float> runCompiled(mlir::ModuleOp module,
                               const std::vector<int32_t> &tokens,
                               int64_t vocab) {
  auto func = module.lookupSymbol<mlir::func::FuncOp>("forward");
  EXPECT_TRUE(func);
  if (!func)
    return {};
  func->setAttr("llvm.emit_c_interface", mlir::UnitAttr::get(module.getContext()));
  mlir::PassManager pm(module.getContext());
  mlir::nibble::ReferencePipelineOptions opts;
  EXPECT_TRUE(mlir::succeeded(mlir::nibble::buildReferenceToLLVMPipeline(pm, opts)));
  if (mlir::failed(pm.run(module))) {
    ADD_FAILURE() << "reference lowering failed";
    return {};
  }
  auto engine = mlir::ExecutionEngine::create(module);
  if (!engine) {
    ADD_FAILURE() << llvm::toString(engine.takeError());
    return {};
  }
  auto sym = (*engine)->lookup("_mlir_ciface_forward");
  if (!sym) {
    ADD_FAILURE() << llvm::toString(sym.takeError());
    return {};
  }
  using Fn = void (*)(MemRef<float, 2> *, MemRef<int32_t, 1> *);
  auto fn = reinterpret_cast<Fn>(*sym);
  std::vector<int32_t> in = tokens;
  MemRef<int32_t, 1> arg{in.data(), in.data(), 0, {int64_t(in.size())}, {1}};
  MemRef<float, 2> result{};
  fn(&result, &arg);
  EXPECT_EQ(result.sizes[0], int64_t(tokens.size()));
  EXPECT_EQ(result.sizes[1], vocab);
  std::vector<float> out(size_t(result.sizes[0] * result.sizes[1]));
  for (int64_t t = 0; t < result.sizes[0]; ++t)
    for (int64_t v = 0; v < result.sizes[1]; ++v)
      out[t * vocab + v] =
          result.aligned[result.offset + t * result.strides[0] + v * result.strides[1]];
  std::free(result.allocated);
  return out;
}

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
  auto m = model::Model::load(shared + "/models/stories260K/stories260K.bin", error);
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
  ASSERT_TRUE(testdata::writeSyntheticHF(dir, spec, model::DType::BF16, 2, error))
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
  ASSERT_TRUE(testdata::writeSyntheticHF(dir, spec, model::DType::F16, 1, error));
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
  ASSERT_TRUE(testdata::writeSyntheticHF(dir2, other, model::DType::F16, 1, error));
  auto m2 = model::Model::load(dir2, error);
  ASSERT_TRUE(m2) << error;
  EXPECT_FALSE(import::bindWeights(*parsed, *m2, true, error));
  EXPECT_NE(error.find("dense_resource<model.layers.0.mlp.gate_proj.weight>: "
                       "the IR expects tensor<48x32xf16>"),
            std::string::npos)
      << error;
  // Same shapes but f32 in the checkpoint: the element type is checked too.
  std::string dir3 = testdata::makeTempDir("float-ir");
  ASSERT_TRUE(testdata::writeSyntheticHF(dir3, spec, model::DType::F32, 1, error));
  auto m3 = model::Model::load(dir3, error);
  ASSERT_TRUE(m3);
  EXPECT_FALSE(import::bindWeights(*parsed, *m3, true, error));
  EXPECT_NE(error.find("F32"), std::string::npos) << error;
  // The right checkpoint binds.
  EXPECT_TRUE(import::bindWeights(*parsed, *m, true, error)) << error;
}

} // namespace
