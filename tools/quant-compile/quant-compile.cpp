//===- quant-compile.cpp - A model to an ahead-of-time bundle -------------===//
//
//   quant-compile MODEL [--calib TEXT] [--recipe R | --format F --method M
//                 --group G [--asymmetric]] [--target T] -o OUT.nbl
//
// Loads the checkpoint, records calibration statistics on a stated leading
// slice of TEXT when the method needs them, builds the decoder's two entry
// points (a prefill chunk and a decode step over a KV cache), quantizes the
// weights, generates kernels for the target, moves the weights out of the
// code, compiles the code to a shared object and writes one bundle
// (docs/bundle.md): manifest with the quantization card, code, weights,
// tokenizer. The output is written atomically and is byte-identical for
// identical inputs.
//
//===----------------------------------------------------------------------===//

#include "CudaBundle.h"
#include "nibble/Bundle/Bundle.h"
#include "nibble/Calibration/Budget.h"
#include "nibble/Calibration/Calibrate.h"
#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Formats/Format.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Import/FloatModel.h"
#include "nibble/Model/Model.h"
#include "nibble/Pipelines/Pipelines.h"
#include "nibble/Quant/Weights.h"
#include "nibble/Support/File.h"
#include "nibble/Support/Hash.h"
#include "nibble/Support/Progress.h"
#include "nibble/Target/TargetSpec.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <cmath>
#include <thread>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

using namespace nibble;
namespace cl = llvm::cl;
using json = nlohmann::ordered_json;

static cl::OptionCategory nibbleCat("quant-compile options");

static cl::opt<std::string> modelPath(cl::cat(nibbleCat), cl::Positional,
                                      cl::Required,
                                      cl::desc("<model dir or llama2.c .bin>"));
static cl::opt<std::string> outputPath(cl::cat(nibbleCat), "o", cl::Required,
                                       cl::desc("Bundle to write (.nbl)"));
static cl::opt<std::string> calibPath(cl::cat(nibbleCat), "calib", cl::init(""),
                                      cl::desc("Calibration text file"));
static cl::opt<int64_t>
    calibFirst(cl::cat(nibbleCat), "calib-first-token", cl::init(0),
               cl::desc("First token of the calibration slice"));
static cl::opt<int64_t> calibSequences(cl::cat(nibbleCat), "calib-sequences",
                                       cl::init(16),
                                       cl::desc("Calibration windows"));
static cl::opt<int64_t> calibSeqLen(cl::cat(nibbleCat), "calib-seq-len",
                                    cl::init(128),
                                    cl::desc("Tokens per calibration window "
                                             "(BOS is prepended)"));
static cl::opt<std::string> formatName(
    cl::cat(nibbleCat), "format", cl::init("int4"),
    cl::desc("Weight format: f32 (no quantization), int2..int8, uint*, "
             "e4m3fn, e5m2, e2m1fn, nf4, or #nibble attribute text"));
static cl::opt<std::string>
    method(cl::cat(nibbleCat), "method", cl::init("rtn"),
           cl::desc("rtn | rtn-mse | imatrix | gptq | awq"));
static cl::opt<int64_t>
    group(cl::cat(nibbleCat), "group", cl::init(32),
          cl::desc("Columns per scale group (0: per channel)"));
static cl::opt<bool> asymmetric(cl::cat(nibbleCat), "asymmetric",
                                cl::desc("Zero points (integer formats)"));
static cl::opt<std::string> scaleStorage(
    cl::cat(nibbleCat), "scale", cl::init("f32"),
    cl::desc("Group scale storage: f32 | e8m0 (power-of-two MX scales: "
             "--format e2m1fn --group 32 is MXFP4) | e4m3 (e4m3 scales times "
             "one f32 scale per tensor: --format e2m1fn --group 16 is "
             "NVFP4-style)"));
static cl::opt<std::string> recipePath(cl::cat(nibbleCat), "recipe",
                                       cl::init(""),
                                       cl::desc("Per-layer recipe (JSON)"));
static cl::opt<std::string>
    targetName(cl::cat(nibbleCat), "target", cl::init("native"),
               cl::desc("Target CPU (see docs/performance.md)"));
static cl::opt<int64_t>
    contextLen(cl::cat(nibbleCat), "context", cl::init(0),
               cl::desc("KV-cache positions (0: the model's "
                        "maximum, at most 2048)"));
static cl::opt<int64_t> prefillChunk(cl::cat(nibbleCat), "prefill-chunk",
                                     cl::init(16),
                                     cl::desc("Tokens per prefill call"));
static cl::opt<std::string>
    tokenizerPath(cl::cat(nibbleCat), "tokenizer", cl::init(""),
                  cl::desc("Tokenizer (default: the model's)"));
static cl::opt<std::string> kvCacheFormat(
    "kv-cache", cl::cat(nibbleCat), cl::init("f32"),
    cl::desc("KV-cache storage: f32, or a format of at most 8 bits (int8, "
             "e4m3fn, e5m2, ...) with one f32 scale per position and kv "
             "head"));
static cl::opt<std::string> actFormat(
    "act", cl::cat(nibbleCat), cl::init("none"),
    cl::desc("Activation quantization of the quantized linears: none, or a "
             "format (int8: W8A8 / W4A8 on the integer-dot path)"));
static cl::opt<std::string> actMode(
    "act-mode", cl::cat(nibbleCat), cl::init("dynamic"),
    cl::desc("dynamic (per token, at run time) | static (per tensor, from "
             "calibration)"));
static cl::opt<double> smoothAlpha(
    "smoothquant", cl::cat(nibbleCat), cl::init(-1.0),
    cl::desc("SmoothQuant migration strength in [0, 1] (negative: off); "
             "needs --calib"));
static cl::opt<double> outlierThreshold(
    "outlier-threshold", cl::cat(nibbleCat), cl::init(0.0),
    cl::desc("Keep input channels with calibrated max |x| above this in f16 "
             "(LLM.int8-style; 0: off); needs --calib"));
static cl::opt<bool> sequentialOff(
    "no-sequential", cl::cat(nibbleCat),
    cl::desc("GPTQ: calibrate every block on float activations instead of "
             "block by block on the already-quantized blocks"));
static cl::opt<std::string> budgetText(
    "budget", cl::cat(nibbleCat), cl::init(""),
    cl::desc("Choose each linear's scheme from --candidates: kl=X (mean KL "
             "vs float <= X nats/token), ppl=+P% (perplexity at most P% "
             "above float) or bpw=B (least KL within B stored bits per "
             "weight); measured on the calibration slice, checked on a "
             "held-out one (docs/accuracy.md)"));
static cl::opt<std::string> candidateList(
    "candidates", cl::cat(nibbleCat),
    cl::init("int8/g0,int4/g128,int4/g32,nf4/g32"),
    cl::desc("--budget candidates: FORMAT/gGROUP[/SCALE] (g0: per "
             "channel; SCALE e8m0 or e4m3), or f32 to allow keeping a layer "
             "in float"));
static cl::opt<int64_t> checkFirst(
    "budget-check-first-token", cl::cat(nibbleCat), cl::init(-1),
    cl::desc("First token of the --budget held-out slice (as many windows "
             "as calibration; default: right after the calibration slice)"));
static cl::opt<std::string> emitPtx(
    cl::cat(nibbleCat), "emit-ptx", cl::init(""),
    cl::desc("With --target cuda-*: also write the bundle's PTX to this file"));
static cl::opt<bool> quiet(cl::cat(nibbleCat), "quiet",
                           cl::desc("No progress output"));

static int fail(const std::string &msg) {
  llvm::errs() << "quant-compile: error: " << msg << "\n";
  return 1;
}

namespace {

/// A value for a textual pass option: as it is, or quoted when it holds
/// what the pass-pipeline parser would split it at (attribute text such
/// as `#nibble.float<e2m2, nonfinite = finite_only>`).
std::string passOption(const std::string &value) {
  if (value.find_first_of(" ,{}") == std::string::npos)
    return value;
  return "\"" + value + "\"";
}

/// Phase timings for the summary.
struct Phases {
  using Clock = std::chrono::steady_clock;
  Clock::time_point start = Clock::now();
  void done(const std::string &what) {
    double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (!quiet)
      llvm::errs() << "quant-compile: " << what << " ("
                   << llvm::format("%.2f", s) << " s)\n";
    start = Clock::now();
  }
};

std::string baseName(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool methodNeedsStats(const std::string &m) {
  return m == "imatrix" || m == "gptq" || m == "awq";
}

/// A temporary file path, removed when this goes out of scope.
struct TempPath {
  std::string path;
  explicit TempPath(const char *suffix) {
    const char *dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") +
                       "/quant-compile-XXXXXX" + suffix;
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    int fd = mkstemps(buf.data(), int(std::strlen(suffix)));
    if (fd >= 0) {
      close(fd);
      path = buf.data();
    }
  }
  ~TempPath() {
    if (!path.empty())
      unlink(path.c_str());
  }
};

/// Sequential GPTQ calibration: for each block, record its linears'
/// statistics on the model whose earlier blocks run with their GPTQ-
/// quantized (dequantized f32) weights, then quantize the block the way
/// nibble-quantize-weights will (same library call, same statistics, so the
/// same codes); lm_head last. Memory: the float copies of the quantized
/// linears (one model's worth of f32 weights).
bool calibrateSequentially(const model::Model &model,
                           const std::vector<int32_t> &tokens,
                           calibration::CalibrationOptions opts,
                           const formats::Format &format,
                           quant::StatsFile &stats, std::string &error) {
  const model::LlamaConfig &cfg = model.config();
  std::map<std::string, std::vector<float>> dequantized;
  support::Progress progress("calibrating block by block", cfg.numLayers + 1,
                             quiet);
  for (int64_t l = 0; l <= cfg.numLayers; ++l) {
    std::vector<std::string> names;
    if (l < cfg.numLayers)
      for (const char *s : model::kBlockLinears)
        names.push_back(model::layerTensorName(l, s));
    else
      names.push_back("lm_head");
    opts.filter = [&](const std::string &n) {
      return std::find(names.begin(), names.end(), n) != names.end();
    };
    opts.overrides.clear();
    for (auto &[n, w] : dequantized)
      opts.overrides[n] = w.data();
    if (!calibration::calibrate(model, tokens, opts, stats, error))
      return false;
    if (l == cfg.numLayers)
      break; // nothing after lm_head reads its output
    for (const std::string &n : names) {
      std::vector<float> w;
      const model::TensorView &t = model.get(n + ".weight");
      if (!t.toFloat(w)) {
        error = n + ".weight: cannot read it as f32";
        return false;
      }
      const quant::LinearStats *ls = stats.find(n);
      if (!ls || !ls->hessian()) {
        error = n + ": no calibration statistics recorded";
        return false;
      }
      quant::WeightScheme scheme;
      scheme.format = format;
      scheme.groupSize = group;
      scheme.symmetric = !asymmetric;
      scheme.scaleStorage = *quant::parseScaleStorage(scaleStorage);
      quant::GPTQOptions o; // the pass's defaults (damp 0.01, no act-order)
      auto r = quant::quantizeGPTQ(quant::MatrixView{w.data(), t.shape[0],
                                                     t.shape[1]},
                                   ls->hessian()->hessian(), scheme, o, error);
      if (!r) {
        error = n + ": " + error;
        return false;
      }
      dequantized[n] = r->weight.dequantize();
    }
    progress.update(l + 1);
  }
  progress.finish();
  return true;
}

/// Per linear (its nibble.linear name), the bytes of weight codes the
/// generated kernels read: the packed constants nibble-generate-kernels
/// made (resources named "<linear>.packed", uniqued with a suffix "_N";
/// linears without a name share "weights").
std::map<std::string, int64_t> packedCodeBytes(mlir::ModuleOp module) {
  std::map<std::string, int64_t> bytes;
  module.walk([&](mlir::arith::ConstantOp c) {
    auto res = llvm::dyn_cast<mlir::DenseResourceElementsAttr>(c.getValue());
    if (!res || !c->hasAttr("nibble.scheme"))
      return;
    llvm::StringRef key = res.getRawHandle().getKey();
    size_t dot = key.rfind(".packed");
    if (dot == llvm::StringRef::npos)
      return;
    bytes.emplace(key.take_front(dot).str(),
                  llvm::cast<mlir::ShapedType>(res.getType()).getNumElements());
  });
  return bytes;
}

std::string typeString(mlir::Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAllPasses();
  mlir::nibble::registerNibblePasses();
  cl::HideUnrelatedOptions(nibbleCat);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-compile: compile a model into an "
                              "ahead-of-time bundle\n");
  Phases phases;
  std::string error;
  auto model = model::Model::load(modelPath, error);
  if (!model)
    return fail(error);
  const model::LlamaConfig &cfg = model->config();
  std::optional<compile::CudaTarget> cuda =
      compile::parseCudaTarget(targetName, error);
  if (!cuda && !error.empty())
    return fail("--target " + targetName + ": " + error);
  std::optional<target::TargetSpec> target;
  if (!cuda && !(target = target::TargetSpec::parse(targetName, error)))
    return fail("--target " + targetName + ": " + error);
  const bool quantize = formatName != "f32";
  if (quantize && !recipePath.empty() && calibPath.empty())
    return fail("--recipe needs --calib TEXT (rules may use calibrated "
                "methods)");
  if (quantize && methodNeedsStats(method) && calibPath.empty())
    return fail("--method " + method +
                " needs calibration statistics: "
                "pass --calib TEXT");
  const bool smooth = smoothAlpha >= 0.0, split = outlierThreshold > 0.0;
  const bool quantAct = actFormat != "none";
  const bool budget = !budgetText.empty();
  std::optional<calibration::BudgetSpec> budgetSpec;
  std::optional<std::vector<calibration::Candidate>> candidates;
  if (budget) {
    if (!quantize)
      return fail("--budget chooses weight formats: drop --format f32");
    if (calibPath.empty())
      return fail("--budget measures layer sensitivity on text: pass --calib "
                  "TEXT");
    if (!recipePath.empty())
      return fail("--budget writes its own per-layer recipe: drop --recipe");
    if (smooth || split || quantAct || method == "awq" || kvCacheFormat != "f32")
      return fail("--budget models weight rounding alone: it cannot be "
                  "combined with --smoothquant, --outlier-threshold, --act, "
                  "--kv-cache or --method awq");
    if (!(budgetSpec = calibration::BudgetSpec::parse(budgetText, error)))
      return fail("--budget: " + error);
    std::optional<calibration::Method> m = calibration::parseMethod(method);
    if (!m)
      return fail("--method " + method + ": unknown method");
    if (!(candidates = calibration::parseCandidates(candidateList, *m, error)))
      return fail("--candidates: " + error);
  }
  if (smooth && method == "awq")
    return fail("--smoothquant and --method awq both rescale input channels: "
                "choose one");
  if (smoothAlpha > 1.0)
    return fail("--smoothquant " + std::to_string(smoothAlpha) +
                ": the migration strength must be in [0, 1]");
  if (actMode != "dynamic" && actMode != "static")
    return fail("--act-mode " + actMode + ": expected dynamic or static");
  if (quantAct && !quantize)
    return fail("--act " + actFormat +
                " quantizes the inputs of quantized "
                "linears: pass a weight --format other than f32");
  if ((smooth || split || (quantAct && actMode == "static")) &&
      calibPath.empty())
    return fail(std::string(smooth  ? "--smoothquant"
                            : split ? "--outlier-threshold"
                                    : "--act-mode static") +
                " needs calibration statistics: pass --calib TEXT");
  if (!quant::parseScaleStorage(scaleStorage))
    return fail("--scale " + scaleStorage + ": expected f32, e8m0 or e4m3");
  if (scaleStorage != "f32" && asymmetric)
    return fail("--scale " + scaleStorage +
                " stores 8-bit scales without zero points: drop "
                "--asymmetric");
  std::optional<formats::Format> kvFormat;
  if (kvCacheFormat != "f32") {
    kvFormat = formats::Format::byName(kvCacheFormat);
    if (!kvFormat)
      return fail("--kv-cache " + kvCacheFormat +
                  ": unknown format (f32, int8, e4m3fn, e5m2, ...)");
    if (kvFormat->bits() > 8)
      return fail("--kv-cache " + kvCacheFormat +
                  ": more than 8 bits per code (the cache stores one code "
                  "per byte)");
  }
  if (!emitPtx.empty() && !cuda)
    return fail("--emit-ptx needs a --target cuda-smXY");
  if (cuda) {
    // What the GPU decode step serves (docs/gpu.md): weight-only schemes
    // with f32 scales, float activations and an f32 KV cache; transforms
    // that rewrite norms or inputs are CPU-only for now.
    const char *unsupported = smooth               ? "--smoothquant"
                              : split              ? "--outlier-threshold"
                              : quantAct           ? "--act"
                              : kvFormat           ? "--kv-cache"
                              : method == "awq"    ? "--method awq"
                              : asymmetric         ? "--asymmetric"
                              : scaleStorage != "f32" ? "--scale"
                                                      : nullptr;
    if (unsupported)
      return fail("--target " + targetName + ": " + unsupported +
                  " is not supported on GPU bundles yet (they take "
                  "symmetric weight-only int4, int8, e4m3fn or e5m2 with "
                  "f32 scales, or float weights stored as f16)");
  }
  const int64_t S = contextLen > 0 ? int64_t(contextLen)
                                   : std::min<int64_t>(cfg.maxSeqLen, 2048);
  if (S > cfg.maxSeqLen)
    return fail("--context " + std::to_string(S) + " exceeds the model's " +
                std::to_string(cfg.maxSeqLen) + " positions");
  if (prefillChunk < 1 || prefillChunk > S)
    return fail("--prefill-chunk must be in [1, " + std::to_string(S) + "]");

  std::string tokPath = tokenizerPath.empty() ? model->defaultTokenizerPath()
                                              : std::string(tokenizerPath);
  if (tokPath.empty())
    return fail("no tokenizer found next to " + model->source() +
                "; pass --tokenizer PATH");
  tokPath = tokenizer::resolveTokenizerFile(tokPath, error);
  if (tokPath.empty())
    return fail(error);
  auto tok = tokenizer::loadTokenizer(tokPath, error);
  if (!tok)
    return fail(error);
  std::string tokBytes;
  if (!support::readFile(tokPath, tokBytes, error))
    return fail(error);
  phases.done("loaded the model and tokenizer");

  // --- calibration -------------------------------------------------------
  json card;
  TempPath statsFile(".safetensors");
  const bool calibrate =
      quantize && (methodNeedsStats(method) || !recipePath.empty() || smooth ||
                   split || (quantAct && actMode == "static") || budget);
  TempPath budgetRecipe(".json");
  if (calibrate) {
    std::string text;
    if (!support::readFile(calibPath, text, error))
      return fail(error);
    std::vector<int32_t> tokens = tok->encode(text, /*addBos=*/false);
    calibration::CalibrationOptions opts;
    opts.windows = {calibFirst, calibSequences, calibSeqLen};
    opts.hessians = true;
    quant::StatsFile stats;
    // GPTQ calibrates block by block: block l's statistics come from the
    // model whose blocks before l are already quantized (as GPTQ does), so
    // each block corrects the error of the ones before it. Other methods
    // (and recipes, whose per-layer methods vary) use float activations.
    std::optional<formats::Format> seqFormat =
        formats::Format::byName(formatName);
    const bool sequential = method == "gptq" && recipePath.empty() &&
                            !smooth && !split && seqFormat &&
                            !sequentialOff && !budget;
    if (!sequential) {
      support::Progress progress("calibrating", calibSequences, quiet);
      opts.progress = [&](int64_t done, int64_t) { progress.update(done); };
      if (!calibration::calibrate(*model, tokens, opts, stats, error))
        return fail(calibPath + ": " + error);
      progress.finish();
    } else if (!calibrateSequentially(*model, tokens, opts, *seqFormat,
                                      stats, error)) {
      return fail(calibPath + ": " + error);
    }
    if (statsFile.path.empty() || !stats.save(statsFile.path, error))
      return fail("cannot write the calibration statistics: " + error);
    card["calibration"] = {
        {"text", baseName(calibPath)},
        {"sha256", support::sha256Hex(text.data(), text.size())},
        {"text_tokens", int64_t(tokens.size())},
        {"first_token", int64_t(calibFirst)},
        {"end_token", opts.windows.endToken()},
        {"windows", std::to_string(calibSequences) + " x " +
                        std::to_string(calibSeqLen) + " tokens, BOS first"},
        {"tokens", calibSequences * calibSeqLen},
        {"tokenizer", baseName(tokPath)},
        {"source",
         sequential ? "block by block: each block's statistics from the "
                      "model with the blocks before it quantized (GPTQ), "
                      "lm_head after all blocks"
                    : "the float model (all blocks calibrated on float "
                      "activations)"}};
    phases.done("calibrated");
    if (budget) {
      calibration::BudgetOptions bo;
      bo.spec = *budgetSpec;
      bo.candidates = *candidates;
      bo.calibration = opts.windows;
      bo.heldOut = opts.windows;
      bo.heldOut.firstToken =
          checkFirst >= 0 ? int64_t(checkFirst) : opts.windows.endToken();
      bo.stats = &stats;
      bo.threads = int(std::max(1u, std::thread::hardware_concurrency()));
      // A prediction, before compiling: the generated CPU kernels repack
      // codes into their layouts whatever the scale storage (1-4 bit codes
      // in nibbles, fp6 in 6 bits, other 5-8 bit codes in bytes). The card
      // states what was stored (packedCodeBytes).
      bo.codeBits = [](const quant::WeightScheme &s) {
        return formats::cpuKernelStorageBits(s.format);
      };
      std::unique_ptr<support::Progress> bar;
      std::string barWhat;
      bo.progress = [&](const std::string &what, int64_t d, int64_t t) {
        if (what != barWhat) {
          if (bar)
            bar->finish();
          bar = std::make_unique<support::Progress>(what, t, quiet);
          barWhat = what;
        }
        bar->update(d);
      };
      auto br = calibration::allocateBudget(*model, tokens, bo, error);
      if (bar)
        bar->finish();
      if (!br)
        return fail("--budget " + budgetText + ": " + error);
      // The choice as a recipe for nibble-quantize-weights: one exact rule
      // per linear.
      json rules = json::array();
      json chosen = json::object();
      for (size_t l = 0; l < br->linears.size(); ++l) {
        const calibration::Candidate &c = (*candidates)[size_t(br->choice[l])];
        std::string exact = "^";
        for (char ch : br->linears[l])
          exact += ch == '.' ? std::string("\\.") : std::string(1, ch);
        exact += "$";
        json rule = {{"match", exact}};
        if (c.keepFloat) {
          rule["skip"] = true;
        } else {
          rule["format"] = c.spec.scheme.format.name();
          rule["group"] = c.spec.scheme.groupSize;
          rule["scale"] =
              quant::scaleStorageName(c.spec.scheme.scaleStorage);
        }
        rules.push_back(rule);
        chosen[br->linears[l]] = c.label;
      }
      const std::string recipeText = json{{"rules", rules}}.dump(2) + "\n";
      if (budgetRecipe.path.empty() ||
          !support::writeFileAtomic(budgetRecipe.path, recipeText.data(),
                                    recipeText.size(), error))
        return fail("cannot write the budget's recipe: " + error);
      recipePath = budgetRecipe.path;
      auto change = [](const calibration::MixResult &m) {
        return json{{"bits_per_weight", m.bitsPerWeight},
                    {"linear_bytes", int64_t(std::llround(m.bytes))},
                    {"kl_mean", m.change.kl},
                    {"perplexity_ratio", std::exp(m.change.deltaNll)},
                    {"top1_agreement", m.change.top1},
                    {"tokens", m.change.tokens}};
      };
      json uniform = json::array();
      for (const calibration::UniformResult &u : br->uniform) {
        json j = {{"candidate", u.label}};
        j.update(change(u.heldOut));
        uniform.push_back(j);
      }
      json labels = json::array();
      for (const calibration::Candidate &c : *candidates)
        labels.push_back(c.label);
      const calibration::Windows &hw = bo.heldOut;
      card["budget"] = {
          {"spec", std::string(budgetText)},
          {"meaning",
           budgetSpec->kind == calibration::BudgetSpec::Kind::KL
               ? "mean KL(float || quantized) of the next-token "
                 "distribution, nats per token"
           : budgetSpec->kind == calibration::BudgetSpec::Kind::Perplexity
               ? "perplexity relative to the float model"
               : "least KL within this many stored bits per weight over "
                 "the linears"},
          {"method", std::string(method)},
          {"candidates", labels},
          {"sensitivity",
           std::string("each linear quantized alone with each candidate, "
                       "KL and NLL change on the calibration slice; costs "
                       "added over layers; ") +
               (budgetSpec->kind ==
                        calibration::BudgetSpec::Kind::BitsPerWeight
                    ? "least summed KL within the size"
                    : "smallest total size within the budget") +
               " (exact knapsack over sizes rounded to 1/20000 of the "
               "largest)"},
          {"rounds", br->rounds},
          {"predicted_cost_nats", br->predictedCost},
          {"calibration_slice", change(br->calibration)},
          {"note", budgetSpec->kind ==
                           calibration::BudgetSpec::Kind::BitsPerWeight
                       ? "size budgets hold by construction"
                       : "a cost budget the joint model broke on the "
                         "calibration slice was tightened to " +
                             std::to_string(br->effectiveBudget) +
                             " nats (rounds > 1)"},
          {"held_out_slice",
           {{"first_token", hw.firstToken},
            {"end_token", hw.endToken()},
            {"windows", std::to_string(hw.sequences) + " x " +
                            std::to_string(hw.seqLen) + " tokens, BOS first"}}},
          {"held_out", change(br->heldOut)},
          {"met_on_held_out", br->met},
          {"uniform_on_held_out", uniform},
          {"chosen", chosen}};
      if (!quiet) {
        llvm::errs() << "quant-compile: --budget " << budgetText << ": "
                     << llvm::format("%.3f", br->heldOut.bitsPerWeight)
                     << " bits per weight, held-out KL "
                     << llvm::format("%.5f", br->heldOut.change.kl)
                     << ", perplexity x"
                     << llvm::format("%.4f", std::exp(br->heldOut.change.deltaNll))
                     << (br->met ? " (budget met)" : " (budget NOT met)")
                     << "\n";
        for (const calibration::UniformResult &u : br->uniform)
          llvm::errs() << "  uniform " << u.label << ": "
                       << llvm::format("%.3f", u.heldOut.bitsPerWeight)
                       << " bits per weight, KL "
                       << llvm::format("%.5f", u.heldOut.change.kl)
                       << ", perplexity x"
                       << llvm::format("%.4f", std::exp(u.heldOut.change.deltaNll))
                       << "\n";
      }
      if (!br->met)
        llvm::errs() << "quant-compile: warning: the --budget " << budgetText
                     << " choice does not meet it on the held-out slice "
                        "(the card says so)\n";
      phases.done("allocated formats for the budget");
    }
  } else {
    card["calibration"] = quantize ? "not used (method " + method + ")"
                                   : "not used (float bundle)";
  }

  // --- float IR of the two entry points ------------------------------------
  mlir::DialectRegistry registry;
  mlir::nibble::registerCompilerDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  import::FloatModelOptions prefill;
  prefill.funcName = "nibble_prefill";
  prefill.kvCache = true;
  prefill.seqLen = prefillChunk;
  prefill.contextLen = S;
  prefill.kvFormat = kvFormat;
  auto module = import::buildFloatModel(ctx, *model, prefill, error);
  if (!module)
    return fail(error);
  import::FloatModelOptions decode = prefill;
  decode.funcName = "nibble_decode";
  decode.seqLen = 1;
  if (!import::appendFloatFunction(*module, *model, decode, error) ||
      !import::bindWeights(*module, *model, /*copy=*/false, error))
    return fail(error);

  // --- quantization ----------------------------------------------------------
  if (quantize) {
    std::string p;
    llvm::raw_string_ostream os(p);
    // Float-level transforms first: they change the weights the rounding
    // sees and the statistics activations are scaled from.
    if (smooth)
      os << "nibble-smooth{method=smoothquant alpha=" << double(smoothAlpha)
         << " stats=" << statsFile.path << "},";
    if (split)
      os << "nibble-split-outliers{threshold=" << double(outlierThreshold)
         << " stats=" << statsFile.path << "},";
    // AWQ is its whole pipeline: per-input-channel scales searched for the
    // weight scheme and folded into the producing norm or linear, then the
    // importance-weighted clip search (docs/accuracy.md: better than the
    // per-layer, unfolded variant and than either half alone).
    const bool awq = method == "awq";
    if (awq) {
      os << "nibble-smooth{method=awq format=" << passOption(formatName)
         << " group=" << group
         << " symmetric=" << (asymmetric ? "false" : "true")
         << " scale=" << scaleStorage << " stats=" << statsFile.path;
      if (!recipePath.empty())
        os << " recipe=" << recipePath;
      os << "},";
    }
    os << "nibble-quantize-weights{method=" << (awq ? std::string("imatrix") : std::string(method))
       << " format=" << passOption(formatName) << " group=" << group
       << " symmetric=" << (asymmetric ? "false" : "true")
       << " scale=" << scaleStorage
       << " progress=" << (quiet ? "false" : "true");
    if (calibrate)
      os << " stats=" << statsFile.path;
    if (!recipePath.empty())
      os << " recipe=" << recipePath;
    os << "}";
    if (quantAct) {
      os << ",nibble-quantize-activations{mode=" << actMode
         << " format=" << passOption(actFormat);
      if (actMode == "static")
        os << " stats=" << statsFile.path;
      os << "}";
    }
    mlir::PassManager pm(&ctx);
    if (failed(mlir::parsePassPipeline(p, pm)))
      return fail("internal error: bad pipeline " + p);
    if (failed(pm.run(*module)))
      return fail("quantization failed (see the diagnostics above)");
    phases.done("quantized");
  }
  // The card's per-tensor list: every linear of the prefill function (the
  // decode function holds the same weights).
  json tensors = json::array();
  int64_t quantizedCount = 0, floatCount = 0;
  // Per quantized linear: its bits per weight besides the codes (scales,
  // zero points), and its weight count.
  struct CodeInfo {
    double otherBits;
    int64_t weights;
  };
  std::map<std::string, CodeInfo> codeInfo;
  module->lookupSymbol<mlir::func::FuncOp>("nibble_prefill")
      .walk([&](mlir::Operation *op) {
        auto name = op->getAttrOfType<mlir::StringAttr>("nibble.linear");
        if (!name)
          return;
        json t = {{"name", name.str() + ".weight"}};
        if (auto mm = llvm::dyn_cast<mlir::nibble::MatmulOp>(op)) {
          t["type"] = typeString(mm.getWeight().getType());
          t["method"] =
              op->hasAttr("nibble.method")
                  ? op->getAttrOfType<mlir::StringAttr>("nibble.method").str()
                  : std::string(method);
          if (auto e = op->getAttrOfType<mlir::FloatAttr>(
                  "nibble.weight_error"))
            t["relative_error"] = e.getValueAsDouble();
          if (auto bpw = op->getAttrOfType<mlir::FloatAttr>(
                  "nibble.bits_per_weight")) {
            t["bits_per_weight"] = bpw.getValueAsDouble();
            // As stored in this bundle: the dense layout (GPU kernels, the
            // reference lowering) until the CPU kernels' packed copies are
            // measured below.
            mlir::nibble::QTensorType w = mm.getWeight().getType();
            const unsigned bits =
                w.getScheme().getFormatAttr().getFormat().bits();
            t["stored_bits_per_weight"] = bpw.getValueAsDouble();
            codeInfo[name.str()] = {bpw.getValueAsDouble() - double(bits),
                                    w.getShape()[0] * w.getShape()[1]};
          }
          // Input channels kept in f16 beside the quantized part.
          if (auto oc = op->getAttrOfType<mlir::DenseI64ArrayAttr>(
                  "nibble.outlier_channels"))
            t["outlier_channels_f16"] = int64_t(oc.size());
          ++quantizedCount;
        } else {
          t["type"] = cuda ? "f16 (not quantized; the GPU kernels read "
                             "float weights as f16)"
                           : "f32 (not quantized)";
          ++floatCount;
        }
        tensors.push_back(t);
      });
  json weights = {
      {"format", budget     ? "per layer (--budget; see tensors)"
                 : quantize ? std::string(formatName)
                            : "f32"},
      {"method", quantize ? std::string(method) : "none"},
      {"group", quantize ? int64_t(group) : 0},
      {"symmetric", !asymmetric},
      {"scales", quantize ? std::string(scaleStorage) == "f32"
                                ? "f32 per group"
                            : std::string(scaleStorage) == "e8m0"
                                ? "e8m0 (power of two) per group"
                                : "e4m3fn per group times one f32 per tensor"
                          : "none"},
      {"recipe", budget               ? "chosen by --budget (card.budget)"
                 : recipePath.empty() ? "none"
                                      : baseName(recipePath)},
      {"linears_quantized", quantizedCount},
      {"linears_float", floatCount},
      {"not_quantized", "embedding table and RMSNorm weights (f32)"},
      {"tensors", tensors}};
  if (quantize && method == "awq")
    weights["pipeline"] =
        "AWQ scales searched on the calibrated X^T X for this scheme and "
        "folded into the producing norm or linear (nibble-smooth "
        "method=awq), then an importance-weighted clip search "
        "(nibble-quantize-weights method=imatrix)";
  if (!recipePath.empty() && !budget) {
    std::string r;
    if (support::readFile(recipePath, r, error))
      weights["recipe_sha256"] = support::sha256Hex(r.data(), r.size());
  }
  card["weights"] = weights;
  json transforms = json::array();
  if (smooth)
    transforms.push_back(
        {{"name", "smoothquant"},
         {"alpha", double(smoothAlpha)},
         {"note", "per-input-channel scales max|x|^a / max|W|^(1-a), folded "
                  "into the producing norm or linear"}});
  if (split)
    transforms.push_back(
        {{"name", "outlier split"},
         {"threshold", double(outlierThreshold)},
         {"note", "input channels with calibrated max |x| above the "
                  "threshold kept in an f16 matmul"}});
  card["transforms"] = transforms.empty() ? json("none") : transforms;
  if (quantAct)
    card["activations"] = {
        {"format", std::string(actFormat)},
        {"mode", std::string(actMode)},
        {"scheme", actMode == "dynamic"
                       ? "symmetric per token: max|x_row| / max(format), "
                         "computed at run time"
                       : "symmetric per tensor: calibrated absmax / "
                         "max(format)"},
        {"applies_to", "inputs of the quantized linears"}};
  else
    card["activations"] = "f32 (not quantized)";
  if (kvFormat)
    card["kv_cache"] = {
        {"format", kvFormat->name()},
        {"bits", int64_t(kvFormat->bits())},
        {"scales", "f32 per (layer, position, kv head): max|x| / " +
                       std::to_string(kvFormat->maxValue()) +
                       " over the head's row"},
        {"bytes_per_token",
         2 * cfg.numLayers * cfg.numKVHeads * (cfg.headDim + 4)}};
  else
    card["kv_cache"] = "f32 (not quantized)";
  card["evaluation"] = "not measured";
  card["speed"] = "not measured";

  // --- lowering, weights out of the code, machine code ----------------------
  std::string code, blob;
  json gpuProgram;
  if (cuda) {
    compile::CudaProgram program;
    if (!compile::buildCudaProgram(*module, *model, *cuda, S, program, error))
      return fail("--target " + targetName + ": " + error);
    code = std::move(program.ptx);
    if (!emitPtx.empty() &&
        !support::writeFileAtomic(emitPtx, code.data(), code.size(), error))
      return fail("--emit-ptx: " + error);
    blob = std::move(program.weights);
    gpuProgram = std::move(program.gpu);
    phases.done("compiled");
  } else {
    for (const char *fn : {"nibble_prefill", "nibble_decode"})
      module->lookupSymbol<mlir::func::FuncOp>(fn)->setAttr(
          "llvm.emit_c_interface", mlir::UnitAttr::get(&ctx));
    mlir::nibble::ReferencePipelineOptions lower;
    lower.parallel = true; // rows of large matmuls over the session's pool
    {
      // The generated kernels first, on their own: the card then states
      // the code bytes each linear's kernel reads, as stored in this
      // bundle, not a prediction. Linears left to the reference lowering
      // keep the dense layout.
      mlir::PassManager pm(&ctx);
      if (failed(mlir::parsePassPipeline(
              "nibble-generate-kernels{target=" + targetName + "}", pm)))
        return fail("internal error: bad kernel pipeline");
      if (failed(pm.run(*module)))
        return fail("kernel generation failed (see the diagnostics above)");
      std::map<std::string, int64_t> packed = packedCodeBytes(*module);
      for (json &t : card["weights"]["tensors"]) {
        std::string lin = t["name"].get<std::string>();
        lin.resize(lin.size() - std::strlen(".weight"));
        auto info = codeInfo.find(lin);
        auto bytes = packed.find(lin);
        if (info == codeInfo.end() || bytes == packed.end())
          continue;
        t["stored_bits_per_weight"] =
            info->second.otherBits +
            8.0 * double(bytes->second) / double(info->second.weights);
      }
    }
    {
      mlir::PassManager pm(&ctx);
      if (failed(mlir::nibble::buildReferenceToBuffersPipeline(pm, lower)))
        return fail("internal error: bad lowering pipeline");
      if (failed(pm.run(*module)))
        return fail("lowering failed (see the diagnostics above)");
    }
    if (failed(mlir::nibble::externalizeWeights(*module, 64, blob)))
      return fail("moving the weights out of the code failed");
    TempPath codeFile(".so");
    if (codeFile.path.empty())
      return fail("cannot create a temporary file");
    {
      mlir::PassManager pm(&ctx);
      if (failed(mlir::nibble::buildBuffersToLLVMPipeline(pm, lower)) ||
          failed(mlir::parsePassPipeline(
              "nibble-emit-object{target=" + targetName +
                  " output=" + codeFile.path + " kind=shared}",
              pm)))
        return fail("internal error: bad code generation pipeline");
      if (failed(pm.run(*module)))
        return fail("code generation failed (see the diagnostics above)");
    }
    if (!support::readFile(codeFile.path, code, error))
      return fail(error);
    phases.done("compiled");
  }

  // --- the bundle
  // -------------------------------------------------------------
  json manifest;
  manifest["nibble_bundle"] = 1;
  manifest["compiler"] = "quant-compile " NIBBLE_VERSION_STRING;
  manifest["model"] = {{"name", baseName(model->source())},
                       {"source", model->source()},
                       {"format", model->format()},
                       {"dim", cfg.dim},
                       {"hidden_dim", cfg.hiddenDim},
                       {"layers", cfg.numLayers},
                       {"heads", cfg.numHeads},
                       {"kv_heads", cfg.numKVHeads},
                       {"head_dim", cfg.headDim},
                       {"vocab", cfg.vocabSize},
                       {"max_seq_len", cfg.maxSeqLen}};
  if (cuda) {
    manifest["target"] = {{"spec", std::string(targetName)},
                          {"triple", "nvptx64-nvidia-cuda"},
                          {"cpu", cuda->chip},
                          {"features", json::array()}};
    // One token at a time through the kernel sequence (docs/gpu.md).
    manifest["entry"] = {{"decode", "gpu"},
                         {"prefill", "gpu"},
                         {"prefill_chunk", 1},
                         {"context", S}};
  } else {
    manifest["target"] = {{"spec", std::string(targetName)},
                          {"triple", target->triple()},
                          {"cpu", target->cpu()},
                          {"features", target->enabledFeatures()}};
    manifest["entry"] = {{"decode", "_mlir_ciface_nibble_decode"},
                         {"prefill", "_mlir_ciface_nibble_prefill"},
                         {"prefill_chunk", int64_t(prefillChunk)},
                         {"context", S}};
  }
  if (kvFormat)
    manifest["kv_cache"] = {
        {"dtype", kvFormat->name()},
        {"code_bytes", 1},
        {"scales", "f32, layers x context x kv_heads"},
        {"layout", "layers x context x kv_heads x head_dim"}};
  else
    manifest["kv_cache"] = {
        {"dtype", "f32"}, {"layout", "layers x context x kv_heads x head_dim"}};
  manifest["weights"] = {{"bytes", int64_t(blob.size())}};
  if (cuda)
    manifest["gpu"] = gpuProgram;
  manifest["tokenizer"] = {{"kind", std::string(tok->kind())},
                           {"file", baseName(tokPath)},
                           {"vocab", tok->vocabSize()},
                           {"bos", tok->bosId()},
                           {"eos", tok->eosId()}};
  manifest["card"] = card;
  std::string manifestText = manifest.dump(2) + "\n";

  bundle::BundleWriter writer;
  if (!writer.add("manifest", manifestText, error) ||
      !writer.addView("code", code, error, 4096) ||
      !writer.addView("weights", blob, error, 4096) ||
      !writer.addView("tokenizer", tokBytes, error))
    return fail(error);
  if (!writer.write(outputPath, error))
    return fail(error);
  phases.done("written");
  llvm::outs() << "wrote " << outputPath << ": code " << code.size()
               << " bytes, weights " << blob.size() << " bytes ("
               << (budget     ? "per-layer formats for --budget " + budgetText
                   : quantize ? formatName + " " + method
                              : std::string("f32"))
               << (quantAct ? ", activations " + actFormat : std::string())
               << (kvFormat ? ", KV cache " + kvFormat->name() : std::string())
               << "), context " << S << ", target "
               << (cuda ? "nvptx64-nvidia-cuda " + cuda->chip
                        : target->triple() + " " + target->cpu())
               << "\n";
  return 0;
}
