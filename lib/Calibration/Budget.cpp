//===- Budget.cpp - Per-layer formats chosen for an accuracy budget -------===//

#include "nibble/Calibration/Budget.h"

#include "nibble/Quant/BitAllocation.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

namespace nibble::calibration {

std::optional<BudgetSpec> BudgetSpec::parse(const std::string &text,
                                            std::string &error) {
  BudgetSpec s;
  s.text = text;
  size_t eq = text.find('=');
  std::string key = text.substr(0, eq), val =
      eq == std::string::npos ? "" : text.substr(eq + 1);
  const bool percent = !val.empty() && val.back() == '%';
  if (percent)
    val.pop_back();
  char *end = nullptr;
  double v = val.empty() ? NAN : std::strtod(val.c_str(), &end);
  const bool number = !val.empty() && end && *end == '\0' && std::isfinite(v);
  if (key == "kl" && number && !percent && v > 0) {
    s.kind = Kind::KL;
    s.value = v;
  } else if (key == "ppl" && number && percent && v > 0) {
    s.kind = Kind::Perplexity;
    s.value = v / 100.0;
  } else if (key == "bpw" && number && !percent && v > 0) {
    s.kind = Kind::BitsPerWeight;
    s.value = v;
  } else {
    error = "budget '" + text +
            "': expected kl=X (mean KL in nats per token, > 0), ppl=+P% "
            "(perplexity increase, > 0) or bpw=B (stored bits per weight)";
    return std::nullopt;
  }
  return s;
}

std::optional<std::vector<Candidate>>
parseCandidates(const std::string &list, Method method, std::string &error) {
  std::vector<Candidate> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    Candidate c;
    c.label = item;
    c.spec.method = method;
    if (item == "f32") {
      c.keepFloat = true;
      out.push_back(c);
      continue;
    }
    std::vector<std::string> parts;
    std::stringstream is(item);
    std::string p;
    while (std::getline(is, p, '/'))
      parts.push_back(p);
    auto bad = [&](const std::string &why) {
      error = "candidate '" + item + "': " + why +
              " (expected FORMAT/gGROUP[/SCALE], e.g. int4/g32, "
              "e2m1fn/g32/e8m0, or f32)";
      return std::nullopt;
    };
    if (parts.size() < 2 || parts.size() > 3)
      return bad("wrong number of parts");
    std::optional<formats::Format> f = formats::Format::byName(parts[0]);
    if (!f)
      return bad("unknown format " + parts[0]);
    if (parts[1].size() < 2 || parts[1][0] != 'g')
      return bad("the group is written g32, g0 (per channel)");
    char *end = nullptr;
    long g = std::strtol(parts[1].c_str() + 1, &end, 10);
    if (*end != '\0' || g < 0)
      return bad("bad group " + parts[1]);
    c.spec.scheme.format = *f;
    c.spec.scheme.groupSize = g;
    c.spec.scheme.symmetric = true;
    if (parts.size() == 3) {
      auto st = quant::parseScaleStorage(parts[2]);
      if (!st)
        return bad("unknown scale storage " + parts[2]);
      c.spec.scheme.scaleStorage = *st;
    }
    out.push_back(c);
  }
  if (out.empty()) {
    error = "the candidate list is empty";
    return std::nullopt;
  }
  return out;
}

namespace {

double costOf(const BudgetSpec &spec, const OutputChange &c) {
  // Perplexity budgets add up log-perplexity changes; a layer whose
  // quantization happens to lower the calibration NLL is counted as free,
  // not as credit for another layer.
  return spec.kind == BudgetSpec::Kind::Perplexity ? std::max(0.0, c.deltaNll)
                                                   : c.kl;
}

double measuredCost(const BudgetSpec &spec, const OutputChange &c) {
  return spec.kind == BudgetSpec::Kind::Perplexity ? c.deltaNll : c.kl;
}

/// The budget in cost units (nats).
double costBudget(const BudgetSpec &spec) {
  return spec.kind == BudgetSpec::Kind::Perplexity ? std::log1p(spec.value)
                                                   : spec.value;
}

struct Mix {
  std::vector<std::vector<float>> weights; ///< per linear; empty: float
  std::map<std::string, const float *> overrides;
  double bytes = 0, params = 0;
};

bool buildMix(const model::Model &model, const std::vector<std::string> &names,
              const std::vector<LayerSensitivity> &sens,
              const std::vector<Candidate> &cands,
              const std::vector<int> &choice, const quant::StatsFile *stats,
              Mix &mix, std::string &error) {
  mix = Mix();
  mix.weights.resize(names.size());
  for (size_t l = 0; l < names.size(); ++l) {
    const Candidate &c = cands[size_t(choice[l])];
    const LayerSensitivity &s = sens[l];
    mix.bytes += s.bytes[size_t(choice[l])];
    mix.params += double(s.rows) * double(s.cols);
    if (c.keepFloat)
      continue;
    std::vector<float> w;
    const model::TensorView *t = linearWeight(model, names[l]);
    if (!t || !t->toFloat(w)) {
      error = names[l] + ": no readable weight";
      return false;
    }
    auto eff = effectiveWeights(c.spec, {w.data(), s.rows, s.cols},
                                stats ? stats->find(names[l]) : nullptr,
                                error);
    if (!eff) {
      error = names[l] + " (" + c.label + "): " + error;
      return false;
    }
    mix.weights[l] = std::move(*eff);
    mix.overrides[names[l]] = mix.weights[l].data();
  }
  return true;
}

std::optional<MixResult> measure(const FloatBaseline &base, const Mix &mix,
                                 std::string &error) {
  auto c = base.evaluate(mix.overrides, error);
  if (!c)
    return std::nullopt;
  MixResult r;
  r.bytes = mix.bytes;
  r.bitsPerWeight = 8.0 * mix.bytes / mix.params;
  r.change = *c;
  return r;
}

} // namespace

std::optional<BudgetResult> allocateBudget(const model::Model &model,
                                           const std::vector<int32_t> &tokens,
                                           const BudgetOptions &o,
                                           std::string &error) {
  const Windows &cw = o.calibration, &hw = o.heldOut;
  if (cw.firstToken < hw.endToken() && hw.firstToken < cw.endToken()) {
    error = "the held-out slice [" + std::to_string(hw.firstToken) + ", " +
            std::to_string(hw.endToken()) + ") overlaps the calibration "
            "slice [" + std::to_string(cw.firstToken) + ", " +
            std::to_string(cw.endToken()) + ")";
    return std::nullopt;
  }
  auto report = [&](const std::string &what, int64_t done, int64_t total) {
    if (o.progress)
      o.progress(what, done, total);
  };
  auto calib = FloatBaseline::compute(model, tokens, cw, error);
  if (!calib) {
    error = "calibration slice: " + error;
    return std::nullopt;
  }
  auto held = FloatBaseline::compute(model, tokens, hw, error);
  if (!held) {
    error = "held-out slice: " + error;
    return std::nullopt;
  }
  BudgetResult r;
  r.linears = model::linearNames(model.config());
  if (!measureSensitivity(
          model, *calib, r.linears, o.candidates, o.stats, o.threads,
          r.sensitivity, error, [&](int64_t d, int64_t t) {
            report("measuring per-layer sensitivity", d, t);
          }))
    return std::nullopt;

  // Sizes as the bundle will store them.
  if (o.codeBits)
    for (LayerSensitivity &s : r.sensitivity)
      for (size_t c = 0; c < o.candidates.size(); ++c)
        if (!o.candidates[c].keepFloat)
          s.bytes[c] = storedBytes(o.candidates[c].spec.scheme, s.rows,
                                   s.cols,
                                   o.codeBits(o.candidates[c].spec.scheme));

  // The knapsack over candidates that apply to each layer.
  std::vector<std::vector<quant::AllocationChoice>> layers;
  std::vector<std::vector<int>> index; // knapsack choice -> candidate
  for (const LayerSensitivity &s : r.sensitivity) {
    layers.emplace_back();
    index.emplace_back();
    for (size_t c = 0; c < o.candidates.size(); ++c)
      if (s.applies[c]) {
        layers.back().push_back({s.bytes[c], costOf(o.spec, s.change[c])});
        index.back().push_back(int(c));
      }
    if (layers.back().empty()) {
      error = s.name + ": no candidate's group divides its " +
              std::to_string(s.cols) + " columns (add f32 or a g0 candidate)";
      return std::nullopt;
    }
  }
  double params = 0;
  for (const LayerSensitivity &s : r.sensitivity)
    params += double(s.rows) * double(s.cols);

  const double budget = costBudget(o.spec);
  r.effectiveBudget = budget;
  Mix mix;
  for (r.rounds = 1; r.rounds <= std::max(1, o.maxRounds); ++r.rounds) {
    std::optional<quant::Allocation> a =
        o.spec.kind == BudgetSpec::Kind::BitsPerWeight
            ? quant::allocateForBytes(layers, o.spec.value * params / 8.0,
                                      error)
            : quant::allocateForCost(layers, r.effectiveBudget, error);
    if (!a)
      return std::nullopt;
    r.choice.assign(layers.size(), 0);
    for (size_t l = 0; l < layers.size(); ++l)
      r.choice[l] = index[l][size_t(a->choice[l])];
    r.predictedCost = a->cost;
    if (!buildMix(model, r.linears, r.sensitivity, o.candidates, r.choice,
                  o.stats, mix, error))
      return std::nullopt;
    report("checking the mix on the calibration slice", r.rounds,
           o.maxRounds);
    auto m = measure(*calib, mix, error);
    if (!m)
      return std::nullopt;
    r.calibration = *m;
    const double got = measuredCost(o.spec, m->change);
    // Size budgets are met by construction; a cost budget the joint model
    // breaks (layer errors do not add exactly) is tightened in proportion.
    if (o.spec.kind == BudgetSpec::Kind::BitsPerWeight || got <= budget ||
        r.rounds == o.maxRounds)
      break;
    r.effectiveBudget *= 0.95 * budget / got;
  }
  auto h = measure(*held, mix, error);
  if (!h) {
    error = "held-out slice: " + error;
    return std::nullopt;
  }
  r.heldOut = *h;
  r.met = o.spec.kind == BudgetSpec::Kind::BitsPerWeight
              ? r.heldOut.bitsPerWeight <= o.spec.value + 1e-9
              : measuredCost(o.spec, h->change) <= budget;

  // Every candidate that applies to every layer, uniformly, on the same
  // held-out slice: what the mix is to be compared with.
  for (size_t c = 0; c < o.candidates.size(); ++c) {
    if (o.candidates[c].keepFloat)
      continue;
    bool all = true;
    for (const LayerSensitivity &s : r.sensitivity)
      all &= bool(s.applies[c]);
    if (!all)
      continue;
    std::vector<int> uniform(r.linears.size(), int(c));
    Mix u;
    if (!buildMix(model, r.linears, r.sensitivity, o.candidates, uniform,
                  o.stats, u, error))
      return std::nullopt;
    report("measuring uniform candidates on the held-out slice", c + 1,
           o.candidates.size());
    auto m = measure(*held, u, error);
    if (!m)
      return std::nullopt;
    r.uniform.push_back({o.candidates[c].label, *m});
  }
  return r;
}

} // namespace nibble::calibration
