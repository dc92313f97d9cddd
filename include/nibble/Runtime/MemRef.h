//===- MemRef.h - The C descriptor of an MLIR memref ----------------------===//
//
// How compiled code built with `llvm.emit_c_interface` receives a memref:
// the runtime calls bundle entry points with it, and the JIT tests and
// kernel benchmarks call generated functions with it. Plain C++ (no MLIR).
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_RUNTIME_MEMREF_H
#define NIBBLE_RUNTIME_MEMREF_H

#include <cstdint>

namespace nibble::runtime {

/// A rank-N memref descriptor: allocated and aligned base pointers, element
/// offset, sizes and strides (in elements).
template <typename T, int N> struct MemRef {
  T *allocated;
  T *aligned;
  int64_t offset;
  int64_t sizes[N];
  int64_t strides[N];
};

} // namespace nibble::runtime

#endif // NIBBLE_RUNTIME_MEMREF_H
