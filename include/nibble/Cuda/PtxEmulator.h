//===- PtxEmulator.h - Runs the PTX Nibble generates, on the CPU ----------===//
//
// An interpreter for the subset of PTX that Nibble's generated kernels use
// (LLVM's NVPTX output for the GEMV and decoder kernels: integer and f32
// arithmetic, f16 / fp8 conversions, predicates and branches, global and
// parameter loads and stores, warp shuffles). It exists because the GPU
// path must be checked where no GPU is: the emulated driver
// (tools/cuda-emulator, a libcuda.so.1 built on this) runs the unchanged
// runtime, launch sequence and kernels, so argument order, offsets, launch
// shapes and the kernels' arithmetic are exercised and every global access
// is checked against the live allocations.
//
// What it is not: a model of the hardware. It follows the PTX ISA's
// definitions as written (ex2.approx is exp2f, fp8 -> f16 puts the low
// byte in the low half); where NVIDIA's hardware and that reading differ,
// the emulator cannot tell. Threads run one at a time between warp
// synchronization points (shfl.sync), so races are not modelled; shared
// memory, barriers, atomics, textures and calls are refused with a message
// naming the instruction.
//
// Plain C++; no CUDA and no MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_CUDA_PTXEMULATOR_H
#define NIBBLE_CUDA_PTXEMULATOR_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nibble::cuda::emu {

struct Kernel; ///< a parsed .entry, ready to run

/// A parsed PTX module: its target (e.g. 90 for sm_90, `arch` true for
/// sm_90a) and entries.
class Module {
public:
  /// Parses `ptx`. nullptr with `error` naming the line and what was
  /// expected, or the first instruction the emulator does not implement.
  static std::unique_ptr<Module> parse(const std::string &ptx,
                                       std::string &error);
  ~Module();
  int targetSm() const { return sm_; }
  bool archSpecific() const { return arch_; }
  /// The entry named `name`, or nullptr.
  const Kernel *kernel(const std::string &name) const;
  std::vector<std::string> kernelNames() const;

private:
  Module() = default;
  int sm_ = 0;
  bool arch_ = false;
  std::vector<std::unique_ptr<Kernel>> kernels_;
};

/// Byte sizes of an entry's parameters, in order.
std::vector<size_t> parameterSizes(const Kernel &kernel);
const std::string &kernelName(const Kernel &kernel);

/// Where kernels may read and write: the caller's live allocations.
class Memory {
public:
  virtual ~Memory();
  /// True when [address, address + bytes) lies inside one allocation.
  virtual bool contains(uint64_t address, size_t bytes) const = 0;
};

/// Memory as a set of [base, base + bytes) ranges (the emulated driver's
/// allocations; a test's buffers).
class Allocations final : public Memory {
public:
  void add(uint64_t base, size_t bytes) { ranges_[base] = bytes; }
  /// False when `base` starts no range.
  bool remove(uint64_t base);
  bool contains(uint64_t address, size_t bytes) const override;

private:
  std::map<uint64_t, size_t> ranges_;
  mutable std::pair<uint64_t, size_t> last_{0, 0}; // the range hit last
};

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

struct LaunchStats {
  uint64_t instructions = 0; ///< executed, summed over threads
};

/// Runs `kernel` over `grid` x `block` threads with `params[i]` pointing
/// at the i-th parameter's value (cuLaunchKernel's kernelParams). Global
/// addresses are host addresses; each access is checked with `memory`.
/// False with `error` naming the kernel, the PTX line, the thread and the
/// fault (an address outside every allocation, a shuffle some lanes of the
/// warp did not reach, ...).
bool launch(const Kernel &kernel, Dim3 grid, Dim3 block,
            void *const *params, const Memory &memory, std::string &error,
            LaunchStats *stats = nullptr);

} // namespace nibble::cuda::emu

#endif // NIBBLE_CUDA_PTXEMULATOR_H
