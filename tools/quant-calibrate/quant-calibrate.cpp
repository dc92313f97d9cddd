//===- quant-calibrate.cpp - Record calibration statistics ----------------===//
//
//   quant-calibrate MODEL --text FILE [--first-token N] [--sequences S]
//                   [--seq-len L] [--no-hessian] -o stats.safetensors
//
// Tokenizes FILE with the model's tokenizer, runs S windows of L tokens
// starting at token N through the float reference and writes the input
// statistics of every linear layer (docs/calibration.md). The file records
// the text's name, sha256, the token slice and counts, so the quantization
// card can say exactly what the model was calibrated on.
//
//===----------------------------------------------------------------------===//

#include "nibble/Calibration/Calibrate.h"
#include "nibble/Support/File.h"
#include "nibble/Model/MappedFile.h"
#include "nibble/Support/Hash.h"
#include "nibble/Support/Progress.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

using namespace nibble;
namespace cl = llvm::cl;

static cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                                      cl::desc("<model dir or llama2.c .bin>"));
static cl::opt<std::string> textPath("text", cl::Required,
                                     cl::desc("Calibration text file"));
static cl::opt<std::string> outputPath("o", cl::Required,
                                       cl::desc("Statistics file to write"));
static cl::opt<std::string> tokenizerPath("tokenizer", cl::init(""),
                                          cl::desc("Tokenizer (default: the model's)"));
static cl::opt<int64_t> firstToken("first-token", cl::init(0),
                                   cl::desc("First token of the slice"));
static cl::opt<int64_t> sequences("sequences", cl::init(16),
                                  cl::desc("Number of windows"));
static cl::opt<int64_t> seqLen("seq-len", cl::init(128),
                               cl::desc("Tokens per window (BOS is prepended)"));
static cl::opt<bool> noHessian("no-hessian",
                               cl::desc("Do not record the GPTQ Hessians"));
static cl::opt<bool> quiet("quiet", cl::desc("No progress output"));

static int fail(const std::string &msg) {
  llvm::errs() << "quant-calibrate: error: " << msg << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-calibrate: record the input statistics "
                              "of every linear layer on real text\n");
  std::string error;
  auto model = model::Model::load(modelPath, error);
  if (!model)
    return fail(error);
  std::string tokPath = tokenizerPath.empty() ? model->defaultTokenizerPath()
                                              : std::string(tokenizerPath);
  if (tokPath.empty())
    return fail("no tokenizer found next to " + model->source() +
                "; pass --tokenizer PATH");
  auto tok = tokenizer::loadTokenizer(tokPath, error);
  if (!tok)
    return fail(error);
  std::string text;
  if (!support::readFile(textPath, text, error))
    return fail(error);
  std::vector<int32_t> tokens = tok->encode(text, /*addBos=*/false);

  calibration::CalibrationOptions opts;
  opts.windows = {firstToken, sequences, seqLen};
  opts.hessians = !noHessian;
  support::Progress progress("calibrating", sequences, quiet);
  opts.progress = [&](int64_t done, int64_t) { progress.update(done); };
  quant::StatsFile stats;
  if (!calibration::calibrate(*model, tokens, opts, stats, error))
    return fail(textPath + ": " + error);
  progress.finish();

  std::string base = textPath;
  if (size_t slash = base.rfind('/'); slash != std::string::npos)
    base = base.substr(slash + 1);
  auto &info = stats.info();
  info["calibration.text"] = base;
  info["calibration.text_sha256"] = support::sha256Hex(text.data(), text.size());
  info["calibration.text_tokens"] = std::to_string(tokens.size());
  info["calibration.slice"] = "tokens [" + std::to_string(opts.windows.firstToken) +
                              ", " + std::to_string(opts.windows.endToken()) + ")";
  info["calibration.windows"] = std::to_string(sequences) + " x " +
                                std::to_string(seqLen) + " tokens, BOS first";
  info["calibration.tokens"] = std::to_string(sequences * seqLen);
  info["calibration.tokenizer"] = tokPath;
  info["model.source"] = model->source();
  if (!stats.save(outputPath, error))
    return fail(error);
  llvm::outs() << "wrote " << outputPath << ": " << stats.layers().size()
               << " layers, " << sequences * seqLen << " tokens from "
               << info["calibration.slice"] << " of " << base << "\n";
  return 0;
}
