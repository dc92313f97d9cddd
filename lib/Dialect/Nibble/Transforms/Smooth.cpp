//===- Smooth.cpp - SmoothQuant / AWQ scales folded into producers --------===//
//
// The scale search is the plain C++ library's (nibble/Quant/Smooth.h); this
// pass groups the linears that share an input, finds where that input is
// produced, and rewrites weights so the float function is unchanged up to
// rounding: W[:, j] * s_j in the linears, x_j / s_j at the producer.
//
//===----------------------------------------------------------------------===//

#include "nibble/Dialect/Nibble/Transforms/Passes.h"
#include "WeightIR.h"

#include "nibble/Quant/Smooth.h"
#include "nibble/Support/Progress.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"

#include <cmath>
#include <map>

namespace mlir::nibble {
#define GEN_PASS_DEF_NIBBLESMOOTH
#include "nibble/Dialect/Nibble/Transforms/Passes.h.inc"
} // namespace mlir::nibble

using namespace mlir;
using namespace mlir::nibble;
using namespace mlir::nibble::detail;
namespace nq = ::nibble::quant;

/// A linear's name qualified by its function: the same weights appear
/// once per function (prefill and decode) and each copy is its own linear.
static std::string scopedName(Operation *op, StringRef name) {
  auto f = op->getParentOfType<FunctionOpInterface>();
  return (f ? f.getName().str() : std::string()) + "::" + name.str();
}

namespace {

struct Linear {
  linalg::MatmulOp op;
  std::string name;
  int64_t n = 0, k = 0;
  std::vector<float> w; ///< [n, k], updated in place
  bool dirty = false;
};

/// Where a shared input can absorb 1/s.
struct FoldTarget {
  enum Kind { None, Norm, Rows } kind = None;
  linalg::GenericOp norm;
  Linear *producer = nullptr;
  int64_t repeat = 1, block = 1;
  /// Producer row of input channel c (Rows).
  int64_t row(int64_t c) const {
    return (c / (repeat * block)) * block + c % block;
  }
};

struct SmoothPass
    : public mlir::nibble::impl::NibbleSmoothBase<SmoothPass> {
  using NibbleSmoothBase::NibbleSmoothBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (method != "smoothquant" && method != "awq") {
      module.emitError("unknown smoothing method '")
          << method << "' (expected smoothquant or awq)";
      return signalPassFailure();
    }
    if (!(alpha >= 0.0 && alpha <= 1.0)) {
      module.emitError("alpha must be in [0, 1], got ") << alpha;
      return signalPassFailure();
    }
    if (statsPath.empty()) {
      module.emitError("nibble-smooth needs calibration statistics (stats=FILE)");
      return signalPassFailure();
    }
    std::optional<nq::StatsFile> stats = loadStats(module, statsPath);
    LayerFilter filter;
    Recipe localRecipe;
    recipe = &localRecipe;
    if (!stats || failed(filter.init(module, match)) ||
        failed(localRecipe.load(module, recipePath,
                           {false, "awq", format, group, symmetric,
                            scale})))
      return signalPassFailure();

    // Every float linear with readable weights, by name, in program order.
    std::vector<std::unique_ptr<Linear>> linears;
    llvm::StringMap<Linear *> byName;
    llvm::MapVector<Value, SmallVector<Linear *>> byInput;
    WalkResult walk = module.walk([&](linalg::MatmulOp op) {
      auto nameAttr = op->getAttrOfType<StringAttr>("nibble.linear");
      if (!nameAttr)
        return WalkResult::advance();
      if (!isa<linalg::MatmulTransposeBOp>(op.getOperation())) {
        op.emitError("nibble.linear '")
            << nameAttr.getValue()
            << "' is not a transposed-B matmul over [out, in]";
        return WalkResult::interrupt();
      }
      auto l = std::make_unique<Linear>();
      l->op = op;
      l->name = nameAttr.getValue().str();
      auto wType = cast<RankedTensorType>(op.getDpsInputs()[1].getType());
      l->n = wType.getDimSize(0);
      l->k = wType.getDimSize(1);
      FailureOr<std::vector<float>> w = readWeight(op, op.getDpsInputs()[1]);
      if (failed(w))
        return WalkResult::interrupt();
      l->w = std::move(*w);
      byName[scopedName(op, l->name)] = l.get();
      byInput[op.getDpsInputs()[0]].push_back(l.get());
      linears.push_back(std::move(l));
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();

    ::nibble::support::Progress bar("smoothing", int64_t(byInput.size()),
                                    !progress);
    int64_t done = 0;
    for (auto &[x, members] : byInput) {
      if (filter(members.front()->name) &&
          failed(smoothGroup(x, members, *stats, byName)))
        return signalPassFailure();
      bar.update(++done, members.front()->name);
    }
    bar.finish();

    // Write back every weight that changed as a new f32 resource.
    for (auto &l : linears) {
      if (!l->dirty)
        continue;
      OpBuilder b(l->op);
      Value c = floatConstant(b, l->op.getLoc(), l->name + ".weight.smoothed",
                              {l->n, l->k}, l->w, b.getF32Type());
      l->op->setOperand(1, c);
    }
  }

  FoldTarget findFold(Value x, ArrayRef<Linear *> members,
                      const llvm::StringMap<Linear *> &byName) {
    FoldTarget t;
    if (!fold)
      return t;
    // Every use of x must be one of the set's inputs, or folding would
    // change other readers.
    for (OpOperand &use : x.getUses())
      if (use.getOperandNumber() != 0 ||
          !llvm::any_of(members, [&](Linear *l) {
            return l->op.getOperation() == use.getOwner();
          }))
        return t;
    if (auto norm = x.getDefiningOp<linalg::GenericOp>();
        norm && norm->hasAttr("nibble.norm") && norm.getNumDpsInputs() == 3 &&
        norm->getNumResults() == 1) {
      t.kind = FoldTarget::Norm;
      t.norm = norm;
      return t;
    }
    auto producerOf = [](Linear *l) {
      return l->op->getAttrOfType<DictionaryAttr>("nibble.input_producer");
    };
    DictionaryAttr p = producerOf(members.front());
    if (!p || members.size() != 1)
      return t;
    auto name = p.getAs<StringAttr>("linear");
    auto repeat = p.getAs<IntegerAttr>("repeat");
    auto block = p.getAs<IntegerAttr>("block");
    if (!name || !repeat || !block || repeat.getInt() < 1 ||
        block.getInt() < 1)
      return t;
    // The producer in the same function: a module may hold several
    // functions over the same weights (a prefill chunk and a decode step).
    auto it = byName.find(scopedName(members.front()->op, name.getValue()));
    if (it == byName.end())
      return t;
    Linear *prod = it->second;
    t.repeat = repeat.getInt();
    t.block = block.getInt();
    // Every input channel must map to a producer row.
    if (members.front()->k % (t.repeat * t.block) != 0 ||
        prod->n != members.front()->k / t.repeat)
      return t;
    t.kind = FoldTarget::Rows;
    t.producer = prod;
    return t;
  }

  LogicalResult smoothGroup(Value x, ArrayRef<Linear *> members,
                            const nq::StatsFile &stats,
                            const llvm::StringMap<Linear *> &byName) {
    Linear *first = members.front();
    const int64_t k = first->k;
    std::unique_ptr<nq::LinearStats> adjusted;
    const nq::LinearStats *ls =
        statsFor(first->op, first->name, k, stats, adjusted);
    if (!ls)
      return failure();
    if (ls->tokens() == 0)
      return first->op.emitError("the statistics of '")
             << first->name << "' hold no tokens";
    FoldTarget target = findFold(x, members, byName);

    std::vector<nq::MatrixView> views;
    for (Linear *l : members)
      views.push_back({l->w.data(), l->n, l->k});
    std::vector<int64_t> classes;
    if (target.kind == FoldTarget::Rows && target.repeat > 1)
      for (int64_t c = 0; c < k; ++c)
        classes.push_back(target.row(c));

    std::vector<float> s;
    std::string note;
    if (method == "smoothquant") {
      s = nq::smoothQuantScales(views, ls->absMax(), float(alpha));
      if (!classes.empty())
        tieGeometric(s, classes);
      note = "smoothquant alpha=" + std::to_string(alpha);
    } else {
      if (!ls->hasHessian())
        return first->op.emitError("the statistics of '")
               << first->name
               << "' have no X^T X (calibrate without --no-hessian)";
      // The scheme the set will be quantized with (its first linear's).
      LayerConfig cfg = recipe->configFor(first->name);
      auto fmt = parseFormat(first->op.getContext(), cfg.format);
      if (!fmt)
        return first->op.emitError("unknown weight format '")
               << cfg.format << "'";
      nq::WeightScheme scheme;
      scheme.format = fmt.getFormat();
      scheme.groupSize = cfg.group;
      scheme.symmetric = cfg.symmetric;
      scheme.scaleStorage = *nq::parseScaleStorage(cfg.scale);
      nq::AWQOptions o;
      o.gridSize = int(grid);
      o.channelClass = classes;
      std::string error;
      auto r = nq::searchAWQGram(views, ls->hessian()->gram(), ls->meanAbs(),
                                 scheme, o, error);
      if (!r)
        return first->op.emitError(first->name) << ": " << error;
      s = std::move(r->scales);
      note = "awq alpha=" + std::to_string(r->alpha);
    }
    for (float v : s)
      if (!std::isfinite(v) || v <= 0)
        return first->op.emitError(first->name)
               << ": smoothing produced a non-positive or non-finite scale";

    for (Linear *l : members) {
      for (int64_t i = 0; i < l->n; ++i)
        for (int64_t j = 0; j < k; ++j)
          l->w[size_t(i * k + j)] *= s[size_t(j)];
      l->dirty = true;
    }

    OpBuilder b(first->op);
    Location loc = first->op.getLoc();
    switch (target.kind) {
    case FoldTarget::Norm: {
      Value wv = target.norm->getOperand(2);
      FailureOr<std::vector<float>> nw = readWeight(target.norm, wv);
      if (failed(nw))
        return failure();
      if (int64_t(nw->size()) != k)
        return target.norm.emitError("norm weight has ")
               << nw->size() << " entries, its readers " << k << " channels";
      for (int64_t j = 0; j < k; ++j)
        (*nw)[size_t(j)] /= s[size_t(j)];
      b.setInsertionPoint(target.norm);
      auto normName =
          target.norm->getAttrOfType<StringAttr>("nibble.norm").getValue();
      target.norm->setOperand(
          2, floatConstant(b, target.norm.getLoc(),
                           (normName + ".weight.smoothed").str(), {k}, *nw,
                           cast<RankedTensorType>(wv.getType())
                               .getElementType()));
      break;
    }
    case FoldTarget::Rows: {
      Linear *p = target.producer;
      for (int64_t c = 0; c < k; ++c) {
        int64_t r = target.row(c);
        // Channels of one class share s; dividing once per row.
        if (c % (target.repeat * target.block) >= target.block)
          continue;
        for (int64_t j = 0; j < p->k; ++j)
          p->w[size_t(r * p->k + j)] /= s[size_t(c)];
      }
      p->dirty = true;
      break;
    }
    case FoldTarget::None: {
      std::vector<float> inv(s.size());
      for (size_t j = 0; j < s.size(); ++j)
        inv[j] = 1.0f / s[j];
      Value scaled = scaleColumns(
          b, loc, x,
          floatConstant(b, loc, first->name + ".smooth_inverse_scales", {k},
                        inv, b.getF32Type()));
      for (Linear *l : members)
        l->op->setOperand(0, scaled);
      break;
    }
    }

    std::vector<float> m =
        inputMultiplier(first->op).value_or(std::vector<float>(k, 1.0f));
    for (int64_t j = 0; j < k; ++j)
      m[size_t(j)] /= s[size_t(j)];
    for (Linear *l : members) {
      setInputMultiplier(l->op, l->name, m);
      l->op->setAttr("nibble.smoothing",
                     StringAttr::get(l->op.getContext(), note));
    }
    return success();
  }

  const Recipe *recipe = nullptr; ///< valid during runOnOperation

  /// Makes s equal over each class (geometric mean).
  static void tieGeometric(std::vector<float> &s,
                           const std::vector<int64_t> &classes) {
    std::map<int64_t, std::pair<double, int>> acc;
    for (size_t j = 0; j < s.size(); ++j) {
      auto &a = acc[classes[j]];
      a.first += std::log(double(s[j]));
      a.second += 1;
    }
    for (size_t j = 0; j < s.size(); ++j) {
      auto &a = acc[classes[j]];
      s[j] = float(std::exp(a.first / a.second));
    }
  }
};

} // namespace
