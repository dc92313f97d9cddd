//===- TargetSpec.cpp - What machine code is generated for ----------------===//

#include "nibble/Target/TargetSpec.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <algorithm>
#include <memory>
#include <mutex>

namespace nibble::target {

namespace {

void initTargets() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargetMCs();
  });
}

std::unique_ptr<llvm::MCSubtargetInfo>
subtarget(const std::string &triple, const std::string &cpu,
          const std::string &features, std::string &error) {
  initTargets();
  const llvm::Target *t = llvm::TargetRegistry::lookupTarget(llvm::Triple(triple), error);
  if (!t)
    return nullptr;
  return std::unique_ptr<llvm::MCSubtargetInfo>(
      t->createMCSubtargetInfo(llvm::Triple(triple), cpu, features));
}

} // namespace

std::optional<TargetSpec> TargetSpec::parse(std::string_view textView,
                                            std::string &error) {
  llvm::StringRef text(textView.data(), textView.size());
  TargetSpec spec;
  // "[arch:]cpu" runs to the first '+' or ',' (CPU names contain '-':
  // x86-64-v3, neoverse-v1); then "+feat" adds and ",+feat" / ",-feat"
  // adds or removes.
  size_t cut = text.find_first_of("+,");
  llvm::StringRef head = text.substr(0, cut);
  llvm::StringRef feats = cut == llvm::StringRef::npos ? "" : text.substr(cut);
  if (head.empty()) {
    error = "target '" + text.str() + "' names no CPU (e.g. native, znver4, "
            "x86-64-v3, aarch64)";
    return std::nullopt;
  }

  std::vector<std::string> extra;
  if (head == "native") {
    spec.triple_ = llvm::sys::getDefaultTargetTriple();
    spec.cpu_ = llvm::sys::getHostCPUName().str();
    for (const auto &kv : llvm::sys::getHostCPUFeatures())
      extra.push_back((kv.second ? "+" : "-") + kv.getKey().str());
  } else if (head == "aarch64" || head.starts_with("aarch64:")) {
    spec.triple_ = "aarch64-unknown-linux-gnu";
    spec.cpu_ = head == "aarch64" ? "generic" : head.drop_front(8).str();
  } else {
    spec.triple_ = "x86_64-unknown-linux-gnu";
    spec.cpu_ = head.str();
  }

  auto probe = subtarget(spec.triple_, "", "", error);
  if (!probe) {
    error = "target '" + text.str() + "': " + error;
    return std::nullopt;
  }
  if (!probe->isCPUStringValid(spec.cpu_)) {
    error = "target '" + text.str() + "': unknown CPU '" + spec.cpu_ +
            "' for " + spec.triple_;
    return std::nullopt;
  }
  auto known = probe->getAllProcessorFeatures();
  auto isKnown = [&](llvm::StringRef f) {
    return std::any_of(known.begin(), known.end(),
                       [&](const llvm::SubtargetFeatureKV &kv) {
                         return f == kv.Key;
                       });
  };
  // User features: "+a+b,-c,+d".
  while (!feats.empty()) {
    if (feats.consume_front(",") &&
        !(feats.starts_with("+") || feats.starts_with("-"))) {
      error = "target '" + text.str() + "': after ',' a feature needs a sign "
              "(,+name or ,-name)";
      return std::nullopt;
    }
    char sign = feats.front();
    feats = feats.drop_front();
    size_t end = feats.find_first_of("+,");
    llvm::StringRef name = feats.substr(0, end);
    feats = end == llvm::StringRef::npos ? "" : feats.substr(end);
    if (name.empty() || !isKnown(name)) {
      error = "target '" + text.str() + "': unknown feature '" + name.str() +
              "' for " + spec.triple_ + " (LLVM names, e.g. avx512vnni, "
              "avxvnni, avx512bf16, avx2, neon, dotprod)";
      return std::nullopt;
    }
    extra.push_back(std::string(1, sign) + name.str());
  }
  for (size_t i = 0; i < extra.size(); ++i)
    spec.features_ += (i ? "," : "") + extra[i];

  auto sti = subtarget(spec.triple_, spec.cpu_, spec.features_, error);
  if (!sti) {
    error = "target '" + text.str() + "': " + error;
    return std::nullopt;
  }
  for (const llvm::SubtargetFeatureKV &kv : sti->getAllProcessorFeatures())
    if (sti->getFeatureBits()[kv.Value])
      spec.enabled_.push_back(kv.Key);
  std::sort(spec.enabled_.begin(), spec.enabled_.end());
  return spec;
}

bool TargetSpec::isX86() const { return llvm::Triple(triple_).isX86(); }
bool TargetSpec::isAArch64() const {
  return llvm::Triple(triple_).isAArch64();
}

bool TargetSpec::has(std::string_view feature) const {
  return std::binary_search(enabled_.begin(), enabled_.end(),
                            std::string(feature));
}

std::vector<std::string> TargetSpec::enabledFeatures() const {
  return enabled_;
}

std::string TargetSpec::describe() const {
  std::string s = triple_ + " " + cpu_;
  if (!features_.empty())
    s += " " + features_;
  return s;
}

} // namespace nibble::target
