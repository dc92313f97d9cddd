//===- GpuGemvBench.cpp - Generated GPU GEMV vs cuBLAS and a probe ---------===//
//
//   nibble-gpu-bench [--shapes 8192x8192,16384x16384] [--iters 50]
//                    [--ptx-only DIR] [--check] [--probe-only]
//
// For each shape N x K (batch 1) and each path (W4A16: int4 g128; W8A16:
// int8 per row and fp8 e4m3 per row; f16 activations, f32 accumulate):
// generates the kernel
// from nibble IR (nibble-generate-gpu-kernels, nibble-gpu-to-ptx for the
// device's sm_XY), loads the PTX through the CUDA Driver API (dlopen),
// checks the result against a CPU evaluation of the same quantized weights
// (per-row max |delta| <= 1e-2 of max |ref|), and times it with weights
// rotated over copies totalling more than 256 MiB (so they stream from HBM
// rather than the 50 MB L2). In the same run: a read-bandwidth probe (a
// generated kernel summing 128-bit loads over 1 GiB) and cuBLAS
// (cublasGemmEx, fp16 in and out, f32 compute) on the same shape, also
// rotated. Prints a markdown table: microseconds per call, effective GB/s
// of weight bytes (codes + scales; fp16 weights for cuBLAS), fraction of
// the probe, and speedup over cuBLAS.
//
// `--probe-only` prints the probe alone (scripts/gpu-decode.sh divides a
// decoded token's bytes by it). `--check` instead runs every kernel variant (int4, int8, fp8 e4m3 and
// e5m2 weights; f16 and bf16 activations; 1, 5 and 32 activation rows; fp8
// also through the sm_80 software decode on sm_89+) on a 200 x 512 problem
// against the CPU reference. Without a driver or GPU it says so and exits
// with status 2; `--ptx-only DIR` writes the PTX of the timed kernels and
// of every check variant for sm_80 and sm_90 and needs neither.
//
//===----------------------------------------------------------------------===//

#include "nibble/Cuda/Driver.h"
#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "nibble/Formats/Format.h"
#include "nibble/Formats/Half.h"
#include "nibble/Formats/Packing.h"
#include "nibble/Pipelines/Pipelines.h"
#include "nibble/Support/File.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <unistd.h>

using namespace nibble;

namespace {

struct Shape {
  int64_t n, k;
};

/// PTX for `ir` (a module with nibble.matmul or gpu.module kernels).
bool toPtx(const std::string &ir, const std::string &chip, bool generate,
           std::string &ptx, std::string &error) {
  mlir::DialectRegistry registry;
  mlir::nibble::registerCompilerDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(ir, &ctx);
  if (!module) {
    error = "internal error: generated IR does not parse";
    return false;
  }
  char tmpl[] = "/tmp/nibble-gpu-bench-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    error = "cannot create a temporary file";
    return false;
  }
  close(fd);
  mlir::PassManager pm(&ctx);
  // sm_89 converts fp8 in hardware only with PTX 8.1.
  const std::string features = chip == "sm_89" ? "+ptx81" : "+ptx80";
  std::string pipeline =
      (generate ? "nibble-generate-gpu-kernels{chip=" + chip + "}," : "") +
      "nibble-gpu-to-ptx{chip=" + chip + " features=" + features +
      " output=" + tmpl + "}";
  bool ok = succeeded(mlir::parsePassPipeline(pipeline, pm)) &&
            succeeded(pm.run(*module)) &&
            support::readFile(tmpl, ptx, error);
  unlink(tmpl);
  if (!ok && error.empty())
    error = "PTX generation failed (see the diagnostics above)";
  return ok;
}

/// One weight format the benchmark measures.
struct Path {
  const char *label;  ///< table row
  const char *format; ///< nibble IR format attribute
  const char *tag;    ///< kernel name part after "nibble_w"
  const char *name;   ///< formats::Format::byName
  bool grouped; ///< groups of 128, else one scale per row

  formats::Format fmt() const { return *formats::Format::byName(name); }
  /// fp8 codes are stored as they are; integers go offset-binary.
  bool fp8() const { return fmt().kind() == formats::Kind::Float; }
};
const Path kPaths[] = {
    {"W4A16 (int4 g128)", "#nibble.int<4, signed>", "4", "int4", true},
    {"W8A16 (int8 per row)", "#nibble.int<8, signed>", "8", "int8", false},
    {"W8A16 (fp8 e4m3 per row)", "#nibble.float<e4m3fn>", "e4m3", "e4m3fn",
     false},
};

int64_t groupOf(const Path &p, const Shape &s) {
  return p.grouped ? 128 : s.k;
}

/// A kernel variant: the weights, the activation type and row count.
struct Variant {
  Path path;
  bool bf16 = false; ///< else f16 activations
  int64_t m = 1;
};

std::string gemvIR(const Shape &s, const Variant &v) {
  const Path &p = v.path;
  const int64_t g = groupOf(p, s);
  const char *act = v.bf16 ? "bf16" : "f16";
  std::ostringstream os;
  os << "!w = !nibble.qtensor<" << s.n << "x" << s.k << ", #nibble.scheme<"
     << p.format << ", "
     << (p.grouped ? "group<1, 128>" : "per_channel<0>") << ", scale = f32>>\n"
     << "func.func @f(%x: tensor<" << v.m << "x" << s.k << "x" << act
     << ">, %w: !w, %s: tensor<" << s.n << "x" << s.k / g
     << "xf32>) -> tensor<" << v.m << "x" << s.n << "xf32> {\n"
     << "  %y = nibble.matmul %x, %w scales(%s : tensor<" << s.n << "x"
     << s.k / g << "xf32>) : tensor<" << v.m << "x" << s.k << "x" << act
     << ">, !w -> tensor<" << v.m << "x" << s.n << "xf32>\n  return %y : tensor<"
     << v.m << "x" << s.n << "xf32>\n}\n";
  return os.str();
}

std::string kernelName(const Shape &s, const Variant &v) {
  return std::string("nibble_w") + v.path.tag + (v.bf16 ? "abf16" : "a16") +
         "_m" + std::to_string(v.m) + "_n" + std::to_string(s.n) + "_k" +
         std::to_string(s.k) + "_g" + std::to_string(groupOf(v.path, s));
}

/// The variants `--check` runs: every weight format (fp8 e5m2 too), f16
/// and bf16 activations, 1, 5 and 32 activation rows.
std::vector<Variant> checkVariants() {
  std::vector<Variant> out;
  std::vector<Path> paths(std::begin(kPaths), std::end(kPaths));
  paths.push_back(
      {"fp8 e5m2 g128", "#nibble.float<e5m2>", "e5m2", "e5m2", true});
  for (const Path &p : paths)
    for (bool bf16 : {false, true})
      for (int64_t m : {1, 5, 32})
        out.push_back({p, bf16, m});
  return out;
}

uint16_t floatToBf16(float f) { // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float bf16ToFloat(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Weights, scales and activations of one variant, and the CPU reference
/// in double from the format library's decode (the reference lowering's
/// semantics): y[m, n] = sum_k x[m, k] * decode(code[n, k]) * s[n, k / g].
struct Problem {
  std::vector<uint8_t> weights;  ///< the kernel's layout
  std::vector<float> scales;
  std::vector<uint16_t> x;       ///< f16 or bf16 bits, [M, K]
  std::vector<double> ref;       ///< [M, N]
};

Problem makeProblem(const Shape &s, const Variant &v, std::mt19937 &rng) {
  const Path &p = v.path;
  const formats::Format f = p.fmt();
  const int bits = f.bits();
  const int64_t g = groupOf(p, s), groups = s.k / g;
  Problem pr;
  std::vector<uint8_t> codes(size_t(s.n * s.k));
  std::uniform_int_distribution<int> uc(0, (1 << bits) - 1);
  for (auto &c : codes)
    do
      c = uint8_t(uc(rng));
    while (!std::isfinite(f.decode(c)));
  std::uniform_real_distribution<float> uscale(0.001f, 0.01f), ux(-1, 1);
  pr.scales.resize(size_t(s.n * groups));
  for (auto &v2 : pr.scales)
    v2 = p.fp8() ? uscale(rng) / 64.0f : uscale(rng);
  std::vector<uint8_t> packed(
      formats::packedByteCount(codes.size(), unsigned(bits)));
  formats::packCodes(codes.data(), codes.size(), unsigned(bits),
                     packed.data());
  // Integer codes go to the kernels' offset-binary layout; fp8 bytes are
  // used as stored.
  pr.weights = p.fp8() ? packed
                     : formats::repackForNvptx(packed.data(), packed.size(),
                                               unsigned(bits));
  pr.x.resize(size_t(v.m * s.k));
  std::vector<double> xd(pr.x.size());
  for (size_t i = 0; i < pr.x.size(); ++i) {
    float xv = ux(rng);
    pr.x[i] = v.bf16 ? floatToBf16(xv) : formats::floatToHalf(xv);
    xd[i] = v.bf16 ? bf16ToFloat(pr.x[i]) : formats::halfToFloat(pr.x[i]);
  }
  pr.ref.assign(size_t(v.m * s.n), 0.0);
  for (int64_t r = 0; r < s.n; ++r)
    for (int64_t j = 0; j < s.k; ++j) {
      const double w = double(f.decode(codes[size_t(r * s.k + j)])) *
                       pr.scales[size_t(r * groups + j / g)];
      for (int64_t mi = 0; mi < v.m; ++mi)
        pr.ref[size_t(mi * s.n + r)] += w * xd[size_t(mi * s.k + j)];
    }
  return pr;
}

/// Per activation row, max |got - ref| over max |ref|; the worst row.
double worstRowError(const std::vector<float> &got,
                     const std::vector<double> &ref, int64_t m, int64_t n) {
  double worst = 0;
  for (int64_t mi = 0; mi < m; ++mi) {
    double err = 0, mag = 0;
    for (int64_t r = 0; r < n; ++r) {
      const size_t i = size_t(mi * n + r);
      err = std::max(err, std::fabs(double(got[i]) - ref[i]));
      mag = std::max(mag, std::fabs(ref[i]));
    }
    worst = std::max(worst, mag > 0 ? err / mag : err);
  }
  return worst;
}

constexpr unsigned kRowsPerBlock = 4; // the generator's default

/// Read bandwidth: every thread xors 128-bit loads in a grid-stride loop
/// over `n` vectors (static shapes: the bare-pointer kernel ABI needs them).
std::string probeIR(int64_t n, int64_t threads) {
  std::ostringstream os;
  os << R"(module attributes {gpu.container_module} {
  gpu.module @probe {
    gpu.func @read_probe(%a: memref<)" << n << R"(xvector<4xi32>>, %out: memref<)"
     << threads << R"(xi32>) kernel {
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %bdim = gpu.block_dim x
      %gdim = gpu.grid_dim x
      %n = arith.constant )" << n << R"( : index
      %base = arith.muli %bid, %bdim : index
      %i0 = arith.addi %base, %tid : index
      %stride = arith.muli %gdim, %bdim : index
      %z = arith.constant dense<0> : vector<4xi32>
      %acc = scf.for %i = %i0 to %n step %stride iter_args(%s = %z) -> vector<4xi32> {
        %v = memref.load %a[%i] : memref<)" << n << R"(xvector<4xi32>>
        %t = arith.xori %s, %v : vector<4xi32>
        scf.yield %t : vector<4xi32>
      }
      %r = vector.reduction <xor>, %acc : vector<4xi32> into i32
      memref.store %r, %out[%i0] : memref<)" << threads << R"(xi32>
      gpu.return
    }
  }
}
)";
  return os.str();
}

/// cuBLAS through dlopen (fp16 GEMV as a 1-column GEMM).
struct Cublas {
  void *lib = nullptr, *handle = nullptr;
  int (*create)(void **) = nullptr;
  int (*gemmEx)(void *, int, int, int, int, int, const void *, const void *,
                int, int, const void *, int, int, const void *, void *, int,
                int, int, int) = nullptr;
  bool open(std::string &error) {
    for (const char *n : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"})
      if ((lib = dlopen(n, RTLD_NOW | RTLD_LOCAL)))
        break;
    if (!lib) {
      error = "cuBLAS not found (libcublas.so.13/.12)";
      return false;
    }
    create = reinterpret_cast<decltype(create)>(dlsym(lib, "cublasCreate_v2"));
    gemmEx = reinterpret_cast<decltype(gemmEx)>(dlsym(lib, "cublasGemmEx"));
    if (!create || !gemmEx || create(&handle) != 0) {
      error = "cuBLAS: cublasCreate_v2 / cublasGemmEx unavailable or failed";
      return false;
    }
    return true;
  }
  /// y[N] = W[N x K] x[K], all fp16, f32 compute.
  bool gemv(cuda::DevicePtr w, cuda::DevicePtr x, cuda::DevicePtr y,
            int n, int k) {
    const float alpha = 1.0f, beta = 0.0f;
    constexpr int kOpN = 0, kOpT = 1, kR16F = 2, kCompute32F = 68,
                  kDefaultAlgo = -1;
    return gemmEx(handle, kOpT, kOpN, n, 1, k, &alpha,
                  reinterpret_cast<void *>(w), kR16F, k,
                  reinterpret_cast<void *>(x), kR16F, k, &beta,
                  reinterpret_cast<void *>(y), kR16F, n, kCompute32F,
                  kDefaultAlgo) == 0;
  }
};

int fail(const std::string &msg, int code = 1) {
  std::fprintf(stderr, "nibble-gpu-bench: %s\n", msg.c_str());
  return code;
}

/// The shape `--check` uses: N not a multiple of the rows per block, K of
/// several groups.
const Shape kCheckShape{200, 512};

/// The chips a variant's kernel is generated for on a device of `chip`:
/// that chip, and for fp8 on sm_89 and later also sm_80 (the software
/// decode; sm_80 PTX runs on any later GPU).
std::vector<std::string> checkChips(const Variant &v, const std::string &chip,
                                    int cc) {
  std::vector<std::string> chips = {chip};
  if (v.path.fp8() && cc >= 89)
    chips.push_back("sm_80");
  return chips;
}

/// Runs every check variant once on the device and compares with the CPU
/// reference; prints one line each. True when all pass.
bool runCheck(cuda::Driver &drv, const std::string &chip, std::string &error) {
  const Shape s = kCheckShape;
  std::mt19937 rng(2);
  bool allOk = true;
  std::printf("| kernel | generated for | worst row max err / max ref | "
              "|\n| --- | --- | ---: | --- |\n");
  for (const Variant &v : checkVariants())
    for (const std::string &genChip :
         checkChips(v, chip, drv.computeCapability())) {
      std::string ptx;
      if (!toPtx(gemvIR(s, v), genChip, true, ptx, error))
        return false;
      uintptr_t mod = drv.loadPtx(ptx, error);
      uintptr_t fn = mod ? drv.function(mod, kernelName(s, v), error) : 0;
      if (!fn)
        return false;
      Problem pr = makeProblem(s, v, rng);
      cuda::DevicePtr x = drv.alloc(pr.x.size() * 2, error);
      cuda::DevicePtr w = x ? drv.alloc(pr.weights.size(), error) : 0;
      cuda::DevicePtr sc = w ? drv.alloc(pr.scales.size() * 4, error) : 0;
      cuda::DevicePtr y = sc ? drv.alloc(pr.ref.size() * 4, error) : 0;
      std::vector<float> got(pr.ref.size());
      const unsigned grid =
          unsigned((s.n + kRowsPerBlock - 1) / kRowsPerBlock);
      if (!y || !drv.upload(x, pr.x.data(), pr.x.size() * 2, error) ||
          !drv.upload(w, pr.weights.data(), pr.weights.size(), error) ||
          !drv.upload(sc, pr.scales.data(), pr.scales.size() * 4, error) ||
          !drv.launch(fn, grid, 32 * kRowsPerBlock, {&x, &w, &sc, &y},
                      error) ||
          !drv.synchronize(error) ||
          !drv.download(got.data(), y, got.size() * 4, error))
        return false;
      for (cuda::DevicePtr p : {x, w, sc, y})
        drv.free(p);
      const double rel = worstRowError(got, pr.ref, v.m, s.n);
      const bool ok = rel <= 1e-2;
      allOk &= ok;
      std::printf("| %s | %s | %.1e | %s |\n", kernelName(s, v).c_str(),
                  genChip.c_str(), rel, ok ? "ok" : "FAIL");
    }
  return allOk;
}

} // namespace

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::nibble::registerNibblePasses();
  std::vector<Shape> shapes = {{8192, 8192}, {16384, 16384}};
  int iters = 50;
  std::string ptxOnly;
  bool checkOnly = false, probeOnly = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--check") {
      checkOnly = true;
    } else if (a == "--probe-only") {
      probeOnly = true;
    } else if (a == "--iters" && i + 1 < argc) {
      iters = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--ptx-only" && i + 1 < argc) {
      ptxOnly = argv[++i];
    } else if (a == "--shapes" && i + 1 < argc) {
      shapes.clear();
      std::stringstream ss(argv[++i]);
      std::string item;
      while (std::getline(ss, item, ',')) {
        Shape s{0, 0};
        if (std::sscanf(item.c_str(), "%ldx%ld", &s.n, &s.k) != 2 ||
            s.n < 1 || s.k < 128 || s.k % 128 != 0)
          return fail("--shapes " + item + ": expected NxK with K a multiple "
                                           "of 128",
                      1);
        shapes.push_back(s);
      }
    } else {
      return fail("unknown argument " + a +
                  " (--check | --probe-only | --shapes NxK,... --iters N | "
                  "--ptx-only DIR)");
    }
  }
  std::string error;
  if (!ptxOnly.empty()) {
    std::vector<std::pair<Shape, Variant>> all;
    for (const Shape &s : shapes)
      for (const Path &p : kPaths)
        all.push_back({s, Variant{p, false, 1}});
    for (const Variant &v : checkVariants())
      all.push_back({kCheckShape, v});
    for (const char *chip : {"sm_80", "sm_90"})
      for (const auto &[s, v] : all) {
          std::string ptx;
          if (!toPtx(gemvIR(s, v), chip, true, ptx, error))
            return fail(error);
          std::string path = ptxOnly + "/" + kernelName(s, v) + "." +
                             chip + ".ptx";
          if (!support::writeFileAtomic(path, ptx.data(), ptx.size(), error))
            return fail(error);
          std::printf("wrote %s\n", path.c_str());
        }
    for (const char *chip : {"sm_80", "sm_90"}) {
      std::string ptx, path = ptxOnly + "/read_probe." + chip + ".ptx";
      if (!toPtx(probeIR(int64_t(1) << 26, 132 * 16 * 256), chip, false, ptx,
                 error) ||
          !support::writeFileAtomic(path, ptx.data(), ptx.size(), error))
        return fail(error);
      std::printf("wrote %s\n", path.c_str());
    }
    return 0;
  }

  auto drv = cuda::Driver::open(0, error);
  if (!drv)
    return fail(error + " (run on a machine with an NVIDIA GPU and driver; "
                        "--ptx-only DIR needs neither)",
                2);
  const std::string chip = "sm_" + std::to_string(drv->computeCapability());
  std::printf("device: %s (%s)\n\n", drv->deviceName().c_str(), chip.c_str());
  if (checkOnly) {
    if (!runCheck(*drv, chip, error))
      return fail(error.empty() ? "numerics differ from the CPU reference"
                                : error);
    std::printf("\nevery kernel variant equals the CPU reference\n");
    return 0;
  }

  // The probe, once.
  double probeGBs = 0;
  {
    const size_t bytes = size_t(1) << 30, n = bytes / 16;
    const unsigned block = 256, grid = 132 * 16;
    std::string ptx;
    if (!toPtx(probeIR(int64_t(n), int64_t(grid) * block), chip, false, ptx,
               error))
      return fail(error);
    uintptr_t mod = drv->loadPtx(ptx, error);
    uintptr_t fn = mod ? drv->function(mod, "read_probe", error) : 0;
    if (!fn)
      return fail(error);
    cuda::DevicePtr a = drv->alloc(bytes, error);
    cuda::DevicePtr out = a ? drv->alloc(size_t(grid) * block * 4, error) : 0;
    if (!out)
      return fail(error);
    std::vector<uint8_t> fill(bytes / 64, 1);
    for (size_t off = 0; off < bytes; off += fill.size())
      if (!drv->upload(a + off, fill.data(), fill.size(), error))
        return fail(error);
    float ms = 0;
    auto run = [&] {
      for (int r = 0; r < 10; ++r)
        if (!drv->launch(fn, grid, block, {&a, &out}, error))
          return false;
      return true;
    };
    if (!run() || !drv->synchronize(error) || !drv->time(run, ms, error))
      return fail(error);
    probeGBs = 10.0 * double(bytes) / (ms * 1e-3) / 1e9;
    drv->free(a);
    drv->free(out);
    std::printf("read-bandwidth probe: %.0f GB/s (1 GiB, 10 passes)\n\n",
                probeGBs);
    if (probeOnly)
      return 0;
  }

  Cublas blas;
  std::string blasError;
  const bool haveBlas = blas.open(blasError);
  if (!haveBlas)
    std::printf("cuBLAS: %s (no baseline column)\n\n", blasError.c_str());

  std::printf("| shape N x K | path | us/call | GB/s | of probe | vs cuBLAS "
              "fp16 | max err / max ref |\n| --- | --- | ---: | ---: | ---: "
              "| ---: | ---: |\n");
  bool allOk = true;
  std::mt19937 rng(1);
  for (const Shape &s : shapes) {
    // Activations (fp16) for cuBLAS; each path uploads its own.
    std::vector<uint16_t> xh(size_t(s.k));
    std::uniform_real_distribution<float> ux(-1.0f, 1.0f);
    for (int64_t i = 0; i < s.k; ++i)
      xh[size_t(i)] = formats::floatToHalf(ux(rng));
    cuda::DevicePtr x = drv->alloc(xh.size() * 2, error);
    cuda::DevicePtr y = x ? drv->alloc(size_t(s.n) * 4, error) : 0;
    if (!y || !drv->upload(x, xh.data(), xh.size() * 2, error))
      return fail(error);
    double blasUs = 0;
    if (haveBlas) {
      const size_t wBytes = size_t(s.n * s.k) * 2;
      const int copies = int(std::max<size_t>(2, (256u << 20) / wBytes + 1));
      std::vector<cuda::DevicePtr> ws;
      std::vector<uint16_t> wh(size_t(s.n * s.k));
      for (auto &v : wh)
        v = formats::floatToHalf(ux(rng) * 0.05f);
      for (int c = 0; c < copies; ++c) {
        ws.push_back(drv->alloc(wBytes, error));
        if (!ws.back() || !drv->upload(ws.back(), wh.data(), wBytes, error))
          return fail(error);
      }
      float ms = 0;
      auto run = [&] {
        for (int it = 0; it < iters; ++it)
          if (!blas.gemv(ws[size_t(it % copies)], x, y, int(s.n), int(s.k))) {
            error = "cublasGemmEx failed";
            return false;
          }
        return true;
      };
      if (!run() || !drv->synchronize(error) || !drv->time(run, ms, error))
        return fail(error);
      blasUs = 1e3 * ms / iters;
      std::printf("| %ldx%ld | cuBLAS fp16 | %.1f | %.0f | %.2f | 1.00 | |\n",
                  s.n, s.k, blasUs, double(wBytes) / (blasUs * 1e-6) / 1e9,
                  double(wBytes) / (blasUs * 1e-6) / 1e9 / probeGBs);
      for (cuda::DevicePtr p : ws)
        drv->free(p);
    }
    for (const Path &p : kPaths) {
      const Variant v{p, false, 1};
      std::string ptx;
      if (!toPtx(gemvIR(s, v), chip, true, ptx, error))
        return fail(error);
      uintptr_t mod = drv->loadPtx(ptx, error);
      uintptr_t fn = mod ? drv->function(mod, kernelName(s, v), error) : 0;
      if (!fn)
        return fail(error);
      Problem pr = makeProblem(s, v, rng);
      const std::vector<uint8_t> &nv = pr.weights;
      const std::vector<float> &scales = pr.scales;
      if (!drv->upload(x, pr.x.data(), pr.x.size() * 2, error))
        return fail(error);
      const size_t wBytes = nv.size(), sBytes = scales.size() * 4;
      const int copies =
          int(std::max<size_t>(2, (256u << 20) / (wBytes + sBytes) + 1));
      std::vector<cuda::DevicePtr> ws, ss;
      for (int c = 0; c < copies; ++c) {
        ws.push_back(drv->alloc(wBytes, error));
        ss.push_back(ws.back() ? drv->alloc(sBytes, error) : 0);
        if (!ss.back() || !drv->upload(ws.back(), nv.data(), wBytes, error) ||
            !drv->upload(ss.back(), scales.data(), sBytes, error))
          return fail(error);
      }
      const unsigned grid = unsigned((s.n + kRowsPerBlock - 1) / kRowsPerBlock);
      auto launch = [&](int c) {
        return drv->launch(fn, grid, 32 * kRowsPerBlock,
                           {&x, &ws[size_t(c)], &ss[size_t(c)], &y}, error);
      };
      std::vector<float> got(size_t(s.n));
      if (!launch(0) || !drv->synchronize(error) ||
          !drv->download(got.data(), y, got.size() * 4, error))
        return fail(error);
      const double rel = worstRowError(got, pr.ref, 1, s.n);
      const bool ok = rel <= 1e-2;
      allOk &= ok;
      float ms = 0;
      auto run = [&] {
        for (int it = 0; it < iters; ++it)
          if (!launch(it % copies))
            return false;
        return true;
      };
      if (!run() || !drv->synchronize(error) || !drv->time(run, ms, error))
        return fail(error);
      const double us = 1e3 * ms / iters;
      const double gbs = double(wBytes + sBytes) / (us * 1e-6) / 1e9;
      char vs[32] = "";
      if (haveBlas)
        std::snprintf(vs, sizeof vs, "%.2f", blasUs / us);
      std::printf("| %ldx%ld | %s | %.1f | %.0f | %.2f | %s | %.1e%s |\n",
                  s.n, s.k, p.label, us, gbs, gbs / probeGBs, vs, rel,
                  ok ? "" : " FAIL");
      for (int c = 0; c < copies; ++c) {
        drv->free(ws[size_t(c)]);
        drv->free(ss[size_t(c)]);
      }
    }
    drv->free(x);
    drv->free(y);
  }
  return allOk ? 0 : fail("numerics differ from the CPU reference", 1);
}
