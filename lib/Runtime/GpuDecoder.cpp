//===- GpuDecoder.cpp - Run a CUDA bundle's decode step -------------------===//

#include "GpuDecoder.h"
#include "LoadedBundle.h"

#include <nlohmann/json.hpp>

namespace nibble::runtime {

using json = nlohmann::json;

namespace {

/// "sm_90" -> 90 ("sm_90a" too); 0 when malformed.
int smOf(const std::string &chip) {
  if (chip.rfind("sm_", 0) != 0)
    return 0;
  int v = 0;
  for (size_t i = 3; i < chip.size() && std::isdigit(uint8_t(chip[i])); ++i)
    v = v * 10 + (chip[i] - '0');
  return v;
}

} // namespace

std::shared_ptr<GpuModel> GpuModel::load(const std::string &path,
                                         const Manifest &m,
                                         std::string_view ptx,
                                         const int8_t *weights, size_t bytes,
                                         std::string &error) {
  std::shared_ptr<GpuModel> g(new GpuModel());
  g->path_ = path;
  json root = json::parse(m.text, nullptr, /*allow_exceptions=*/false);
  const std::string where = path + ": manifest: gpu: ";
  std::string chip;
  try {
    const json &gpu = root.at("gpu");
    chip = gpu.at("chip").get<std::string>();
    const json &model = root.at("model");
    g->vocab_ = model.at("vocab").get<int64_t>();
    g->dim_ = model.at("dim").get<int64_t>();
    g->hidden_ = model.at("hidden_dim").get<int64_t>();
    g->qDim_ = model.at("heads").get<int64_t>() * m.headDim;
    g->kvDim_ = m.kvHeads * m.headDim;
    g->cacheElements_ = m.cacheElements();
  } catch (const json::exception &e) {
    error = where + e.what();
    return nullptr;
  }
  const int sm = smOf(chip);
  if (sm == 0) {
    error = where + "chip \"" + chip + "\" is not sm_XY";
    return nullptr;
  }

  std::string why;
  g->driver_ = cuda::Driver::open(0, why);
  if (!g->driver_) {
    error = path + ": this bundle runs on an NVIDIA GPU (" + chip + "): " +
            why;
    return nullptr;
  }
  cuda::Driver &d = *g->driver_;
  const bool archSpecific = chip.back() == 'a';
  if (d.computeCapability() < sm ||
      (archSpecific && d.computeCapability() != sm)) {
    error = path + ": compiled for " + chip + ", but " + d.deviceName() +
            " is sm_" + std::to_string(d.computeCapability());
    return nullptr;
  }
  uintptr_t module = d.loadPtx(std::string(ptx), why);
  if (!module) {
    error = path + ": section \"code\": " + why;
    return nullptr;
  }
  g->weights_ = d.alloc(bytes ? bytes : 1, why);
  if (!g->weights_ || !d.upload(g->weights_, weights, bytes, why)) {
    error = path + ": uploading " + std::to_string(bytes) +
            " bytes of weights: " + why;
    return nullptr;
  }

  // Every offset must lie in the weights; every kernel in the PTX.
  auto tensor = [&](const json &t, int64_t minBytes) -> cuda::DevicePtr {
    const int64_t off = t.at("offset").get<int64_t>(),
                  n = t.at("bytes").get<int64_t>();
    if (off < 0 || n < minBytes || uint64_t(off) + uint64_t(n) > bytes)
      throw std::out_of_range("tensor at offset " + std::to_string(off) +
                              " of " + std::to_string(n) +
                              " bytes: expected at least " +
                              std::to_string(minBytes) + " bytes within " +
                              std::to_string(bytes));
    return g->weights_ + cuda::DevicePtr(off);
  };
  auto kernel = [&](const std::string &name, const json &launches) {
    Kernel k;
    k.fn = d.function(module, name, why);
    if (!k.fn)
      throw std::out_of_range("kernel " + name + ": " + why);
    const json &l = launches.at(name);
    k.grid = l.at("grid").get<unsigned>();
    k.block = l.at("block").get<unsigned>();
    return k;
  };
  try {
    const json &gpu = root.at("gpu");
    const json &launches = gpu.at("launches");
    const json &ks = gpu.at("kernels");
    g->embed_ = kernel(ks.at("embed").get<std::string>(), launches);
    g->rmsnorm_ = kernel(ks.at("rmsnorm").get<std::string>(), launches);
    g->ropeKV_ = kernel(ks.at("rope_kv").get<std::string>(), launches);
    g->attention_ = kernel(ks.at("attention").get<std::string>(), launches);
    g->swiglu_ = kernel(ks.at("swiglu").get<std::string>(), launches);
    g->add_ = kernel(ks.at("add").get<std::string>(), launches);
    const json &t = gpu.at("tensors");
    const int64_t half = m.headDim / 2;
    g->embedTable_ = tensor(t.at("embed"), g->vocab_ * g->dim_ * 4);
    g->ropeCos_ = tensor(t.at("rope_cos"), m.context * half * 4);
    g->ropeSin_ = tensor(t.at("rope_sin"), m.context * half * 4);
    g->finalNorm_ = tensor(t.at("final_norm"), g->dim_ * 4);
    auto linear = [&](const json &j, int64_t n, int64_t k) {
      Linear l;
      l.kernel = kernel(j.at("kernel").get<std::string>(), launches);
      l.n = j.at("n").get<int64_t>();
      l.kStored = j.at("k_stored").get<int64_t>();
      if (l.n != n || j.at("k").get<int64_t>() != k || l.kStored < k)
        throw std::out_of_range(j.at("name").get<std::string>() +
                                ": shape does not match the model");
      l.codes = tensor(j.at("codes"), 1);
      l.scales = tensor(j.at("scales"), n * 4);
      g->maxK_ = std::max(g->maxK_, l.kStored);
      return l;
    };
    const json &layers = gpu.at("layers");
    if (int64_t(layers.size()) != m.layers)
      throw std::out_of_range("expected " + std::to_string(m.layers) +
                              " layers");
    const int64_t D = g->dim_, F = g->hidden_, Q = g->qDim_, KV = g->kvDim_;
    static const char *const kKeys[7] = {"q",    "k",  "v",   "o",
                                         "gate", "up", "down"};
    const int64_t shapes[7][2] = {{Q, D}, {KV, D}, {KV, D}, {D, Q},
                                  {F, D}, {F, D},  {D, F}};
    for (const json &lj : layers) {
      Layer l;
      l.attnNorm = tensor(lj.at("attn_norm"), D * 4);
      l.ffnNorm = tensor(lj.at("ffn_norm"), D * 4);
      for (int i = 0; i < 7; ++i)
        l.linears[size_t(i)] =
            linear(lj.at(kKeys[i]), shapes[i][0], shapes[i][1]);
      g->layers_.push_back(l);
    }
    g->lmHead_ = linear(gpu.at("lm_head"), g->vocab_, D);
  } catch (const std::exception &e) {
    error = where + e.what();
    return nullptr;
  }
  return g;
}

GpuModel::~GpuModel() {
  if (driver_ && weights_)
    driver_->free(weights_);
}

GpuModel::State::~State() {
  for (cuda::DevicePtr p : owned_)
    model_->driver_->free(p);
}

std::unique_ptr<GpuModel::State>
GpuModel::newState(std::shared_ptr<GpuModel> model, std::string &error) {
  std::unique_ptr<State> s(new State());
  s->model_ = model;
  cuda::Driver &d = *model->driver_;
  // Zeroed, and at least max K wide where a GEMV reads it: a row padded to
  // whole 128-bit loads (k_stored) multiplies zeros past K.
  auto buffer = [&](int64_t floats, cuda::DevicePtr &p) {
    const int64_t n = std::max(floats, model->maxK_);
    std::string why;
    std::vector<float> zeros(size_t(n), 0.0f);
    p = d.alloc(size_t(n) * 4, why);
    if (!p || !d.upload(p, zeros.data(), size_t(n) * 4, why)) {
      error = model->path_ + ": device buffer of " +
              std::to_string(n * 4) + " bytes: " + why;
      return false;
    }
    s->owned_.push_back(p);
    return true;
  };
  const GpuModel &g = *model;
  if (!buffer(g.dim_, s->x) || !buffer(g.dim_, s->xn) ||
      !buffer(g.qDim_, s->q) || !buffer(g.kvDim_, s->k) ||
      !buffer(g.kvDim_, s->v) || !buffer(g.qDim_, s->att) ||
      !buffer(g.dim_, s->tmp) || !buffer(g.hidden_, s->gate) ||
      !buffer(g.hidden_, s->up) || !buffer(g.hidden_, s->h) ||
      !buffer(g.vocab_, s->logits) || !buffer(g.cacheElements_, s->kCache) ||
      !buffer(g.cacheElements_, s->vCache))
    return nullptr;
  return s;
}

bool GpuModel::launch(const Kernel &k, std::vector<void *> args,
                      std::string &error) {
  std::string why;
  if (driver_->launch(k.fn, k.grid, k.block, std::move(args), why))
    return true;
  error = path_ + ": " + why;
  return false;
}

bool GpuModel::gemv(const Linear &l, cuda::DevicePtr x, cuda::DevicePtr y,
                    std::string &error) {
  cuda::DevicePtr codes = l.codes, scales = l.scales;
  return launch(l.kernel, {&x, &codes, &scales, &y}, error);
}

bool GpuModel::step(State &s, int32_t token, int64_t pos, float *logits,
                    std::string &error) {
  int32_t tok = token, p = int32_t(pos);
  cuda::DevicePtr table = embedTable_, cosT = ropeCos_, sinT = ropeSin_;
  if (!launch(embed_, {&table, &s.x, &tok}, error))
    return false;
  for (size_t i = 0; i < layers_.size(); ++i) {
    Layer &l = layers_[i];
    int32_t layer = int32_t(i);
    const auto &w = l.linears;
    if (!launch(rmsnorm_, {&s.x, &l.attnNorm, &s.xn}, error) ||
        !gemv(w[0], s.xn, s.q, error) || !gemv(w[1], s.xn, s.k, error) ||
        !gemv(w[2], s.xn, s.v, error) ||
        !launch(ropeKV_,
                {&s.q, &s.k, &s.v, &cosT, &sinT, &s.kCache, &s.vCache, &p,
                 &layer},
                error) ||
        !launch(attention_, {&s.q, &s.kCache, &s.vCache, &s.att, &p, &layer},
                error) ||
        !gemv(w[3], s.att, s.tmp, error) ||
        !launch(add_, {&s.x, &s.tmp}, error) ||
        !launch(rmsnorm_, {&s.x, &l.ffnNorm, &s.xn}, error) ||
        !gemv(w[4], s.xn, s.gate, error) || !gemv(w[5], s.xn, s.up, error) ||
        !launch(swiglu_, {&s.gate, &s.up, &s.h}, error) ||
        !gemv(w[6], s.h, s.tmp, error) ||
        !launch(add_, {&s.x, &s.tmp}, error))
      return false;
  }
  cuda::DevicePtr finalNorm = finalNorm_;
  std::string why;
  if (!launch(rmsnorm_, {&s.x, &finalNorm, &s.xn}, error) ||
      !gemv(lmHead_, s.xn, s.logits, error))
    return false;
  if (!driver_->download(logits, s.logits, size_t(vocab_) * 4, why)) {
    error = path_ + ": " + why;
    return false;
  }
  return true;
}

} // namespace nibble::runtime
