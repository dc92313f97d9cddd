//===- FormatCodegen.cpp - Scalar code for any number format -------------===//

#include "nibble/Dialect/Nibble/IR/FormatCodegen.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace mlir::nibble::codegen {

static int64_t valueIndex(const FormatTables &t, float v) {
  // Values are distinct and ascending; -0 == +0 maps to the zero entry.
  auto it = std::lower_bound(t.values.begin(), t.values.end(), v);
  assert(it != t.values.end() && *it == v &&
         "encode produced an unknown value");
  return it - t.values.begin();
}

FormatTables buildTables(const fmt::Format &f) {
  FormatTables t;
  uint32_t numCodes = 1u << f.bits();
  for (uint32_t c = 0; c < numCodes; ++c)
    t.decode.push_back(c < f.numCodes() ? f.decode(c) : NAN);
  for (float v : f.representableValues()) {
    t.values.push_back(v);
    t.codes.push_back(static_cast<int8_t>(f.encode(v)));
    if (v == 0.0f)
      t.zeroIndex = t.values.size() - 1;
  }
  auto indexOf = [&](float x) { return valueIndex(t, f.decode(f.encode(x))); };
  for (size_t j = 0; j + 1 < t.values.size(); ++j) {
    // Bisect on floats: indexOf(lo) <= j < indexOf(hi).
    float lo = t.values[j], hi = t.values[j + 1];
    for (int iter = 0; iter < 400; ++iter) {
      float next = std::nextafter(lo, hi);
      if (next == hi)
        break;
      float mid = static_cast<float>(0.5 * (double(lo) + double(hi)));
      if (mid <= lo || mid >= hi)
        mid = next;
      if (indexOf(mid) > static_cast<int64_t>(j))
        hi = mid;
      else
        lo = mid;
    }
    t.thresholds.push_back(hi);
  }
  t.nanCode = f.nanInputCode();
  t.negZeroCode = f.negativeZeroCode();
  return t;
}

//===----------------------------------------------------------------------===//
// Scalar emitters (used inside linalg.generic bodies)
//===----------------------------------------------------------------------===//

Value cIndex(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

FormatTableValues materializeTables(OpBuilder &b, Location loc,
                                    const fmt::Format &f) {
  FormatTableValues v;
  v.tables = buildTables(f);
  v.decode = constTensor<float>(b, loc, b.getF32Type(), v.tables.decode);
  if (!v.tables.thresholds.empty())
    v.thresholds =
        constTensor<float>(b, loc, b.getF32Type(), v.tables.thresholds);
  v.codes = constTensor<int8_t>(b, loc, b.getI8Type(), v.tables.codes);
  return v;
}

/// i8 code -> f32 value.
Value emitDecode(OpBuilder &b, Location loc, Value code,
                 const FormatTableValues &tv) {
  Value idx = arith::IndexCastUIOp::create(b, loc, b.getIndexType(), code);
  return tensor::ExtractOp::create(b, loc, tv.decode, ValueRange{idx});
}

/// f32 -> i8 code: nearest representable value (ties and saturation exactly
/// as the format library decides, via its thresholds), then -0 and NaN.
Value emitEncode(OpBuilder &b, Location loc, Value y,
                 const FormatTableValues &tv) {
  const FormatTables &t = tv.tables;
  int64_t n = t.values.size();
  Value idx = cIndex(b, loc, 0);
  int64_t step = 1;
  while (step * 2 <= n - 1)
    step *= 2;
  Value last = cIndex(b, loc, n - 1);
  for (; step >= 1 && n > 1; step /= 2) {
    Value cand = arith::AddIOp::create(b, loc, idx, cIndex(b, loc, step));
    Value valid =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, cand, last);
    Value clamped = arith::MinUIOp::create(b, loc, cand, last);
    Value tIdx = arith::SubIOp::create(b, loc, clamped, cIndex(b, loc, 1));
    Value thr =
        tensor::ExtractOp::create(b, loc, tv.thresholds, ValueRange{tIdx});
    Value ge = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGE, y, thr);
    Value take = arith::AndIOp::create(b, loc, valid, ge);
    idx = arith::SelectOp::create(b, loc, take, cand, idx);
  }
  Value code = tensor::ExtractOp::create(b, loc, tv.codes, ValueRange{idx});
  auto i8c = [&](uint32_t v) -> Value {
    return arith::ConstantIntOp::create(b, loc, b.getI8Type(),
                                        static_cast<int8_t>(v));
  };
  if (t.negZeroCode && t.zeroIndex >= 0) {
    Value bits = arith::BitcastOp::create(b, loc, b.getI32Type(), y);
    Value zero32 = arith::ConstantIntOp::create(b, loc, b.getI32Type(), 0);
    Value neg =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, bits, zero32);
    Value isZero = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, idx,
                                         cIndex(b, loc, t.zeroIndex));
    Value useNegZero = arith::AndIOp::create(b, loc, neg, isZero);
    code =
        arith::SelectOp::create(b, loc, useNegZero, i8c(*t.negZeroCode), code);
  }
  Value isNan = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, y, y);
  return arith::SelectOp::create(b, loc, isNan, i8c(t.nanCode), code);
}

} // namespace mlir::nibble::codegen
