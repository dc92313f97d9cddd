//===- CpuFeaturesTest.cpp - The runtime's view of this CPU ---------------===//

#include "nibble/Runtime/CpuFeatures.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

using namespace nibble::runtime;

namespace {

TEST(CpuFeatures, TripleArchitectures) {
  EXPECT_EQ(tripleArch("x86_64-unknown-linux-gnu"), "x86_64");
  EXPECT_EQ(tripleArch("amd64-pc-linux"), "x86_64");
  EXPECT_EQ(tripleArch("aarch64-unknown-linux-gnu"), "aarch64");
  EXPECT_EQ(tripleArch("arm64-apple-darwin"), "aarch64");
  EXPECT_EQ(tripleArch("riscv64"), "riscv64");
#if defined(__x86_64__)
  EXPECT_STREQ(hostArch(), "x86_64");
#elif defined(__aarch64__)
  EXPECT_STREQ(hostArch(), "aarch64");
#endif
}

/// The kernel's own feature list (/proc/cpuinfo "flags" or "Features").
std::set<std::string> cpuinfoFlags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0 || line.rfind("Features", 0) == 0) {
      std::istringstream words(line.substr(line.find(':') + 1));
      std::set<std::string> flags;
      for (std::string w; words >> w;)
        flags.insert(w);
      return flags;
    }
  return {};
}

TEST(CpuFeatures, AgreesWithTheKernel) {
  std::set<std::string> flags = cpuinfoFlags();
  if (flags.empty())
    GTEST_SKIP() << "no /proc/cpuinfo feature list";
  // LLVM name -> the kernel's name, for features both report.
  std::map<std::string, std::string> names;
#if defined(__x86_64__)
  names = {{"sse2", "sse2"},         {"ssse3", "ssse3"},
           {"sse4.1", "sse4_1"},     {"sse4.2", "sse4_2"},
           {"popcnt", "popcnt"},     {"avx", "avx"},
           {"avx2", "avx2"},         {"fma", "fma"},
           {"f16c", "f16c"},         {"bmi", "bmi1"},
           {"bmi2", "bmi2"},         {"lzcnt", "abm"},
           {"avx512f", "avx512f"},   {"avx512bw", "avx512bw"},
           {"avx512dq", "avx512dq"}, {"avx512vl", "avx512vl"},
           {"avx512cd", "avx512cd"}, {"avx512vnni", "avx512_vnni"},
           {"avx512bf16", "avx512_bf16"}, {"avx512fp16", "avx512_fp16"},
           {"avx512vbmi", "avx512vbmi"}, {"avxvnni", "avx_vnni"},
           {"gfni", "gfni"},         {"vaes", "vaes"},
           {"sha", "sha_ni"},        {"amx-tile", "amx_tile"}};
#elif defined(__aarch64__)
  names = {{"neon", "asimd"},  {"dotprod", "asimddp"}, {"i8mm", "i8mm"},
           {"bf16", "bf16"},   {"sve", "sve"},         {"sve2", "sve2"},
           {"fullfp16", "asimdhp"}, {"crc", "crc32"}, {"lse", "atomics"}};
#endif
  if (names.empty())
    GTEST_SKIP() << "no feature table for this architecture";
  for (const auto &[llvm, kernel] : names) {
    EXPECT_TRUE(isDetectable(llvm)) << llvm;
    EXPECT_EQ(hostHasFeature(llvm), flags.count(kernel) != 0)
        << llvm << " (cpuinfo " << kernel << ")";
  }
}

TEST(CpuFeatures, MissingListsOnlyDetectableEnabledFeatures) {
  std::vector<std::string> have;
  std::string lacking;
  for (const std::string &f : detectableFeatures())
    (hostHasFeature(f) ? have.push_back(f) : void(lacking = f));
  ASSERT_FALSE(have.empty());
  EXPECT_TRUE(missingFeatures(have).empty());
  EXPECT_TRUE(hostHasFeature("+" + have[0]));
  EXPECT_TRUE(missingFeatures({"64bit", "tuning-fast-imm", "x87"}).empty());
  EXPECT_FALSE(isDetectable("tuning-fast-imm"));
  EXPECT_FALSE(hostHasFeature("tuning-fast-imm"));
  if (!lacking.empty()) {
    EXPECT_EQ(missingFeatures({"+" + lacking, have[0]}),
              std::vector<std::string>{lacking});
    EXPECT_TRUE(missingFeatures({"-" + lacking}).empty());
  }
}

TEST(CpuFeatures, EnvironmentHookHidesFeatures) {
  std::vector<std::string> have;
  for (const std::string &f : detectableFeatures())
    if (hostHasFeature(f))
      have.push_back(f);
  ASSERT_GE(have.size(), 2u);
  ::setenv("NIBBLE_CPU_FEATURES_DISABLE", ("x," + have[1]).c_str(), 1);
  EXPECT_FALSE(hostHasFeature(have[1]));
  EXPECT_TRUE(hostHasFeature(have[0]));
  EXPECT_EQ(missingFeatures(have), std::vector<std::string>{have[1]});
  ::unsetenv("NIBBLE_CPU_FEATURES_DISABLE");
  EXPECT_TRUE(hostHasFeature(have[1]));
}

} // namespace
