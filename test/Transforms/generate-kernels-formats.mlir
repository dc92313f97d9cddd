// Weight-only kernels for the other format families: formats of at most 16
// codes (NF4, fp4 e2m1, any table) decode with a vector permute of a
// 16-entry f32 table (vpermps zmm on AVX-512; two vpermps ymm and a blend
// on AVX2; tbl over the table's byte planes on NEON), fp8 e4m3fn / e5m2
// widen through f16 bit patterns (vcvtph2ps / fcvtl), fp6 e2m3fn / e3m2fn
// are stored 4+2 bit split (code6-split64: 48 bytes per 64 codes) and
// rebuilt as f16 bit patterns with shifts and masks, narrow integers are
// sign-extended into nibbles at compile time, and the other 5- to 8-bit
// floats (e4m3fnuz, e5m2fnuz, custom ones such as e3m3, IEEE-style e3m4
// or e2m2, stored in bytes with the sign repeated above the code) have
// their exponent and mantissa shifted into f16 bit positions (at most 4
// exponent bits) or f32 ones, times 2^(15 - bias) or 2^(127 - bias).
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ZEN4
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=x86-64-v3" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=x86-64-v3 | FileCheck %s --check-prefix=AVX2
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=aarch64" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=aarch64-unknown-linux-gnu | FileCheck %s --check-prefix=NEON

!nf4 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.lut<nf4>, group<1, 32>, scale = f32>>
!fp4 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f32>>
!e4 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e4m3fn>, per_channel<0>, scale = f32>>
!e5 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e5m2>, group<1, 32>, scale = f32>>
!i3 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<3, signed>, group<1, 64>, scale = f32>>
!fp6 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e2m3fn>, group<1, 64>, scale = f32>>
!e4z = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e4m3fnuz>, group<1, 32>, scale = f32>>
!f8 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e3m4, bias = 2, nonfinite = finite_only>, group<1, 32>, scale = f32>>
!f7 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e3m3, bias = 3, nonfinite = finite_only>, group<1, 32>, scale = f32>>
!f5 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e2m2, bias = 1, nonfinite = finite_only>, group<1, 32>, scale = f32>>
!e5z = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e5m2fnuz>, group<1, 32>, scale = f32>>

func.func @f(%x: tensor<1x64xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>) {
  %s2 = arith.constant dense<0.5> : tensor<8x2xf32>
  %s1 = arith.constant dense<0.25> : tensor<8x1xf32>
  %wn = nibble.constant dense<17> : tensor<256xi8> -> !nf4
  %yn = nibble.matmul %x, %wn scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !nf4 -> tensor<1x8xf32>
  %wf = nibble.constant dense<33> : tensor<256xi8> -> !fp4
  %yf = nibble.matmul %x, %wf scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !fp4 -> tensor<1x8xf32>
  %w4 = nibble.constant dense<56> : tensor<512xi8> -> !e4
  %y4 = nibble.matmul %x, %w4 scales(%s1 : tensor<8x1xf32>) : tensor<1x64xf32>, !e4 -> tensor<1x8xf32>
  %w5 = nibble.constant dense<-60> : tensor<512xi8> -> !e5
  %y5 = nibble.matmul %x, %w5 scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !e5 -> tensor<1x8xf32>
  %w3 = nibble.constant dense<-83> : tensor<192xi8> -> !i3
  %y3 = nibble.matmul %x, %w3 scales(%s1 : tensor<8x1xf32>) : tensor<1x64xf32>, !i3 -> tensor<1x8xf32>
  %w6 = nibble.constant dense<5> : tensor<384xi8> -> !fp6
  %y6 = nibble.matmul %x, %w6 scales(%s1 : tensor<8x1xf32>) : tensor<1x64xf32>, !fp6 -> tensor<1x8xf32>
  %wz = nibble.constant dense<-87> : tensor<512xi8> -> !e4z
  %yz = nibble.matmul %x, %wz scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !e4z -> tensor<1x8xf32>
  %w8 = nibble.constant dense<100> : tensor<512xi8> -> !f8
  %y8 = nibble.matmul %x, %w8 scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !f8 -> tensor<1x8xf32>
  %w7 = nibble.constant dense<21> : tensor<448xi8> -> !f7
  %y7 = nibble.matmul %x, %w7 scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !f7 -> tensor<1x8xf32>
  %wf5 = nibble.constant dense<-93> : tensor<320xi8> -> !f5
  %yf5 = nibble.matmul %x, %wf5 scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !f5 -> tensor<1x8xf32>
  %we5 = nibble.constant dense<-75> : tensor<512xi8> -> !e5z
  %ye5 = nibble.matmul %x, %we5 scales(%s2 : tensor<8x2xf32>) : tensor<1x64xf32>, !e5z -> tensor<1x8xf32>
  return %yn, %yf, %y4, %y5, %y3, %y6, %yz, %y8, %y7, %yf5, %ye5 : tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>
}

// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.lut<nf4>, group<1, 32>, scale = f32, layout = "code4-interleave32">} {{.*}} : tensor<256xi8>
// CHECK: call @[[NF4:nibble_gemv_lut[0-9a-f]+_g32_m1_n8_k64]](
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f32, layout = "code4-interleave32">}
// CHECK: call @[[FP4:nibble_gemv_lut[0-9a-f]+_g32_m1_n8_k64]](
// CHECK: layout = "code8-dense"
// CHECK: call @nibble_gemv_f8m3b7_g64_m1_n8_k64(
// CHECK: call @nibble_gemv_e5m2g32_m1_n8_k64(
// The int3 codes take nibbles: 256 bytes for 8 x 64 codes.
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.int<3, signed>, group<1, 64>, scale = f32, layout = "int4-interleave32">} {{.*}} : tensor<256xi8>
// CHECK: call @nibble_gemv_w4g64_m1_n8_k64(
// The fp6 codes take 6 bits: 384 bytes for 8 x 64 codes.
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.float<e2m3fn>, group<1, 64>, scale = f32, layout = "code6-split64">} {{.*}} : tensor<384xi8>
// CHECK: call @nibble_gemv_f6m3b1_g64_m1_n8_k64(
// CHECK: call @nibble_gemv_f8m3b8_g32_m1_n8_k64(
// CHECK: call @nibble_gemv_f8m4b2_g32_m1_n8_k64(
// 7- and 5-bit floats take a byte each: 512 bytes for 8 x 64 codes.
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.float<e3m3, nonfinite = finite_only>, group<1, 32>, scale = f32, layout = "code8-dense">} {{.*}} : tensor<512xi8>
// CHECK: call @nibble_gemv_f7m3b3_g32_m1_n8_k64(
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.float<e2m2, nonfinite = finite_only>, group<1, 32>, scale = f32, layout = "code8-dense">} {{.*}} : tensor<512xi8>
// CHECK: call @nibble_gemv_f5m2b1_g32_m1_n8_k64(
// CHECK: call @nibble_gemv_f8m2b16_g32_m1_n8_k64(
// CHECK-NOT: nibble.matmul
// Every weight-only kernel prefetches its weights 4 KiB ahead, once per
// 64-byte line, clamped to the buffer.
// CHECK: func.func @[[NF4]](
// CHECK: arith.constant dense<[-1.000000e+00, -0.6961928{{[0-9]*}}, {{.*}}, 1.000000e+00]> : vector<16xf32>
// CHECK: %[[WBUF:.*]] = bufferization.to_buffer %arg1 read_only : tensor<256xi8> to memref<256xi8>
// CHECK: arith.constant 255 : index
// CHECK: arith.constant 4096 : index
// CHECK: arith.minui
// CHECK: memref.prefetch %[[WBUF]][%{{.*}}], read, locality<0>, data : memref<256xi8>
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.permvar.sf.512"
// e4m3fn: the byte-float decode through f16 bit patterns; the scale
// carries 2^(15 - 7).
// CHECK: func.func @nibble_gemv_f8m3b7_g64_m1_n8_k64(
// CHECK: arith.extsi {{.*}} : vector<16xi8> to vector<16xi16>
// CHECK: vector.bitcast {{.*}} : vector<16xi16> to vector<16xf16>
// CHECK: arith.extf {{.*}} : vector<16xf16> to vector<16xf32>
// CHECK: arith.constant 2.560000e+02 : f32
// CHECK: arith.mulf {{.*}}, %{{.*}} : f32
// CHECK: func.func @nibble_gemv_f6m3b1_g64_m1_n8_k64(
// Nibbles to bits 10-13, top bits to 14-15, shift by the 3 mantissa bits,
// keep the sign and the 12 low bits (0x8FFF); the scale carries 2^14.
// CHECK: arith.constant dense<15360> : vector<16xi16>
// CHECK: arith.constant dense<-16384> : vector<16xi16>
// CHECK: arith.constant dense<-28673> : vector<16xi16>
// CHECK: arith.shrsi
// CHECK: vector.bitcast {{.*}} : vector<16xi16> to vector<16xf16>
// CHECK: arith.constant 1.638400e+04 : f32
// Floats of at most 4 exponent bits in bytes (e4m3fnuz, e2m2, ...) go
// through f16 bit patterns, so that no f32 subnormal is ever an operand:
// e4m3fnuz sign-extended to i16, shifted left by 7 (10 - 3 mantissa bits),
// sign and the 7 code bits kept (0xBF80), widened; the scale carries
// 2^(15 - 8).
// CHECK: func.func @nibble_gemv_f8m3b8_g32_m1_n8_k64(
// CHECK-DAG: arith.constant dense<7> : vector<16xi16>
// CHECK-DAG: arith.constant dense<-16512> : vector<16xi16>
// CHECK: arith.extsi {{.*}} : vector<16xi8> to vector<16xi16>
// CHECK: arith.shli
// CHECK: arith.andi
// CHECK: vector.bitcast {{.*}} : vector<16xi16> to vector<16xf16>
// CHECK: arith.extf {{.*}} : vector<16xf16> to vector<16xf32>
// CHECK: arith.constant 1.280000e+02 : f32
// e2m2 (5 bits, bias 1): shift left by 8, keep 0x8F00, the scale carries
// 2^14.
// CHECK: func.func @nibble_gemv_f5m2b1_g32_m1_n8_k64(
// CHECK-DAG: arith.constant dense<-28928> : vector<16xi16>
// CHECK: arith.extsi {{.*}} : vector<16xi8> to vector<16xi16>
// CHECK: arith.constant 1.638400e+04 : f32
// e5m2fnuz's top binade is not an f16 number: f32 bit patterns, shift
// left by 21 (23 - 2), keep bit 31 and the 7 code bits (0x8FE00000),
// times 2^(127 - 16).
// CHECK: func.func @nibble_gemv_f8m2b16_g32_m1_n8_k64(
// CHECK-DAG: arith.constant dense<21> : vector<16xi32>
// CHECK-DAG: arith.constant dense<-1881145344> : vector<16xi32>
// CHECK-DAG: arith.constant dense<2.59614843E+33> : vector<16xf32>
// CHECK: arith.extsi {{.*}} : vector<16xi8> to vector<16xi32>
// CHECK: arith.shli
// CHECK: arith.andi
// CHECK: vector.bitcast {{.*}} : vector<16xi32> to vector<16xf32>
// CHECK: arith.mulf {{.*}} : vector<16xf32>

// ZEN4-LABEL: nibble_gemv_lut
// ZEN4: prefetchnta
// ZEN4: vperm{{d|ps}} {{.*}}zmm
// ZEN4: vfmadd{{[0-9]+}}ps {{.*}}zmm
// ZEN4-LABEL: nibble_gemv_f8m3b7_g64_m1_n8_k64:
// ZEN4: vcvtph2ps {{.*}}zmm
// ZEN4-LABEL: nibble_gemv_f6m3b1_g64_m1_n8_k64:
// ZEN4: vpsraw {{.*}}ymm
// ZEN4: vcvtph2ps {{.*}}zmm
// ZEN4-LABEL: nibble_gemv_f8m3b8_g32_m1_n8_k64:
// ZEN4: vpmovsxbw {{.*}}ymm
// ZEN4: vpsllw $7
// ZEN4: vcvtph2ps {{.*}}zmm
// ZEN4: vfmadd{{[0-9]+}}ps {{.*}}zmm
// ZEN4-LABEL: nibble_gemv_f5m2b1_g32_m1_n8_k64:
// ZEN4: vpsllw $8
// ZEN4: vcvtph2ps {{.*}}zmm
// ZEN4-LABEL: nibble_gemv_f8m2b16_g32_m1_n8_k64:
// ZEN4: vpmovsxbd {{.*}}zmm
// ZEN4: vpslld $21
// ZEN4: vmulps {{.*}}zmm

// AVX2-LABEL: nibble_gemv_lut
// AVX2-NOT: zmm
// AVX2: vperm{{d|ps}} {{.*}}ymm
// AVX2: vblendvps
// AVX2-LABEL: nibble_gemv_e5m2g32_m1_n8_k64:
// AVX2: vcvtph2ps {{.*}}ymm
// AVX2-LABEL: nibble_gemv_f6m3b1_g64_m1_n8_k64:
// AVX2: vpsraw
// AVX2: vcvtph2ps {{.*}}ymm

// NEON-LABEL: nibble_gemv_lut
// NEON: prfm pldl1strm
// NEON: tbl v{{[0-9]+}}.16b
// NEON: fmla v{{[0-9]+}}.4s
// NEON-LABEL: nibble_gemv_f8m3b7_g64_m1_n8_k64:
// NEON: fcvtl v{{[0-9]+}}.4s
// NEON-LABEL: nibble_gemv_f6m3b1_g64_m1_n8_k64:
// NEON: sshr v{{[0-9]+}}.8h
// NEON: fcvtl v{{[0-9]+}}.4s
