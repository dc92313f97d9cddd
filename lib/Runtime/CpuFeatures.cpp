//===- CpuFeatures.cpp - cpuid / HWCAP feature detection ------------------===//

#include "nibble/Runtime/CpuFeatures.h"

#include <cstdint>
#include <cstdlib>

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace nibble::runtime {
namespace {

std::string_view stripPlus(std::string_view name) {
  if (!name.empty() && name[0] == '+')
    name.remove_prefix(1);
  return name;
}

#if defined(__x86_64__)

// One cpuid bit. `xcr0` is the register state the OS must save (XCR0 bits)
// for the instructions to be usable: SSE 0x2, AVX 0x6, AVX-512 0xe6,
// AMX 0x60000.
struct Bit {
  const char *name;
  uint32_t leaf, subleaf;
  int reg; // 0 eax, 1 ebx, 2 ecx, 3 edx
  int bit;
  uint64_t xcr0;
};
constexpr uint64_t kSse = 0x2, kAvx = 0x6, kAvx512 = 0xe6, kAmx = 0x60000;
constexpr uint32_t kExt = 0x80000001;
// LLVM's names (X86.td) for the instruction sets it enables by feature.
constexpr Bit kTable[] = {
    {"sse", 1, 0, 3, 25, kSse},          {"sse2", 1, 0, 3, 26, kSse},
    {"sse3", 1, 0, 2, 0, kSse},          {"pclmul", 1, 0, 2, 1, kSse},
    {"ssse3", 1, 0, 2, 9, kSse},         {"fma", 1, 0, 2, 12, kAvx},
    {"cx16", 1, 0, 2, 13, 0},            {"sse4.1", 1, 0, 2, 19, kSse},
    {"sse4.2", 1, 0, 2, 20, kSse},       {"movbe", 1, 0, 2, 22, 0},
    {"popcnt", 1, 0, 2, 23, 0},          {"aes", 1, 0, 2, 25, kSse},
    {"xsave", 1, 0, 2, 26, 0},           {"avx", 1, 0, 2, 28, kAvx},
    {"f16c", 1, 0, 2, 29, kAvx},         {"rdrnd", 1, 0, 2, 30, 0},
    {"fsgsbase", 7, 0, 1, 0, 0},         {"bmi", 7, 0, 1, 3, 0},
    {"avx2", 7, 0, 1, 5, kAvx},          {"bmi2", 7, 0, 1, 8, 0},
    {"avx512f", 7, 0, 1, 16, kAvx512},   {"avx512dq", 7, 0, 1, 17, kAvx512},
    {"rdseed", 7, 0, 1, 18, 0},          {"adx", 7, 0, 1, 19, 0},
    {"avx512ifma", 7, 0, 1, 21, kAvx512}, {"clflushopt", 7, 0, 1, 23, 0},
    {"clwb", 7, 0, 1, 24, 0},            {"avx512cd", 7, 0, 1, 28, kAvx512},
    {"sha", 7, 0, 1, 29, kSse},          {"avx512bw", 7, 0, 1, 30, kAvx512},
    {"avx512vl", 7, 0, 1, 31, kAvx512},  {"avx512vbmi", 7, 0, 2, 1, kAvx512},
    {"avx512vbmi2", 7, 0, 2, 6, kAvx512}, {"gfni", 7, 0, 2, 8, kSse},
    {"vaes", 7, 0, 2, 9, kAvx},          {"vpclmulqdq", 7, 0, 2, 10, kAvx},
    {"avx512vnni", 7, 0, 2, 11, kAvx512},
    {"avx512bitalg", 7, 0, 2, 12, kAvx512},
    {"avx512vpopcntdq", 7, 0, 2, 14, kAvx512},
    {"rdpid", 7, 0, 2, 22, 0},
    {"avx512vp2intersect", 7, 0, 3, 8, kAvx512},
    {"serialize", 7, 0, 3, 14, 0},       {"amx-bf16", 7, 0, 3, 22, kAmx},
    {"avx512fp16", 7, 0, 3, 23, kAvx512}, {"amx-tile", 7, 0, 3, 24, kAmx},
    {"amx-int8", 7, 0, 3, 25, kAmx},     {"avxvnni", 7, 1, 0, 4, kAvx},
    {"avx512bf16", 7, 1, 0, 5, kAvx512}, {"avxifma", 7, 1, 0, 23, kAvx},
    {"avxvnniint8", 7, 1, 3, 4, kAvx},   {"avxneconvert", 7, 1, 3, 5, kAvx},
    {"lzcnt", kExt, 0, 2, 5, 0},         {"sse4a", kExt, 0, 2, 6, kSse},
    {"prfchw", kExt, 0, 2, 8, 0},        {"xop", kExt, 0, 2, 11, kAvx},
    {"fma4", kExt, 0, 2, 16, kAvx},      {"tbm", kExt, 0, 2, 21, 0},
};

bool cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
  uint32_t maxLeaf = __get_cpuid_max(leaf & 0x80000000u, nullptr);
  if (maxLeaf < leaf)
    return false;
  if (leaf == 7 && subleaf > 0) {
    uint32_t r[4];
    __cpuid_count(7, 0, r[0], r[1], r[2], r[3]);
    if (r[0] < subleaf) // leaf 7 EAX: the highest valid subleaf
      return false;
  }
  __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
  return true;
}

uint64_t xcr0() {
  uint32_t r[4];
  if (!cpuid(1, 0, r) || !(r[2] & (1u << 27))) // OSXSAVE
    return 0;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return uint64_t(hi) << 32 | lo;
}

bool hasBit(const Bit &b) {
  uint32_t r[4];
  if (!cpuid(b.leaf, b.subleaf, r) || !(r[b.reg] & (1u << b.bit)))
    return false;
  return (xcr0() & b.xcr0) == b.xcr0;
}

#elif defined(__aarch64__) && defined(__linux__)

// Linux uapi asm/hwcap.h bit numbers, spelled out so that an older header
// still compiles; `hwcap2` selects AT_HWCAP2.
struct Bit {
  const char *name;
  bool hwcap2;
  int bit;
};
constexpr Bit kTable[] = {
    {"fp-armv8", false, 0}, {"neon", false, 1},      {"aes", false, 3},
    {"sha2", false, 6},     {"crc", false, 7},       {"lse", false, 8},
    {"fullfp16", false, 10}, {"rdm", false, 12},     {"jsconv", false, 13},
    {"complxnum", false, 14}, {"rcpc", false, 15},   {"sha3", false, 17},
    {"dotprod", false, 20}, {"sve", false, 22},      {"fp16fml", false, 23},
    {"sve2", true, 1},      {"i8mm", true, 13},      {"bf16", true, 14},
    {"sme", true, 23},
};

bool hasBit(const Bit &b) {
  unsigned long caps = getauxval(b.hwcap2 ? AT_HWCAP2 : AT_HWCAP);
  return (caps >> b.bit) & 1;
}

#else

struct Bit {
  const char *name;
};
constexpr Bit kTable[] = {{""}}; // no detectable features
bool hasBit(const Bit &) { return false; }

#endif

/// The table entry of feature `name` (the fallback's empty entry never
/// matches).
const Bit *findBit(std::string_view name) {
  for (const Bit &b : kTable)
    if (*b.name && name == b.name)
      return &b;
  return nullptr;
}

/// Names listed in $NIBBLE_CPU_FEATURES_DISABLE (comma-separated).
bool disabledByEnvironment(std::string_view name) {
  const char *env = std::getenv("NIBBLE_CPU_FEATURES_DISABLE");
  if (!env)
    return false;
  std::string_view list(env);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (stripPlus(item) == name)
      return true;
    if (comma == std::string_view::npos)
      break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

} // namespace

const char *hostArch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

std::string tripleArch(std::string_view triple) {
  std::string arch(triple.substr(0, triple.find('-')));
  if (arch == "amd64" || arch == "x86-64")
    return "x86_64";
  if (arch == "arm64")
    return "aarch64";
  return arch;
}

std::vector<std::string> detectableFeatures() {
  std::vector<std::string> names;
  for (const Bit &b : kTable)
    if (findBit(b.name))
      names.emplace_back(b.name);
  return names;
}

bool isDetectable(std::string_view feature) {
  return findBit(stripPlus(feature)) != nullptr;
}

bool hostHasFeature(std::string_view feature) {
  feature = stripPlus(feature);
  const Bit *b = findBit(feature);
  return b && hasBit(*b) && !disabledByEnvironment(feature);
}

std::vector<std::string>
missingFeatures(const std::vector<std::string> &features) {
  std::vector<std::string> missing;
  for (const std::string &f : features) {
    if (!f.empty() && f[0] == '-')
      continue;
    if (isDetectable(f) && !hostHasFeature(f))
      missing.emplace_back(stripPlus(f));
  }
  return missing;
}

} // namespace nibble::runtime
