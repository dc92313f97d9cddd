//===- quant-import.cpp - Model import and the float reference ------------===//
//
//   quant-import MODEL --describe
//   quant-import MODEL --emit-ir [--seq-len N] [-o FILE]
//   quant-import MODEL --generate N [--prompt TEXT] [--tokenizer PATH]
//   quant-import DIR --synthetic [--seed S] [--synthetic-shape SPEC]
//
// MODEL is a Hugging Face directory or a llama2.c checkpoint. --emit-ir
// prints the float IR of the decoder with weights referenced by name (bind
// them with quant-opt --nibble-bind-weights=model=MODEL). --generate decodes
// greedily with the plain C++ reference forward pass (the oracle).
//
//===----------------------------------------------------------------------===//

#include "nibble/Import/FloatModel.h"
#include "nibble/Support/File.h"
#include "nibble/Model/MappedFile.h"
#include "nibble/Model/Synthetic.h"
#include "nibble/Reference/LlamaReference.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"


using namespace nibble;
namespace cl = llvm::cl;

static cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                                      cl::desc("<model dir or llama2.c .bin>"));
static cl::opt<bool> describe("describe",
                              cl::desc("Print the architecture and tensors"));
static cl::opt<bool> emitIR("emit-ir",
                            cl::desc("Print the float IR of the decoder"));
static cl::opt<int64_t> seqLen("seq-len", cl::init(64),
                               cl::desc("Tokens per call of the emitted IR"));
static cl::opt<std::string> outputPath("o", cl::init("-"),
                                       cl::desc("Output file (default stdout)"));
static cl::opt<int64_t>
    generate("generate", cl::init(0),
             cl::desc("Greedily generate N tokens with the C++ reference"));
static cl::opt<std::string> prompt("prompt", cl::init(""),
                                   cl::desc("Prompt text (default: BOS only)"));
static cl::opt<std::string>
    tokenizerPath("tokenizer", cl::init(""),
                  cl::desc("Tokenizer file (default: the model directory's, "
                           "or tokenizer.bin / tok<vocab>.bin next to a "
                           "llama2.c checkpoint)"));

static cl::opt<bool> synthetic(
    "synthetic",
    cl::desc("Write the project's deterministic synthetic model (untrained, "
             "random weights, byte + word vocabulary) into the positional "
             "directory: model.bin and tokenizer.bin, llama2.c format"));
static cl::opt<uint64_t> seed("seed", cl::init(1),
                              cl::desc("Seed of --synthetic"));
static cl::opt<std::string> syntheticShape(
    "synthetic-shape", cl::init("default"),
    cl::desc("Architecture of --synthetic: default or llama2-7b, then "
             "optional ,KEY=VALUE overrides (dim, hidden, layers, heads, "
             "kv-heads, vocab, context), e.g. llama2-7b,layers=2"));

static int fail(const std::string &msg) {
  llvm::errs() << "quant-import: error: " << msg << "\n";
  return 1;
}

static int runDescribe(const model::Model &m) {
  const model::LlamaConfig &c = m.config();
  llvm::outs() << "source: " << m.source() << "\nformat: " << m.format()
               << "\ndim: " << c.dim << "\nhidden_dim: " << c.hiddenDim
               << "\nlayers: " << c.numLayers << "\nheads: " << c.numHeads
               << "\nkv_heads: " << c.numKVHeads << "\nhead_dim: " << c.headDim
               << "\nvocab: " << c.vocabSize << "\nmax_seq_len: " << c.maxSeqLen
               << "\nnorm_eps: " << c.normEps << "\nrope_theta: " << c.ropeTheta
               << "\nrope_pairing: "
               << (c.ropePairing == model::RopePairing::Interleaved
                       ? "interleaved"
                       : "rotate_half")
               << "\ntied_embeddings: " << (c.tiedEmbeddings ? "yes" : "no")
               << "\nbos: " << c.bosId << "\neos: " << c.eosId << "\ntensors:\n";
  int64_t params = 0;
  for (const auto &[name, t] : m.tensors()) {
    llvm::outs() << "  " << name << " " << model::dtypeName(t.dtype) << " "
                 << model::shapeString(t.shape) << " @" << t.fileOffset << "\n";
    params += t.numElements();
  }
  llvm::outs() << "parameters (as stored): " << params << "\n";
  return 0;
}

static int runEmitIR(const model::Model &m) {
  mlir::MLIRContext ctx;
  std::string error;
  import::FloatModelOptions opts;
  opts.seqLen = seqLen;
  auto module = import::buildFloatModel(ctx, m, opts, error);
  if (!module)
    return fail(error);
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  if (outputPath == "-") {
    llvm::outs() << text;
    return 0;
  }
  if (!support::writeFileAtomic(outputPath, text.data(), text.size(), error))
    return fail(error);
  return 0;
}

static int runGenerate(const model::Model &m) {
  std::string error;
  std::string tokPath = tokenizerPath.empty() ? m.defaultTokenizerPath()
                                              : std::string(tokenizerPath);
  if (tokPath.empty())
    return fail("no tokenizer found next to " + m.source() +
                "; pass --tokenizer PATH");
  auto tok = tokenizer::loadTokenizer(tokPath, error);
  if (!tok)
    return fail(error);
  if (tok->vocabSize() != m.config().vocabSize)
    return fail(tokPath + " has " + std::to_string(tok->vocabSize()) +
                " tokens but the model's vocabulary has " +
                std::to_string(m.config().vocabSize));
  std::vector<int32_t> ids = tok->encode(prompt, /*addBos=*/true);
  if (ids.empty() || ids[0] != m.config().bosId)
    ids.insert(ids.begin(), m.config().bosId);
  reference::LlamaReference ref(m);
  std::vector<int32_t> out = reference::generateGreedy(ref, ids, generate, error);
  if (out.empty())
    return fail(error);
  llvm::outs() << tok->decode(out) << "\n";
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "quant-import: load a checkpoint, print it, emit its float IR, or run "
      "the C++ reference\n");
  std::string error;
  if (syntheticShape.getNumOccurrences() && !synthetic)
    return fail("--synthetic-shape is an option of --synthetic");
  if (synthetic) {
    model::SyntheticShape shape;
    if (!model::parseSyntheticShape(syntheticShape, shape, error) ||
        !model::writeSyntheticModel(modelPath, seed, shape, error))
      return fail(error);
    llvm::outs() << "wrote " << modelPath << "/model.bin and " << modelPath
                 << "/tokenizer.bin (synthetic, seed " << seed << ", dim "
                 << shape.dim << ", hidden " << shape.hidden << ", "
                 << shape.layers << " layers, " << shape.heads << " heads, "
                 << shape.kvHeads << " kv heads, vocab " << shape.vocab
                 << ", context " << shape.context << ", "
                 << model::syntheticModelBytes(shape) << " bytes)\n";
    return 0;
  }
  auto m = model::Model::load(modelPath, error);
  if (!m)
    return fail(error);
  if (describe)
    return runDescribe(*m);
  if (emitIR)
    return runEmitIR(*m);
  if (generate > 0)
    return runGenerate(*m);
  return fail("nothing to do: pass --describe, --emit-ir or --generate N");
}
