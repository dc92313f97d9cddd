//===- Tensor.cpp - Element types and tensor views ------------------------===//

#include "nibble/Model/Tensor.h"

#include "nibble/Formats/Half.h"

#include <cstring>

namespace nibble::model {

namespace {
struct DTypeInfo {
  DType type;
  const char *name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8},         {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},         {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},         {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},         {DType::I8, "I8", 1},
    {DType::U64, "U64", 8},         {DType::U32, "U32", 4},
    {DType::U16, "U16", 2},         {DType::U8, "U8", 1},
    {DType::Bool, "BOOL", 1},
};
} // namespace

std::string_view dtypeName(DType t) {
  for (const auto &d : kDTypes)
    if (d.type == t)
      return d.name;
  return "?";
}

std::optional<DType> dtypeFromName(std::string_view name) {
  for (const auto &d : kDTypes)
    if (name == d.name)
      return d.type;
  return std::nullopt;
}

size_t dtypeSize(DType t) {
  for (const auto &d : kDTypes)
    if (d.type == t)
      return d.size;
  return 0;
}

int64_t TensorView::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

bool TensorView::toFloat(std::vector<float> &out) const {
  size_t n = size_t(numElements());
  out.resize(n);
  switch (dtype) {
  case DType::F32:
    std::memcpy(out.data(), data, n * 4);
    return true;
  case DType::F16:
    formats::halfToFloat(data, out.data(), n);
    return true;
  case DType::BF16:
    formats::bf16ToFloat(data, out.data(), n);
    return true;
  default:
    out.clear();
    return false;
  }
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

} // namespace nibble::model
