//===- CpuFeatures.h - What this machine can run (plain C++) ----*- C++ -*-===//
//
// The runtime refuses a bundle compiled for instructions this machine lacks
// before loading its code (which would otherwise die of SIGILL mid-run). A
// bundle's manifest lists the LLVM feature names its target enabled; the
// runtime checks those it can detect here: cpuid (and XGETBV for the OS's
// register state) on x86-64, getauxval(AT_HWCAP/AT_HWCAP2) on AArch64.
// Feature names not in the table (LLVM also lists tuning flags and
// instructions every CPU of the architecture has) are ignored.
//
// Test hook: NIBBLE_CPU_FEATURES_DISABLE="avx2,fma" makes the listed
// features read as absent, so the refusal path can be tested on any machine.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_RUNTIME_CPUFEATURES_H
#define NIBBLE_RUNTIME_CPUFEATURES_H

#include <string>
#include <string_view>
#include <vector>

namespace nibble::runtime {

/// This machine's architecture as the first component of an LLVM triple:
/// "x86_64", "aarch64", or "unknown".
const char *hostArch();

/// The architecture of an LLVM triple, with aliases normalized
/// ("amd64-..." -> "x86_64", "arm64-..." -> "aarch64"; otherwise the text
/// before the first '-').
std::string tripleArch(std::string_view triple);

/// The feature names this runtime can detect on this architecture, in table
/// order.
std::vector<std::string> detectableFeatures();

/// Whether this machine has `feature` (an LLVM feature name; a leading '+'
/// is ignored). False for names not in the table (see isDetectable).
bool hostHasFeature(std::string_view feature);
bool isDetectable(std::string_view feature);

/// The features of `features` that this machine lacks, in the order given:
/// only detectable names count, "-name" (a disabled feature) is skipped, and
/// names in $NIBBLE_CPU_FEATURES_DISABLE count as lacking.
std::vector<std::string> missingFeatures(const std::vector<std::string> &features);

} // namespace nibble::runtime

#endif // NIBBLE_RUNTIME_CPUFEATURES_H
