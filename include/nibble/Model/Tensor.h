//===- Tensor.h - Element types and read-only tensor views ----------------===//

#ifndef NIBBLE_MODEL_TENSOR_H
#define NIBBLE_MODEL_TENSOR_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::model {

/// Element types of checkpoint tensors (safetensors spelling in dtypeName).
enum class DType : uint8_t {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2,
  I64, I32, I16, I8, U64, U32, U16, U8, Bool,
};

std::string_view dtypeName(DType t);
std::optional<DType> dtypeFromName(std::string_view name);
size_t dtypeSize(DType t);

/// A view of one tensor inside a mapped file: never owns its bytes.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t nbytes = 0;
  std::string file;     ///< the file the bytes live in
  uint64_t fileOffset = 0; ///< where they start in that file

  int64_t numElements() const;
  /// Converts to f32 (f32, f16 and bf16 only; false otherwise).
  bool toFloat(std::vector<float> &out) const;
};

std::string shapeString(const std::vector<int64_t> &shape);

} // namespace nibble::model

#endif // NIBBLE_MODEL_TENSOR_H
