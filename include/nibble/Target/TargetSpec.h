//===- TargetSpec.h - What machine code is generated for ------------------===//
//
// A target is named the way users name machines:
//
//   native                      this machine: its CPU and detected features
//   znver4, sapphirerapids, x86-64-v3, x86-64-v4, ...   an x86-64 CPU
//   x86-64-v4+avx512vnni        a CPU plus features ("+f", or ",+f")
//   znver4,-avx512vnni          ... minus features (",-f": CPU names
//                               themselves contain '-')
//   aarch64, aarch64:neoverse-v1+dotprod                AArch64 (cross)
//
// and resolved through LLVM's own CPU and feature tables, so the feature
// set of a CPU is LLVM's (x86-64-v4 has AVX-512 but no VNNI; znver4 has
// AVX-512 VNNI and BF16 but not AVX-VNNI-INT8, so no vpdpbssd). Kernel
// selection asks has() before emitting an instruction, and bundles record
// the spec so the runtime can refuse a machine that lacks a feature.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_TARGET_TARGETSPEC_H
#define NIBBLE_TARGET_TARGETSPEC_H

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nibble::target {

class TargetSpec {
public:
  /// Parses and validates `text`; on failure returns nullopt and an error
  /// naming the unknown CPU or feature (with the known ones for a feature).
  static std::optional<TargetSpec> parse(std::string_view text,
                                         std::string &error);

  const std::string &triple() const { return triple_; }
  const std::string &cpu() const { return cpu_; }
  /// Explicit feature changes, LLVM syntax ("+avx512vnni,-avx512f").
  const std::string &features() const { return features_; }
  bool isX86() const;
  bool isAArch64() const;

  /// Whether the CPU plus the explicit changes has `feature` (an LLVM
  /// feature name without sign, e.g. "avx512vnni", "avx2", "neon").
  bool has(std::string_view feature) const;
  /// Every enabled feature, sorted (for manifests and messages).
  std::vector<std::string> enabledFeatures() const;
  /// "x86_64-unknown-linux-gnu znver4 +f" style one-line description.
  std::string describe() const;

private:
  std::string triple_, cpu_, features_;
  std::vector<std::string> enabled_;
};

} // namespace nibble::target

#endif // NIBBLE_TARGET_TARGETSPEC_H
