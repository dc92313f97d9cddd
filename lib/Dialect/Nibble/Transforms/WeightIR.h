//===- WeightIR.h - Shared helpers of the weight-rewriting passes ---------===//
//
// The calibration-driven passes (quantize-weights, smooth, split-outliers,
// quantize-activations) all read float weights out of bound dense_resource
// constants, write new ones, and read calibration statistics of a linear's
// input. The statistics describe the input as calibrated; a pass that
// rescales a linear's input channels upstream (smoothing folded into a
// norm, outlier channels masked) records the channel multiplier m it
// applied as `nibble.input_multiplier` (a dense_resource f32 [k]), and
// later passes read the statistics of x * m through statsFor().
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_DIALECT_TRANSFORMS_WEIGHTIR_H
#define NIBBLE_LIB_DIALECT_TRANSFORMS_WEIGHTIR_H

#include "nibble/Dialect/Nibble/IR/Nibble.h"
#include "nibble/Quant/Stats.h"

#include "mlir/IR/Builders.h"
#include "mlir/Support/LLVM.h"
#include "llvm/Support/Regex.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::nibble::detail {

/// The float values of a bound dense_resource constant (f32, f16 or bf16),
/// or an error on `op` saying what is wrong with `v`.
FailureOr<std::vector<float>> readWeight(Operation *op, Value v);

/// arith.constant dense_resource<name> holding `bytes` (64-byte aligned).
Value resourceConstant(OpBuilder &b, Location loc, StringRef name,
                       RankedTensorType type, ArrayRef<char> bytes);

/// The same for float values stored as `elementType` (f32, f16 or bf16).
Value floatConstant(OpBuilder &b, Location loc, StringRef name,
                    ArrayRef<int64_t> shape, ArrayRef<float> values,
                    Type elementType);

/// x[t, j] * m[j] as a linalg.generic, x a static [T, k] f32 tensor.
Value scaleColumns(OpBuilder &b, Location loc, Value x, Value m);

/// Format option text (`int4`, `uint8`, `nf4`, `e2m1fn`, `#nibble...`) to
/// a format attribute; null if unknown.
NumberFormatAttrInterface parseFormat(MLIRContext *ctx, StringRef text);

/// The accumulated channel multiplier recorded on `op`, if any.
std::optional<std::vector<float>> inputMultiplier(Operation *op);
/// Records multiplier `m` (composed by the caller with any earlier one).
void setInputMultiplier(Operation *op, StringRef layer, ArrayRef<float> m);

/// Loads a statistics file or reports the error on `where`.
std::optional<::nibble::quant::StatsFile> loadStats(Operation *where,
                                                    StringRef path);

/// The statistics of the input `op` (a linear named `layer`) sees now:
/// those in `stats`, transformed by its input multiplier if it has one
/// (`holder` keeps the transformed copy alive). Null, with an error on
/// `op`, when the layer has no statistics or they do not fit.
const ::nibble::quant::LinearStats *
statsFor(Operation *op, StringRef layer, int64_t k,
         const ::nibble::quant::StatsFile &stats,
         std::unique_ptr<::nibble::quant::LinearStats> &holder);

/// Compiled `match` option of a pass: an empty pattern matches everything.
class LayerFilter {
public:
  LogicalResult init(Operation *where, StringRef pattern);
  bool operator()(StringRef layer) const;

private:
  std::optional<llvm::Regex> regex_;
};

/// One layer's weight quantization configuration.
struct LayerConfig {
  bool skip = false;
  std::string method, format;
  int64_t group = 0;
  bool symmetric = true;
  /// Group scale storage: "f32", "e8m0" (MX) or "e4m3" (NVFP4-style, with
  /// one f32 scale per tensor); nibble::quant::parseScaleStorage names.
  std::string scale = "f32";
};

/// A per-layer recipe file (docs/recipes.md): JSON rules mapping layer-name
/// regexes to configurations; the first match decides, unmatched layers
/// get the defaults.
class Recipe {
public:
  /// Loads `path` (nothing when empty); errors name the file and rule.
  LogicalResult load(Operation *where, StringRef path,
                     const LayerConfig &defaults);
  LayerConfig configFor(StringRef layer) const;

private:
  LayerConfig defaults_;
  std::vector<std::pair<llvm::Regex, LayerConfig>> rules_;
};

} // namespace mlir::nibble::detail

#endif // NIBBLE_LIB_DIALECT_TRANSFORMS_WEIGHTIR_H
