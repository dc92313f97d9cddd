//===- TargetSpecTest.cpp - CPU names and features through LLVM ----------===//

#include "nibble/Target/TargetSpec.h"

#include "gtest/gtest.h"

using nibble::target::TargetSpec;

namespace {

TargetSpec parse(const std::string &text) {
  std::string error;
  auto t = TargetSpec::parse(text, error);
  EXPECT_TRUE(t) << text << ": " << error;
  return t ? *t : *TargetSpec::parse("x86-64", error);
}

// The facts kernel selection relies on, from LLVM's CPU tables.
TEST(TargetSpecTest, X86FeatureSetsOfNamedCPUs) {
  TargetSpec v3 = parse("x86-64-v3");
  EXPECT_TRUE(v3.isX86());
  EXPECT_TRUE(v3.has("avx2"));
  EXPECT_TRUE(v3.has("fma"));
  EXPECT_FALSE(v3.has("avx512f"));

  // x86-64-v4 is AVX-512 without VNNI: the vpdpbusd path must not be chosen.
  TargetSpec v4 = parse("x86-64-v4");
  EXPECT_TRUE(v4.has("avx512f"));
  EXPECT_TRUE(v4.has("avx512bw"));
  EXPECT_FALSE(v4.has("avx512vnni"));
  EXPECT_FALSE(v4.has("avxvnni"));

  // Zen 4: AVX-512 VNNI and BF16, but no AVX-VNNI-INT8 (vpdpbssd).
  TargetSpec zen4 = parse("znver4");
  EXPECT_TRUE(zen4.has("avx512vnni"));
  EXPECT_TRUE(zen4.has("avx512bf16"));
  EXPECT_FALSE(zen4.has("avxvnniint8"));

  TargetSpec spr = parse("sapphirerapids");
  EXPECT_TRUE(spr.has("avx512vnni"));
  EXPECT_TRUE(spr.has("amx-int8"));
}

TEST(TargetSpecTest, ExplicitFeaturesAddAndRemove) {
  TargetSpec t = parse("x86-64-v4+avx512vnni");
  EXPECT_TRUE(t.has("avx512vnni"));
  EXPECT_EQ(t.features(), "+avx512vnni");
  TargetSpec u = parse("znver4,-avx512vnni");
  EXPECT_FALSE(u.has("avx512vnni"));
  EXPECT_TRUE(u.has("avx512f"));
  EXPECT_NE(u.describe().find("znver4 -avx512vnni"), std::string::npos);
}

TEST(TargetSpecTest, AArch64CrossTarget) {
  TargetSpec a = parse("aarch64");
  EXPECT_TRUE(a.isAArch64());
  EXPECT_FALSE(a.isX86());
  EXPECT_TRUE(a.has("neon"));
  TargetSpec d = parse("aarch64+dotprod");
  EXPECT_TRUE(d.has("dotprod"));
  TargetSpec n = parse("aarch64:neoverse-v1");
  EXPECT_TRUE(n.has("dotprod"));
  EXPECT_TRUE(n.has("sve"));
}

TEST(TargetSpecTest, NativeIsThisMachine) {
  TargetSpec n = parse("native");
  EXPECT_FALSE(n.cpu().empty());
  EXPECT_FALSE(n.enabledFeatures().empty());
#if defined(__x86_64__)
  EXPECT_TRUE(n.isX86());
#if defined(__AVX2__)
  EXPECT_TRUE(n.has("avx2"));
#endif
#endif
}

TEST(TargetSpecTest, ClearErrors) {
  std::string error;
  EXPECT_FALSE(TargetSpec::parse("pentium9000", error));
  EXPECT_NE(error.find("unknown CPU 'pentium9000'"), std::string::npos) << error;
  EXPECT_FALSE(TargetSpec::parse("znver4+avx1024", error));
  EXPECT_NE(error.find("unknown feature 'avx1024'"), std::string::npos) << error;
  EXPECT_FALSE(TargetSpec::parse("znver4+", error));
  EXPECT_NE(error.find("unknown feature ''"), std::string::npos) << error;
  EXPECT_FALSE(TargetSpec::parse("znver4,avx512f", error));
  EXPECT_NE(error.find("needs a sign"), std::string::npos) << error;
  EXPECT_FALSE(TargetSpec::parse("", error));
  EXPECT_NE(error.find("names no CPU"), std::string::npos) << error;
  EXPECT_FALSE(TargetSpec::parse("aarch64:cortex-z99", error));
  EXPECT_NE(error.find("unknown CPU 'cortex-z99'"), std::string::npos) << error;
}

} // namespace
