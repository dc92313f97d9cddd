//===- LayerError.h - Compare rounding methods on real layer inputs -------===//
//
// For each linear layer of a model: quantize its weight with several
// methods, using statistics from a calibration slice, and measure the
// relative output error ||X W^T - X Q^T||^2 / ||X W^T||^2 on inputs X
// collected from a disjoint, held-out slice of text.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_CALIBRATION_LAYERERROR_H
#define NIBBLE_CALIBRATION_LAYERERROR_H

#include "nibble/Model/Model.h"
#include "nibble/Quant/Stats.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nibble::calibration {

enum class Method { RTN, RTNMse, ImportanceRTN, GPTQ, AWQ };
const char *methodName(Method m);
/// The method of a compiler method name (rtn, rtn-mse, imatrix, gptq, awq).
std::optional<Method> parseMethod(const std::string &name);

struct MethodSpec {
  Method method;
  quant::WeightScheme scheme;
};

/// The f32 weights a method's codes stand for (for AWQ: Q(W s) / s), from
/// the layer's calibration statistics (GPTQ and AWQ need its Hessian,
/// imatrix its mean x^2; RTN and rtn-mse need none: `stats` may be null).
/// nullopt with `error` otherwise.
std::optional<std::vector<float>>
effectiveWeights(const MethodSpec &spec, quant::MatrixView w,
                 const quant::LinearStats *stats, std::string &error);

/// Relative held-out output error of every (layer, method): result[layer][i]
/// for specs[i]. Layers are those present in both `calib` and `heldOut`;
/// layers whose input width no spec's group size divides are listed in
/// `skipped` instead. GPTQ and AWQ need Hessians in `calib`; AWQ searches
/// its scale and then a clip ratio (AWQ's own pipeline).
bool compareMethods(const model::Model &model, const quant::StatsFile &calib,
                    const std::map<std::string, std::vector<float>> &heldOut,
                    const std::vector<MethodSpec> &specs,
                    std::map<std::string, std::vector<double>> &result,
                    std::vector<std::string> &skipped, std::string &error);

/// The weight tensor behind a linear layer name ("lm_head" included).
const model::TensorView *linearWeight(const model::Model &model,
                                      const std::string &layer);

} // namespace nibble::calibration

#endif // NIBBLE_CALIBRATION_LAYERERROR_H
