//===- CudaEmulator.cpp - libcuda.so.1 that runs PTX on the CPU -----------===//
//
// The CUDA Driver API entry points Nibble's runtime resolves (see
// lib/Cuda/Driver.cpp), implemented over the PTX emulator: device memory is
// host memory, modules are parsed PTX, launches run on the calling thread.
// Put its directory first on LD_LIBRARY_PATH and `quant-run` on a CUDA
// bundle runs the bundle's own kernels and launch sequence here:
//
//   LD_LIBRARY_PATH=build/lib/cuda-emulator quant-run model.nbl generate
//
// It checks what a GPU would only show as corruption or a crash: every
// global access against the live allocations and its alignment, memcpy
// ranges, launch shapes and parameter counts; new allocations are filled
// with 0xFF bytes (NaN as f32), so reading memory nobody wrote shows. After
// a fault every later call fails, as on a real context.
//
//   NIBBLE_CUDA_EMU_CC=80|89|90   the compute capability reported (90)
//   NIBBLE_CUDA_EMU_TRACE=1       one line per launch on stderr
//
// Speed numbers taken through it are the emulator's, not a GPU's.
//
//===----------------------------------------------------------------------===//

#include "nibble/Cuda/PtxEmulator.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>

using namespace nibble::cuda;

namespace {

enum : int {
  kSuccess = 0,
  kInvalidValue = 1,
  kOutOfMemory = 2,
  kInvalidDevice = 101,
  kNoBinaryForGpu = 209,
  kInvalidPtx = 218,
  kInvalidHandle = 400,
  kNotFound = 500,
  kLaunchFailed = 719,
};

struct Event {
  std::chrono::steady_clock::time_point at;
};

struct State {
  std::mutex mutex;
  emu::Allocations memory;
  std::map<void *, std::unique_ptr<emu::Module>> modules;
  std::string fault;   // the first launch fault: the context is lost
  std::string message; // what cuGetErrorString returns for it
  int cc = 90;
  bool trace = false;
};

State &state() {
  static State *s = [] {
    auto *st = new State();
    if (const char *cc = std::getenv("NIBBLE_CUDA_EMU_CC"))
      st->cc = std::atoi(cc);
    const char *trace = std::getenv("NIBBLE_CUDA_EMU_TRACE");
    st->trace = trace && *trace && std::strcmp(trace, "0") != 0;
    return st;
  }();
  return *s;
}

int lost(State &s) { return s.fault.empty() ? kSuccess : kLaunchFailed; }

} // namespace

#define API extern "C" __attribute__((visibility("default"))) int

API cuInit(unsigned) { return kSuccess; }
API cuDeviceGetCount(int *count) {
  *count = 1;
  return kSuccess;
}
API cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0)
    return kInvalidDevice;
  *device = 0;
  return kSuccess;
}
API cuDeviceGetName(char *name, int len, int) {
  std::snprintf(name, size_t(len), "Nibble PTX emulator (CPU, sm_%d)",
                state().cc);
  return kSuccess;
}
API cuDeviceGetAttribute(int *value, int attribute, int) {
  if (attribute == 75) // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    *value = state().cc / 10;
  else if (attribute == 76) // ..._MINOR
    *value = state().cc % 10;
  else
    return kInvalidValue;
  return kSuccess;
}
API cuDevicePrimaryCtxRetain(void **context, int) {
  *context = &state();
  return kSuccess;
}
API cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
API cuCtxSetCurrent(void *) { return kSuccess; }
API cuCtxSynchronize() {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return lost(s);
}

API cuModuleLoadDataEx(void **module, const void *image, unsigned numOptions,
                       int *options, void **values) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::string error;
  auto m = emu::Module::parse(static_cast<const char *>(image), error);
  int rc = m ? kSuccess : kInvalidPtx;
  if (m && (m->targetSm() > s.cc || (m->archSpecific() && m->targetSm() != s.cc))) {
    error = "PTX for sm_" + std::to_string(m->targetSm()) +
            (m->archSpecific() ? "a" : "") + " cannot run on the emulated sm_" +
            std::to_string(s.cc);
    rc = kNoBinaryForGpu;
  }
  if (rc != kSuccess) {
    // CU_JIT_ERROR_LOG_BUFFER (5) and its size (6), as the driver fills them.
    char *log = nullptr;
    size_t size = 0;
    for (unsigned i = 0; i < numOptions; ++i) {
      if (options[i] == 5)
        log = static_cast<char *>(values[i]);
      if (options[i] == 6)
        size = size_t(reinterpret_cast<uintptr_t>(values[i]));
    }
    if (log && size)
      std::snprintf(log, size, "%s", error.c_str());
    return rc;
  }
  void *handle = m.get();
  s.modules[handle] = std::move(m);
  *module = handle;
  return kSuccess;
}

API cuModuleGetFunction(void **function, void *module, const char *name) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.modules.find(module);
  if (it == s.modules.end())
    return kInvalidHandle;
  const emu::Kernel *k = it->second->kernel(name);
  if (!k)
    return kNotFound;
  *function = const_cast<emu::Kernel *>(k);
  return kSuccess;
}

API cuMemAlloc_v2(unsigned long long *ptr, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (int rc = lost(s))
    return rc;
  if (bytes == 0)
    return kInvalidValue;
  void *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!p)
    return kOutOfMemory;
  std::memset(p, 0xFF, bytes);
  s.memory.add(reinterpret_cast<uint64_t>(p), bytes);
  *ptr = reinterpret_cast<uint64_t>(p);
  return kSuccess;
}

API cuMemFree_v2(unsigned long long ptr) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.memory.remove(ptr))
    return kInvalidValue;
  std::free(reinterpret_cast<void *>(ptr));
  return kSuccess;
}

API cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (int rc = lost(s))
    return rc;
  if (!s.memory.contains(dst, bytes))
    return kInvalidValue;
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  return kSuccess;
}

API cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t bytes) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (int rc = lost(s))
    return rc;
  if (!s.memory.contains(src, bytes))
    return kInvalidValue;
  std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}

API cuLaunchKernel(void *function, unsigned gx, unsigned gy, unsigned gz,
                   unsigned bx, unsigned by, unsigned bz, unsigned shared,
                   void *, void **params, void **extra) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (int rc = lost(s))
    return rc;
  if (!function || shared || extra)
    return kInvalidValue;
  const auto &k = *static_cast<const emu::Kernel *>(function);
  std::string error;
  emu::LaunchStats stats;
  auto t0 = std::chrono::steady_clock::now();
  if (!emu::launch(k, {gx, gy, gz}, {bx, by, bz}, params, s.memory, error,
                   &stats)) {
    s.fault = error;
    s.message = "an emulated kernel faulted: " + error;
    std::fprintf(stderr, "%s\n", s.message.c_str());
    return kLaunchFailed;
  }
  if (s.trace)
    std::fprintf(stderr,
                 "cuda-emulator: %s grid %u block %u: %llu instructions, "
                 "%.3f ms\n",
                 emu::kernelName(k).c_str(), gx * gy * gz, bx * by * bz,
                 (unsigned long long)stats.instructions,
                 std::chrono::duration<double, std::milli>(
                     std::chrono::steady_clock::now() - t0)
                     .count());
  return kSuccess;
}

API cuEventCreate(void **event, unsigned) {
  *event = new Event();
  return kSuccess;
}
API cuEventRecord(void *event, void *) {
  static_cast<Event *>(event)->at = std::chrono::steady_clock::now();
  return kSuccess;
}
API cuEventSynchronize(void *) { return kSuccess; }
API cuEventElapsedTime(float *ms, void *start, void *stop) {
  *ms = std::chrono::duration<float, std::milli>(
            static_cast<Event *>(stop)->at - static_cast<Event *>(start)->at)
            .count();
  return kSuccess;
}
API cuEventDestroy_v2(void *event) {
  delete static_cast<Event *>(event);
  return kSuccess;
}

API cuGetErrorString(int code, const char **text) {
  switch (code) {
  case kSuccess: *text = "no error"; break;
  case kInvalidValue: *text = "invalid argument (emulator: out-of-range copy, zero-byte allocation or unsupported launch option)"; break;
  case kOutOfMemory: *text = "out of memory"; break;
  case kInvalidDevice: *text = "invalid device ordinal"; break;
  case kNoBinaryForGpu: *text = "no kernel image is available for execution on the device"; break;
  case kInvalidPtx: *text = "a PTX JIT compilation failed"; break;
  case kInvalidHandle: *text = "invalid resource handle"; break;
  case kNotFound: *text = "named symbol not found"; break;
  case kLaunchFailed: *text = state().message.c_str(); break;
  default: *text = "unknown error"; return kInvalidValue;
  }
  return kSuccess;
}
