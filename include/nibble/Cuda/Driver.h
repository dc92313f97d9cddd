//===- Driver.h - The CUDA Driver API, loaded at run time -----------------===//
//
// Nibble builds and runs without CUDA: libcuda.so.1 is opened with dlopen
// when a GPU is asked for, and every failure (no library, no device, a
// driver error) becomes a message naming the call and the driver's error
// string. Only what the GEMV harness and benchmark need: the primary
// context of one device, PTX modules (JIT-compiled by the driver), device
// memory, launches and event timing. Plain C++; no CUDA headers.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_CUDA_DRIVER_H
#define NIBBLE_CUDA_DRIVER_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nibble::cuda {

using DevicePtr = unsigned long long; ///< CUdeviceptr
struct Api;                           ///< the resolved entry points

class Driver {
public:
  /// dlopen(libcuda.so.1), cuInit, device `ordinal`, its primary context.
  /// nullptr with `error` ("no CUDA driver: libcuda.so.1: cannot open ...",
  /// "no CUDA device: ...") otherwise.
  static std::unique_ptr<Driver> open(int ordinal, std::string &error);
  ~Driver();
  Driver(const Driver &) = delete;
  Driver &operator=(const Driver &) = delete;

  const std::string &deviceName() const { return name_; }
  int computeCapability() const { return cc_; } ///< e.g. 90 for sm_90

  /// A PTX module (the driver JIT-compiles it); 0 with `error` on failure
  /// (the JIT log is included).
  uintptr_t loadPtx(const std::string &ptx, std::string &error);
  uintptr_t function(uintptr_t module, const std::string &name,
                     std::string &error);

  DevicePtr alloc(size_t bytes, std::string &error); ///< 0 on failure
  void free(DevicePtr p);
  bool upload(DevicePtr dst, const void *src, size_t bytes,
              std::string &error);
  bool download(void *dst, DevicePtr src, size_t bytes, std::string &error);

  /// Launches `fn` with pointer/scalar arguments given by address.
  bool launch(uintptr_t fn, unsigned gridX, unsigned blockX,
              std::vector<void *> args, std::string &error);
  bool synchronize(std::string &error);

  /// Milliseconds of GPU time taken by `body` (events around it).
  bool time(const std::function<bool()> &body, float &ms,
            std::string &error);

  /// The handle dlopen gave (for libraries that need the same process
  /// state, e.g. cuBLAS uses the primary context).
  void *library() const { return lib_; }

private:
  Driver() = default;
  bool check(int result, const char *call, std::string &error) const;

  void *lib_ = nullptr;
  std::unique_ptr<Api> api_;
  int device_ = 0;
  void *context_ = nullptr;
  std::string name_;
  int cc_ = 0;
};

} // namespace nibble::cuda

#endif // NIBBLE_CUDA_DRIVER_H
