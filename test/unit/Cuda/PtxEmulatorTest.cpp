//===- PtxEmulatorTest.cpp - The PTX interpreter on hand-written kernels ---===//
//
// Each kernel here has an answer computed in C++ beside it: integer and
// float arithmetic, bit-field extracts, predicated branches and loops,
// vector loads, a warp butterfly reduction, fp8 -> f16 conversion against
// the format library, and the faults the emulator exists to catch
// (out-of-bounds and misaligned accesses, unimplemented instructions).
//
//===----------------------------------------------------------------------===//

#include "nibble/Cuda/PtxEmulator.h"
#include "nibble/Formats/Format.h"
#include "nibble/Formats/Half.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

using namespace nibble::cuda::emu;

namespace {

/// Host vectors registered as the kernels' allocations.
struct Buffers {
  Allocations memory;
  template <typename T> uint64_t add(std::vector<T> &v) {
    uint64_t a = reinterpret_cast<uint64_t>(v.data());
    memory.add(a, v.size() * sizeof(T));
    return a;
  }
};

std::unique_ptr<Module> parse(const std::string &body, const std::string &params,
                              const std::string &name = "k") {
  std::string ptx = ".version 8.0\n.target sm_90\n.address_size 64\n"
                    ".visible .entry " + name + "(" + params + ")\n{\n" + body +
                    "\n}\n";
  std::string error;
  auto m = Module::parse(ptx, error);
  EXPECT_TRUE(m) << error;
  return m;
}

const char *kTwoPointers = ".param .u64 k_param_0, .param .u64 k_param_1";

TEST(PtxEmulatorTest, IntegerFloatAndBranches) {
  // out[i] = (i odd ? bfe(in, 4, 4) : in >> 28) + float(i) * 0.5 + fma,
  // through a loop that adds i three times.
  auto m = parse(R"(
  .reg .pred %p<3>;
  .reg .b32 %r<12>;
  .reg .b64 %rd<8>;
  ld.param.b64 %rd1, [k_param_0];
  ld.param.b64 %rd2, [k_param_1];
  mov.u32 %r1, %tid.x;
  mul.wide.u32 %rd3, %r1, 4;
  add.s64 %rd4, %rd1, %rd3;
  ld.global.b32 %r2, [%rd4];
  and.b32 %r3, %r1, 1;
  setp.ne.b32 %p1, %r3, 0;
  bfe.u32 %r4, %r2, 4, 4;
  shr.u32 %r5, %r2, 28;
  selp.b32 %r6, %r4, %r5, %p1;
  cvt.rn.f32.u32 %r7, %r6;
  cvt.rn.f32.u32 %r8, %r1;
  fma.rn.f32 %r9, %r8, 0f3F000000, %r7;
  mov.u32 %r10, 0;
$L_loop:
  add.rn.f32 %r9, %r9, %r8;
  add.s32 %r10, %r10, 1;
  setp.lt.u32 %p2, %r10, 3;
  @%p2 bra $L_loop;
  add.s64 %rd5, %rd2, %rd3;
  st.global.b32 [%rd5], %r9;
  ret;)", kTwoPointers);
  ASSERT_TRUE(m);
  std::vector<uint32_t> in(64);
  std::vector<float> out(64, -1);
  for (uint32_t i = 0; i < 64; ++i)
    in[i] = 0x9abcdef0u + i * 0x01000011u;
  Buffers mem;
  uint64_t a = mem.add(in), b = mem.add(out);
  void *params[] = {&a, &b};
  std::string error;
  LaunchStats stats;
  ASSERT_TRUE(launch(*m->kernel("k"), {1, 1, 1}, {64, 1, 1}, params, mem.memory,
                     error, &stats))
      << error;
  for (uint32_t i = 0; i < 64; ++i) {
    uint32_t field = i % 2 ? (in[i] >> 4) & 15 : in[i] >> 28;
    EXPECT_EQ(out[i], float(i) * 0.5f + float(field) + 3.0f * float(i)) << i;
  }
  EXPECT_GT(stats.instructions, 64u * 20);
}

TEST(PtxEmulatorTest, WarpButterflySumAndVectorLoads) {
  // Each of 64 threads loads a float4, sums it, and the warp reduces with
  // shfl.sync.bfly; lane 0 writes its warp's total.
  auto m = parse(R"(
  .reg .pred %p<2>;
  .reg .b32 %r<20>;
  .reg .b64 %rd<8>;
  ld.param.b64 %rd1, [k_param_0];
  ld.param.b64 %rd2, [k_param_1];
  mov.u32 %r1, %tid.x;
  mul.wide.u32 %rd3, %r1, 16;
  add.s64 %rd4, %rd1, %rd3;
  ld.global.v4.b32 {%r2, %r3, %r4, %r5}, [%rd4];
  add.rn.f32 %r6, %r2, %r3;
  add.rn.f32 %r7, %r4, %r5;
  add.rn.f32 %r8, %r6, %r7;
  shfl.sync.bfly.b32 %r9, %r8, 16, 31, -1;
  add.rn.f32 %r8, %r8, %r9;
  shfl.sync.bfly.b32 %r9, %r8, 8, 31, -1;
  add.rn.f32 %r8, %r8, %r9;
  shfl.sync.bfly.b32 %r9, %r8, 4, 31, -1;
  add.rn.f32 %r8, %r8, %r9;
  shfl.sync.bfly.b32 %r9, %r8, 2, 31, -1;
  add.rn.f32 %r8, %r8, %r9;
  shfl.sync.bfly.b32 %r9, %r8, 1, 31, -1;
  add.rn.f32 %r8, %r8, %r9;
  and.b32 %r10, %r1, 31;
  setp.ne.b32 %p1, %r10, 0;
  @%p1 bra $L_end;
  shr.u32 %r11, %r1, 5;
  mul.wide.u32 %rd5, %r11, 4;
  add.s64 %rd6, %rd2, %rd5;
  st.global.b32 [%rd6], %r8;
$L_end:
  ret;)", kTwoPointers);
  ASSERT_TRUE(m);
  alignas(16) static float in[256];
  for (int i = 0; i < 256; ++i)
    in[i] = float(i % 7) - 2.5f;
  std::vector<float> out(2, 0);
  Buffers mem;
  mem.memory.add(reinterpret_cast<uint64_t>(in), sizeof in);
  uint64_t a = reinterpret_cast<uint64_t>(in), b = mem.add(out);
  void *params[] = {&a, &b};
  std::string error;
  ASSERT_TRUE(launch(*m->kernel("k"), {1, 1, 1}, {64, 1, 1}, params, mem.memory,
                     error))
      << error;
  for (int w = 0; w < 2; ++w) {
    float want = 0;
    for (int i = 128 * w; i < 128 * (w + 1); ++i)
      want += in[i];
    EXPECT_FLOAT_EQ(out[size_t(w)], want) << "warp " << w;
  }
}

TEST(PtxEmulatorTest, Fp8ToHalfMatchesTheFormatLibrary) {
  // Thread i converts the byte pair (2i, 2i + 1) of a table of all 256
  // codes with cvt.rn.f16x2.e4m3x2 (and e5m2x2): the low byte lands in the
  // low half.
  for (const char *fmt : {"e4m3", "e5m2"}) {
    auto m = parse(std::string(R"(
  .reg .b16 %rs<2>;
  .reg .b32 %r<4>;
  .reg .b64 %rd<8>;
  ld.param.b64 %rd1, [k_param_0];
  ld.param.b64 %rd2, [k_param_1];
  mov.u32 %r1, %tid.x;
  mul.wide.u32 %rd3, %r1, 2;
  add.s64 %rd4, %rd1, %rd3;
  ld.global.b16 %rs1, [%rd4];
  cvt.rn.f16x2.)") + fmt + R"(x2 %r2, %rs1;
  mul.wide.u32 %rd5, %r1, 4;
  add.s64 %rd6, %rd2, %rd5;
  st.global.b32 [%rd6], %r2;
  ret;)", kTwoPointers);
    ASSERT_TRUE(m);
    std::vector<uint8_t> codes(256);
    for (int i = 0; i < 256; ++i)
      codes[size_t(i)] = uint8_t(i);
    std::vector<uint16_t> out(256);
    Buffers mem;
    uint64_t a = mem.add(codes), b = mem.add(out);
    void *params[] = {&a, &b};
    std::string error;
    ASSERT_TRUE(launch(*m->kernel("k"), {1, 1, 1}, {128, 1, 1}, params, mem.memory,
                       error))
        << error;
    nibble::formats::Format f = std::string(fmt) == "e4m3"
                                    ? nibble::formats::Format::e4m3fn()
                                    : nibble::formats::Format::e5m2();
    for (int c = 0; c < 256; ++c) {
      float want = f.decode(uint32_t(c));
      float got = nibble::formats::halfToFloat(out[size_t(c)]);
      if (std::isnan(want))
        EXPECT_TRUE(std::isnan(got)) << fmt << " code " << c;
      else
        EXPECT_EQ(got, want) << fmt << " code " << c;
    }
  }
}

TEST(PtxEmulatorTest, FaultsNameTheKernelLineAndThread) {
  auto m = parse(R"(
  .reg .b32 %r<4>;
  .reg .b64 %rd<8>;
  ld.param.b64 %rd1, [k_param_0];
  mov.u32 %r1, %tid.x;
  mul.wide.u32 %rd3, %r1, 4;
  add.s64 %rd4, %rd1, %rd3;
  st.global.b32 [%rd4], %r1;
  ret;)", ".param .u64 k_param_0");
  ASSERT_TRUE(m);
  std::vector<uint32_t> out(16);
  Buffers mem;
  uint64_t a = mem.add(out);
  void *params[] = {&a};
  std::string error;
  EXPECT_FALSE(launch(*m->kernel("k"), {1, 1, 1}, {32, 1, 1}, params, mem.memory,
                      error));
  // Line 13 of the module: the four header lines, `{`, the body's blank
  // first line, then the store is the body's seventh statement.
  EXPECT_NE(error.find("k, line 13 (\"st.global.b32 [%rd4], %r1\")"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("thread (16,0,0)"), std::string::npos) << error;
  EXPECT_NE(error.find("is outside every allocation"), std::string::npos)
      << error;
  // Misaligned: a 4-byte store one byte in.
  uint64_t off = a + 1;
  void *params2[] = {&off};
  EXPECT_FALSE(launch(*m->kernel("k"), {1, 1, 1}, {1, 1, 1}, params2, mem.memory,
                      error));
  EXPECT_NE(error.find("misaligned address"), std::string::npos) << error;
  // A missing parameter.
  void *none[] = {nullptr};
  EXPECT_FALSE(launch(*m->kernel("k"), {1, 1, 1}, {1, 1, 1}, none, mem.memory,
                      error));
  EXPECT_NE(error.find("parameter 0 of 1 is missing"), std::string::npos)
      << error;
}

TEST(PtxEmulatorTest, AllocationsHoldRanges) {
  Allocations a;
  a.add(0x1000, 256);
  a.add(0x2000, 16);
  EXPECT_TRUE(a.contains(0x1000, 256));
  EXPECT_TRUE(a.contains(0x10f0, 16));
  EXPECT_FALSE(a.contains(0x10f8, 16)); // runs past the end
  EXPECT_FALSE(a.contains(0xff0, 16));  // before the first
  EXPECT_TRUE(a.contains(0x2000, 16));
  EXPECT_TRUE(a.remove(0x1000));
  EXPECT_FALSE(a.remove(0x1000));
  EXPECT_FALSE(a.contains(0x1000, 4)); // the cached hit is forgotten
  EXPECT_TRUE(a.contains(0x2008, 8));
}

TEST(PtxEmulatorTest, RefusesWhatItDoesNotImplement) {
  std::string error;
  EXPECT_FALSE(Module::parse(".version 8.0\n.target sm_90\n"
                             ".visible .entry k(.param .u64 p)\n{\n"
                             "  .reg .b32 %r<2>;\n"
                             "  atom.global.add.u32 %r1, [p], 1;\n}\n",
                             error));
  EXPECT_NE(error.find("line 6"), std::string::npos) << error;
  EXPECT_NE(error.find("does not implement \"atom\""), std::string::npos)
      << error;
  EXPECT_FALSE(Module::parse(".version 8.0\n.target sm_90\n"
                             ".shared .align 4 .b8 s[64];\n",
                             error));
  EXPECT_NE(error.find("shared memory"), std::string::npos) << error;
  EXPECT_FALSE(Module::parse(".version 8.0\n", error));
  EXPECT_NE(error.find("no .target"), std::string::npos) << error;
  auto m = Module::parse(".version 8.0\n.target sm_90a\n", error);
  ASSERT_TRUE(m) << error;
  EXPECT_EQ(m->targetSm(), 90);
  EXPECT_TRUE(m->archSpecific());
}

} // namespace
