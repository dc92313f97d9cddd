//===- LayerError.cpp - Compare rounding methods on real layer inputs -----===//

#include "nibble/Calibration/LayerError.h"

#include "nibble/Quant/Smooth.h"

#include <algorithm>
#include <numeric>

namespace nibble::calibration {

const char *methodName(Method m) {
  switch (m) {
  case Method::RTN:
    return "rtn";
  case Method::RTNMse:
    return "rtn-mse";
  case Method::ImportanceRTN:
    return "imatrix-rtn";
  case Method::GPTQ:
    return "gptq";
  case Method::AWQ:
    return "awq";
  }
  return "?";
}

std::optional<Method> parseMethod(const std::string &name) {
  if (name == "imatrix")
    return Method::ImportanceRTN;
  for (Method m : {Method::RTN, Method::RTNMse, Method::GPTQ, Method::AWQ})
    if (name == methodName(m))
      return m;
  return std::nullopt;
}

const model::TensorView *linearWeight(const model::Model &model,
                                      const std::string &layer) {
  if (layer == "lm_head")
    return &model.lmHead();
  return model.find(layer + ".weight");
}

std::optional<std::vector<float>>
effectiveWeights(const MethodSpec &spec, quant::MatrixView w,
                 const quant::LinearStats *statsPtr, std::string &error) {
  using namespace quant;
  if (!statsPtr && spec.method != Method::RTN &&
      spec.method != Method::RTNMse) {
    error = std::string(methodName(spec.method)) +
            " needs the layer's calibration statistics";
    return std::nullopt;
  }
  static const LinearStats kNone(1, false);
  const LinearStats &stats = statsPtr ? *statsPtr : kNone;
  switch (spec.method) {
  case Method::RTN:
  case Method::RTNMse:
  case Method::ImportanceRTN: {
    RTNOptions o;
    o.mseClip = spec.method != Method::RTN;
    if (spec.method == Method::ImportanceRTN)
      o.importance = stats.meanSq();
    auto q = quantizeRTN(w, spec.scheme, o, error);
    if (!q)
      return std::nullopt;
    return q->dequantize();
  }
  case Method::GPTQ: {
    if (!stats.hasHessian()) {
      error = "GPTQ needs a Hessian in the statistics";
      return std::nullopt;
    }
    auto r = quantizeGPTQ(w, stats.hessian()->hessian(), spec.scheme, {}, error);
    if (!r)
      return std::nullopt;
    return r->weight.dequantize();
  }
  case Method::AWQ: {
    if (!stats.hasHessian()) {
      error = "AWQ needs X^T X in the statistics";
      return std::nullopt;
    }
    auto r = quantizeAWQ(w, stats.hessian()->gram(), stats.meanAbs(),
                         stats.meanSq(), spec.scheme, error);
    if (!r)
      return std::nullopt;
    const int64_t k = w.cols;
    std::vector<float> eff = r->weight.dequantize();
    for (int64_t n = 0; n < w.rows; ++n)
      for (int64_t j = 0; j < k; ++j)
        eff[n * k + j] /= r->scales[j];
    return eff;
  }
  }
  return std::nullopt;
}

static int64_t maxGroup(const std::vector<MethodSpec> &specs) {
  int64_t g = 1;
  for (const MethodSpec &s : specs)
    if (s.scheme.groupSize > 0)
      g = std::lcm(g, s.scheme.groupSize);
  return g;
}

bool compareMethods(const model::Model &model, const quant::StatsFile &calib,
                    const std::map<std::string, std::vector<float>> &heldOut,
                    const std::vector<MethodSpec> &specs,
                    std::map<std::string, std::vector<double>> &result,
                    std::vector<std::string> &skipped, std::string &error) {
  for (const auto &[layer, x] : heldOut) {
    const quant::LinearStats *stats = calib.find(layer);
    const model::TensorView *t = linearWeight(model, layer);
    if (!stats || !t)
      continue;
    const int64_t n = t->shape[0], k = t->shape[1];
    if (k % std::max<int64_t>(1, maxGroup(specs)) != 0) {
      skipped.push_back(layer);
      continue;
    }
    std::vector<float> w;
    t->toFloat(w);
    quant::MatrixView wv{w.data(), n, k};
    // Held-out Gram matrix G = X^T X: ||X D^T||^2 = sum_n d_n^T G d_n.
    quant::HessianAccumulator acc(k);
    acc.add(x.data(), int64_t(x.size()) / k);
    const std::vector<double> gram = acc.gram();
    std::vector<float> zero(w.size(), 0.0f);
    const double norm = quant::gramError(gram, wv, {zero.data(), n, k});
    auto &row = result[layer];
    for (const MethodSpec &spec : specs) {
      auto eff = effectiveWeights(spec, wv, stats, error);
      if (!eff) {
        error = layer + " (" + methodName(spec.method) + "): " + error;
        return false;
      }
      row.push_back(quant::gramError(gram, wv, {eff->data(), n, k}) /
                    (norm > 0 ? norm : 1.0));
    }
  }
  return true;
}

} // namespace nibble::calibration
