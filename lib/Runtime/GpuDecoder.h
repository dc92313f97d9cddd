//===- GpuDecoder.h - Run a CUDA bundle's decode step (runtime) -*- C++ -*-===//
//
// A bundle for cuda-smXY carries PTX (the "code" section), weights in the
// GEMV kernels' layouts, and a manifest "gpu" section naming the kernel of
// every step (docs/gpu.md). GpuModel opens the driver (dlopen; no CUDA at
// build time), loads the PTX, uploads the weights once, and runs one token
// as the fixed sequence of launches of a Llama decoder layer. Errors are
// strings that start with the bundle's path.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_RUNTIME_GPUDECODER_H
#define NIBBLE_LIB_RUNTIME_GPUDECODER_H

#include "nibble/Cuda/Driver.h"

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::runtime {

struct Manifest;

class GpuModel {
public:
  /// Opens device 0, checks its compute capability against the bundle's
  /// chip, loads `ptx` and uploads `weights`; nullptr with `error`
  /// ("PATH: this bundle runs on an NVIDIA GPU (sm_90): no CUDA driver: ...").
  static std::shared_ptr<GpuModel> load(const std::string &path,
                                        const Manifest &manifest,
                                        std::string_view ptx,
                                        const int8_t *weights, size_t bytes,
                                        std::string &error);
  ~GpuModel();

  /// A session's device buffers: activations and the two KV caches.
  class State {
  public:
    ~State();

  private:
    friend class GpuModel;
    std::shared_ptr<GpuModel> model_;
    std::vector<cuda::DevicePtr> owned_;
    cuda::DevicePtr x = 0, xn = 0, q = 0, k = 0, v = 0, att = 0, tmp = 0,
                    gate = 0, up = 0, h = 0, logits = 0, kCache = 0,
                    vCache = 0;
  };
  static std::unique_ptr<State> newState(std::shared_ptr<GpuModel> model,
                                         std::string &error);

  /// Runs `token` at `pos` and writes the vocab logits to `logits`.
  bool step(State &s, int32_t token, int64_t pos, float *logits,
            std::string &error);

  const std::string &deviceName() const { return driver_->deviceName(); }

private:
  GpuModel() = default;

  /// A kernel and its launch shape.
  struct Kernel {
    uintptr_t fn = 0;
    unsigned grid = 0, block = 0;
  };
  struct Linear {
    Kernel kernel;
    cuda::DevicePtr codes = 0, scales = 0;
    int64_t n = 0, kStored = 0;
  };
  struct Layer {
    cuda::DevicePtr attnNorm = 0, ffnNorm = 0;
    std::array<Linear, 7> linears; ///< q k v o gate up down
  };
  bool launch(const Kernel &k, std::vector<void *> args, std::string &error);
  bool gemv(const Linear &l, cuda::DevicePtr x, cuda::DevicePtr y,
            std::string &error);

  std::string path_;
  std::unique_ptr<cuda::Driver> driver_;
  cuda::DevicePtr weights_ = 0;
  int64_t vocab_ = 0, dim_ = 0, hidden_ = 0, qDim_ = 0, kvDim_ = 0,
          cacheElements_ = 0, maxK_ = 0;
  Kernel embed_, rmsnorm_, ropeKV_, attention_, swiglu_, add_;
  cuda::DevicePtr embedTable_ = 0, ropeCos_ = 0, ropeSin_ = 0,
                  finalNorm_ = 0;
  std::vector<Layer> layers_;
  Linear lmHead_;
};

} // namespace nibble::runtime

#endif // NIBBLE_LIB_RUNTIME_GPUDECODER_H
