//===- Driver.cpp - The CUDA Driver API through dlopen ---------------------===//

#include "nibble/Cuda/Driver.h"

#include <dlfcn.h>

namespace nibble::cuda {

/// The Driver API's C signatures (cuda.h), with opaque handles as void *.
struct Api {
  int (*cuInit)(unsigned);
  int (*cuDeviceGetCount)(int *);
  int (*cuDeviceGet)(int *, int);
  int (*cuDeviceGetName)(char *, int, int);
  int (*cuDeviceGetAttribute)(int *, int, int);
  int (*cuDevicePrimaryCtxRetain)(void **, int);
  int (*cuDevicePrimaryCtxRelease)(int);
  int (*cuCtxSetCurrent)(void *);
  int (*cuCtxSynchronize)();
  int (*cuModuleLoadDataEx)(void **, const void *, unsigned, int *, void **);
  int (*cuModuleGetFunction)(void **, void *, const char *);
  int (*cuMemAlloc)(DevicePtr *, size_t);
  int (*cuMemFree)(DevicePtr);
  int (*cuMemcpyHtoD)(DevicePtr, const void *, size_t);
  int (*cuMemcpyDtoH)(void *, DevicePtr, size_t);
  int (*cuLaunchKernel)(void *, unsigned, unsigned, unsigned, unsigned,
                        unsigned, unsigned, unsigned, void *, void **,
                        void **);
  int (*cuEventCreate)(void **, unsigned);
  int (*cuEventRecord)(void *, void *);
  int (*cuEventSynchronize)(void *);
  int (*cuEventElapsedTime)(float *, void *, void *);
  int (*cuEventDestroy)(void *);
  int (*cuGetErrorString)(int, const char **);
};

namespace {

constexpr int kComputeCapabilityMajor = 75; // CU_DEVICE_ATTRIBUTE_*
constexpr int kComputeCapabilityMinor = 76;
constexpr int kJitErrorLogBuffer = 5;       // CU_JIT_ERROR_LOG_BUFFER
constexpr int kJitErrorLogBufferBytes = 6;  // ..._SIZE_BYTES

template <typename F>
bool resolve(void *lib, F &slot, std::initializer_list<const char *> names,
             std::string &error) {
  for (const char *n : names)
    if (void *p = dlsym(lib, n)) {
      slot = reinterpret_cast<F>(p);
      return true;
    }
  error = std::string("no CUDA driver: libcuda.so.1 lacks ") + *names.begin();
  return false;
}

} // namespace

bool Driver::check(int result, const char *call, std::string &error) const {
  if (result == 0)
    return true;
  const char *text = nullptr;
  if (api_ && api_->cuGetErrorString)
    api_->cuGetErrorString(result, &text);
  error = std::string(call) + " failed: " +
          (text ? text : "CUDA error " + std::to_string(result));
  return false;
}

std::unique_ptr<Driver> Driver::open(int ordinal, std::string &error) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    error = std::string("no CUDA driver: ") +
            (why ? why : "libcuda.so.1 cannot be opened");
    return nullptr;
  }
  std::unique_ptr<Driver> d(new Driver());
  d->lib_ = lib;
  d->api_ = std::make_unique<Api>();
  Api &a = *d->api_;
  if (!resolve(lib, a.cuInit, {"cuInit"}, error) ||
      !resolve(lib, a.cuDeviceGetCount, {"cuDeviceGetCount"}, error) ||
      !resolve(lib, a.cuDeviceGet, {"cuDeviceGet"}, error) ||
      !resolve(lib, a.cuDeviceGetName, {"cuDeviceGetName"}, error) ||
      !resolve(lib, a.cuDeviceGetAttribute, {"cuDeviceGetAttribute"}, error) ||
      !resolve(lib, a.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"},
               error) ||
      !resolve(lib, a.cuDevicePrimaryCtxRelease,
               {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"},
               error) ||
      !resolve(lib, a.cuCtxSetCurrent, {"cuCtxSetCurrent"}, error) ||
      !resolve(lib, a.cuCtxSynchronize, {"cuCtxSynchronize"}, error) ||
      !resolve(lib, a.cuModuleLoadDataEx, {"cuModuleLoadDataEx"}, error) ||
      !resolve(lib, a.cuModuleGetFunction, {"cuModuleGetFunction"}, error) ||
      !resolve(lib, a.cuMemAlloc, {"cuMemAlloc_v2"}, error) ||
      !resolve(lib, a.cuMemFree, {"cuMemFree_v2"}, error) ||
      !resolve(lib, a.cuMemcpyHtoD, {"cuMemcpyHtoD_v2"}, error) ||
      !resolve(lib, a.cuMemcpyDtoH, {"cuMemcpyDtoH_v2"}, error) ||
      !resolve(lib, a.cuLaunchKernel, {"cuLaunchKernel"}, error) ||
      !resolve(lib, a.cuEventCreate, {"cuEventCreate"}, error) ||
      !resolve(lib, a.cuEventRecord, {"cuEventRecord"}, error) ||
      !resolve(lib, a.cuEventSynchronize, {"cuEventSynchronize"}, error) ||
      !resolve(lib, a.cuEventElapsedTime,
               {"cuEventElapsedTime", "cuEventElapsedTime_v2"}, error) ||
      !resolve(lib, a.cuEventDestroy, {"cuEventDestroy_v2", "cuEventDestroy"},
               error) ||
      !resolve(lib, a.cuGetErrorString, {"cuGetErrorString"}, error))
    return nullptr;
  int count = 0;
  if (!d->check(a.cuInit(0), "cuInit", error) ||
      !d->check(a.cuDeviceGetCount(&count), "cuDeviceGetCount", error))
    return nullptr;
  if (ordinal < 0 || ordinal >= count) {
    error = "no CUDA device " + std::to_string(ordinal) + " (the driver sees " +
            std::to_string(count) + ")";
    return nullptr;
  }
  char name[256] = {0};
  int major = 0, minor = 0;
  if (!d->check(a.cuDeviceGet(&d->device_, ordinal), "cuDeviceGet", error) ||
      !d->check(a.cuDeviceGetName(name, sizeof name - 1, d->device_),
                "cuDeviceGetName", error) ||
      !d->check(a.cuDeviceGetAttribute(&major, kComputeCapabilityMajor,
                                       d->device_),
                "cuDeviceGetAttribute", error) ||
      !d->check(a.cuDeviceGetAttribute(&minor, kComputeCapabilityMinor,
                                       d->device_),
                "cuDeviceGetAttribute", error) ||
      !d->check(a.cuDevicePrimaryCtxRetain(&d->context_, d->device_),
                "cuDevicePrimaryCtxRetain", error) ||
      !d->check(a.cuCtxSetCurrent(d->context_), "cuCtxSetCurrent", error))
    return nullptr;
  d->name_ = name;
  d->cc_ = 10 * major + minor;
  return d;
}

Driver::~Driver() {
  if (api_ && context_)
    api_->cuDevicePrimaryCtxRelease(device_);
  // libcuda stays loaded: unloading a driver library mid-process is not
  // supported by it.
}

uintptr_t Driver::loadPtx(const std::string &ptx, std::string &error) {
  char log[8192] = {0};
  int options[] = {kJitErrorLogBuffer, kJitErrorLogBufferBytes};
  void *values[] = {log, reinterpret_cast<void *>(uintptr_t(sizeof log))};
  void *module = nullptr;
  if (!check(api_->cuModuleLoadDataEx(&module, ptx.c_str(), 2, options,
                                      values),
             "cuModuleLoadDataEx (PTX JIT)", error)) {
    if (log[0])
      error += std::string("\n") + log;
    return 0;
  }
  return reinterpret_cast<uintptr_t>(module);
}

uintptr_t Driver::function(uintptr_t module, const std::string &name,
                           std::string &error) {
  void *fn = nullptr;
  if (!check(api_->cuModuleGetFunction(
                 &fn, reinterpret_cast<void *>(module), name.c_str()),
             ("cuModuleGetFunction(" + name + ")").c_str(), error))
    return 0;
  return reinterpret_cast<uintptr_t>(fn);
}

DevicePtr Driver::alloc(size_t bytes, std::string &error) {
  DevicePtr p = 0;
  if (!check(api_->cuMemAlloc(&p, bytes),
             ("cuMemAlloc(" + std::to_string(bytes) + " bytes)").c_str(),
             error))
    return 0;
  return p;
}

void Driver::free(DevicePtr p) {
  if (p)
    api_->cuMemFree(p);
}

bool Driver::upload(DevicePtr dst, const void *src, size_t bytes,
                    std::string &error) {
  return check(api_->cuMemcpyHtoD(dst, src, bytes), "cuMemcpyHtoD", error);
}

bool Driver::download(void *dst, DevicePtr src, size_t bytes,
                      std::string &error) {
  return check(api_->cuMemcpyDtoH(dst, src, bytes), "cuMemcpyDtoH", error);
}

bool Driver::launch(uintptr_t fn, unsigned gridX, unsigned blockX,
                    std::vector<void *> args, std::string &error) {
  return check(api_->cuLaunchKernel(reinterpret_cast<void *>(fn), gridX, 1, 1,
                                    blockX, 1, 1, 0, nullptr, args.data(),
                                    nullptr),
               "cuLaunchKernel", error);
}

bool Driver::synchronize(std::string &error) {
  return check(api_->cuCtxSynchronize(), "cuCtxSynchronize", error);
}

bool Driver::time(const std::function<bool()> &body, float &ms,
                  std::string &error) {
  void *start = nullptr, *stop = nullptr;
  bool ok = check(api_->cuEventCreate(&start, 0), "cuEventCreate", error) &&
            check(api_->cuEventCreate(&stop, 0), "cuEventCreate", error) &&
            check(api_->cuEventRecord(start, nullptr), "cuEventRecord",
                  error) &&
            body() &&
            check(api_->cuEventRecord(stop, nullptr), "cuEventRecord",
                  error) &&
            check(api_->cuEventSynchronize(stop), "cuEventSynchronize",
                  error) &&
            check(api_->cuEventElapsedTime(&ms, start, stop),
                  "cuEventElapsedTime", error);
  if (start)
    api_->cuEventDestroy(start);
  if (stop)
    api_->cuEventDestroy(stop);
  return ok;
}

} // namespace nibble::cuda
