//===- CudaBundle.cpp - The code and weights of a CUDA bundle -------------===//

#include "CudaBundle.h"

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Dialect/Nibble/Transforms/GpuDecoder.h"
#include "nibble/Formats/Format.h"
#include "nibble/Formats/Half.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Support/File.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/Support/FileSystem.h"

#include <cmath>
#include <cstring>
#include <map>
#include <unistd.h>

namespace nibble::compile {

using json = nlohmann::ordered_json;

std::optional<CudaTarget> parseCudaTarget(const std::string &spec,
                                          std::string &error) {
  llvm::StringRef rest(spec);
  if (!rest.consume_front("cuda"))
    return std::nullopt;
  unsigned sm = 0;
  if (!rest.consume_front("-sm") || rest.consumeInteger(10, sm) ||
      !(rest.empty() || rest == "a") || sm < 80) {
    error = "expected cuda-smXY with XY at least 80 (cuda-sm80, cuda-sm89, "
            "cuda-sm90, cuda-sm90a)";
    return std::nullopt;
  }
  CudaTarget t;
  t.spec = spec;
  t.chip = "sm_" + std::to_string(sm) + rest.str();
  // PTX 8.0 is the first with sm_90; sm_89's hardware fp8 conversion needs
  // 8.1 (nibble-gpu-to-ptx checks).
  t.features = sm == 89 ? "+ptx81" : "+ptx80";
  return t;
}

namespace {

/// Output rows (warps) per block of the GEMVs.
constexpr int64_t kRowsPerBlock = 4;

/// The bytes of a dense_resource constant (nibble.constant or
/// arith.constant), or empty with `error`.
llvm::ArrayRef<char> resourceBytes(mlir::Value v, std::string &error) {
  mlir::Attribute value;
  if (auto c = v.getDefiningOp<mlir::nibble::ConstantOp>())
    value = c.getValue();
  else if (auto c = v.getDefiningOp<mlir::arith::ConstantOp>())
    value = c.getValue();
  auto attr = llvm::dyn_cast_or_null<mlir::DenseResourceElementsAttr>(value);
  mlir::AsmResourceBlob *blob =
      attr ? attr.getRawHandle().getBlob() : nullptr;
  if (!blob) {
    error = "is not a dense_resource constant with data";
    return {};
  }
  return blob->getData();
}

/// The weights section: tensors at 256-byte offsets.
struct Blob {
  std::string bytes;
  json put(const void *data, size_t n) {
    bytes.resize((bytes.size() + 255) / 256 * 256, '\0');
    json at = {{"offset", int64_t(bytes.size())}, {"bytes", int64_t(n)}};
    bytes.append(static_cast<const char *>(data), n);
    return at;
  }
  json put(const std::vector<float> &v) {
    return put(v.data(), v.size() * sizeof(float));
  }
};

} // namespace

bool buildCudaProgram(mlir::ModuleOp module, const model::Model &model,
                      const CudaTarget &target, int64_t context,
                      CudaProgram &out, std::string &error) {
  using namespace mlir;
  namespace mn = mlir::nibble;
  const model::LlamaConfig &cfg = model.config();
  auto decode = module.lookupSymbol<func::FuncOp>("nibble_decode");
  if (!decode) {
    error = "internal error: no nibble_decode function";
    return false;
  }
  std::map<std::string, mn::MatmulOp> quantized;
  decode.walk([&](mn::MatmulOp mm) {
    if (auto n = mm->getAttrOfType<StringAttr>("nibble.linear"))
      quantized[n.str()] = mm;
  });

  // The kernels go into a module of their own.
  MLIRContext *ctx = module.getContext();
  OwningOpRef<ModuleOp> kernels = ModuleOp::create(UnknownLoc::get(ctx));
  mn::GpuDecoderShape shape;
  shape.vocab = cfg.vocabSize;
  shape.dim = cfg.dim;
  shape.hidden = cfg.hiddenDim;
  shape.heads = cfg.numHeads;
  shape.kvHeads = cfg.numKVHeads;
  shape.headDim = cfg.headDim;
  shape.context = context;
  shape.layers = cfg.numLayers;
  shape.normEps = cfg.normEps;
  shape.interleavedRope = cfg.ropePairing == model::RopePairing::Interleaved;
  if (failed(mn::addGpuDecoderKernels(*kernels, target.chip, shape))) {
    error = "the model's shape has no GPU decoder kernels (see above)";
    return false;
  }

  Blob blob;
  auto tensor = [&](const std::string &name) {
    std::vector<float> v;
    model.get(name).toFloat(v); // the loader checked it is a float tensor
    return blob.put(v);
  };
  json gpu;
  gpu["chip"] = target.chip;
  gpu["ptx_features"] = target.features;
  gpu["rows_per_block"] = kRowsPerBlock;
  json tensors;
  tensors["embed"] = tensor("model.embed_tokens.weight");
  {
    // RoPE tables [context][head_dim / 2], computed as the reference does.
    const std::vector<float> inv = cfg.ropeInverseFrequencies();
    std::vector<float> cosT, sinT;
    for (int64_t p = 0; p < context; ++p)
      for (float f : inv) {
        const float angle = float(p) * f;
        cosT.push_back(std::cos(angle));
        sinT.push_back(std::sin(angle));
      }
    tensors["rope_cos"] = blob.put(cosT);
    tensors["rope_sin"] = blob.put(sinT);
  }
  tensors["final_norm"] = tensor("model.norm.weight");
  gpu["tensors"] = tensors;

  // One linear: its codes and scales in the GEMV layout, and its kernel.
  auto linear = [&](const std::string &name, const model::TensorView &w,
                    json &lin) -> bool {
    const std::string where = "linear " + name + ": ";
    const int64_t n = w.shape.at(0), k = w.shape.at(1);
    mn::GpuGemvSpec spec{"f16", n, k, k};
    std::vector<uint8_t> codes;
    std::vector<float> scales;
    auto it = quantized.find(name);
    if (it == quantized.end()) {
      // A float linear: f16 codes, one scale of 1 per row.
      std::vector<float> f;
      w.toFloat(f);
      codes.resize(f.size() * 2);
      for (size_t i = 0; i < f.size(); ++i) {
        uint16_t h = formats::floatToHalf(f[i]);
        codes[2 * i] = uint8_t(h & 0xFF);
        codes[2 * i + 1] = uint8_t(h >> 8);
      }
      scales.assign(size_t(n), 1.0f);
    } else {
      mn::MatmulOp mm = it->second;
      mn::SchemeAttr s = mm.getWeight().getType().getScheme();
      const formats::Format f = s.getFormatAttr().getFormat();
      spec.format = mn::gpuGemvFormat(f);
      if (spec.format.empty()) {
        error = where + "format " + f.name() +
                " has no GPU kernel (int4, int8, e4m3fn, e5m2 or float)";
        return false;
      }
      std::optional<int64_t> group = s.getColumnsPerScale(k);
      if (s.hasZeroPoints() || s.getScaleSchemeAttr() ||
          !s.getScaleType().isF32() || s.getLayout() || !group ||
          mm.getActFormat() || mm->hasAttr("nibble.outlier_channels")) {
        error = where + "the GPU kernels take symmetric weights with f32 "
                        "scales per row or per group along the input, "
                        "weight-only (no zero points, 8-bit scales, "
                        "activation quantization or outlier split)";
        return false;
      }
      spec.group = *group;
      std::string why;
      ArrayRef<char> c = resourceBytes(mm.getWeight(), why);
      if (c.empty()) {
        error = where + "the codes " + why;
        return false;
      }
      const auto *p = reinterpret_cast<const uint8_t *>(c.data());
      codes = llvm::StringRef(spec.format).starts_with("int")
                  ? formats::repackForNvptx(p, c.size(), unsigned(f.bits()))
                  : std::vector<uint8_t>(p, p + c.size());
      ArrayRef<char> sc = resourceBytes(mm.getScales(), why);
      if (sc.empty() || sc.size() != size_t(n * (k / *group)) * 4) {
        error = where + "the scales " + (why.empty() ? "have the wrong size" : why);
        return false;
      }
      scales.resize(sc.size() / 4);
      std::memcpy(scales.data(), sc.data(), sc.size());
    }
    // A row whose one scale covers K codes that are not whole 128-bit
    // loads is padded with zero codes; the runtime keeps the activations
    // past K at zero (docs/gpu.md).
    const unsigned bits = mn::gpuGemvCodeBits(spec.format);
    const int64_t chunk = 128 / bits;
    int64_t kp = k;
    if (spec.group == k && k % chunk != 0 && k * bits % 8 == 0) {
      kp = (k + chunk - 1) / chunk * chunk;
      const size_t row = size_t(k * bits / 8), padded = size_t(kp * bits / 8);
      std::vector<uint8_t> wide(size_t(n) * padded, 0);
      for (int64_t r = 0; r < n; ++r)
        std::memcpy(wide.data() + size_t(r) * padded,
                    codes.data() + size_t(r) * row, row);
      // Zero codes: 0 in two's complement and fp8/f16; offset binary flips
      // the top bit of every code, padding included.
      if (llvm::StringRef(spec.format).starts_with("int"))
        for (int64_t r = 0; r < n; ++r)
          for (size_t b = row; b < padded; ++b)
            wide[size_t(r) * padded + b] = bits == 4 ? 0x88 : 0x80;
      codes = std::move(wide);
      spec.k = spec.group = kp;
    }
    std::string why;
    FailureOr<std::string> kernel =
        mn::addGpuGemvKernel(*kernels, target.chip, spec, kRowsPerBlock, why);
    if (failed(kernel)) {
      error = where + why;
      return false;
    }
    lin = {{"name", name},     {"format", spec.format}, {"n", n},
           {"k", k},           {"k_stored", kp},        {"group", spec.group},
           {"kernel", *kernel},
           {"codes", blob.put(codes.data(), codes.size())},
           {"scales", blob.put(scales)}};
    return true;
  };

  static const char *const kKeys[7] = {"q",    "k",  "v",   "o",
                                       "gate", "up", "down"};
  json layers = json::array();
  for (int64_t l = 0; l < cfg.numLayers; ++l) {
    json layer;
    layer["attn_norm"] =
        tensor(model::layerTensorName(l, "input_layernorm.weight"));
    layer["ffn_norm"] =
        tensor(model::layerTensorName(l, "post_attention_layernorm.weight"));
    for (int i = 0; i < 7; ++i) {
      const std::string name = model::layerTensorName(l, model::kBlockLinears[i]);
      if (!linear(name, model.get(name + ".weight"), layer[kKeys[i]]))
        return false;
    }
    layers.push_back(layer);
  }
  gpu["layers"] = layers;
  if (!linear("lm_head", model.lmHead(), gpu["lm_head"]))
    return false;

  // Launch shapes, read back from the kernels before they are lowered.
  json launches = json::object();
  kernels->walk([&](gpu::GPUFuncOp fn) {
    auto grid = fn->getAttrOfType<DenseI64ArrayAttr>("nibble.grid");
    auto block = fn.getKnownBlockSizeAttr();
    launches[fn.getName().str()] = {{"grid", grid[0]}, {"block", block[0]}};
  });
  const mn::GpuDecoderKernelNames names =
      mn::gpuDecoderKernelNames(shape);
  gpu["kernels"] = {{"embed", names.embed},         {"rmsnorm", names.rmsnorm},
                    {"rope_kv", names.ropeKV},      {"attention", names.attention},
                    {"swiglu", names.swiglu},       {"add", names.add}};
  gpu["launches"] = launches;

  // PTX through nibble-gpu-to-ptx, via a temporary file.
  llvm::SmallString<128> ptxPath;
  int fd = -1;
  if (llvm::sys::fs::createTemporaryFile("nibble-cuda", "ptx", fd, ptxPath)) {
    error = "cannot create a temporary file for the PTX";
    return false;
  }
  ::close(fd);
  PassManager pm(ctx);
  const std::string pipeline = "nibble-gpu-to-ptx{chip=" + target.chip +
                               " features=" + target.features +
                               " output=" + ptxPath.str().str() + "}";
  bool ok = succeeded(parsePassPipeline(pipeline, pm)) &&
            succeeded(pm.run(*kernels)) &&
            support::readFile(ptxPath.str().str(), out.ptx, error);
  llvm::sys::fs::remove(ptxPath);
  if (!ok) {
    if (error.empty())
      error = "lowering the GPU kernels to PTX failed (see above)";
    return false;
  }
  out.weights = std::move(blob.bytes);
  out.gpu = std::move(gpu);
  return true;
}

} // namespace nibble::compile
