// Weight-only kernels in the row-tiled layouts. Nibbles on AVX-512
// (integers and tables alike, `int4-rowtile16` / `code4-rowtile16`): one
// vpermps of the 16-entry table per 16 rows' codes, an FMA against the
// column's activation broadcast from memory. Bytes on every target
// (`uint8-coltile<R>`, R the f32 lanes: 16 zmm, 8 ymm, 4 NEON): widened,
// converted, FMA. Scales and zero points are tiled [N/R * K/G, R] and row
// ranges are whole tiles. AVX2 and NEON keep the one-row nibble layout;
// row-tile=false keeps it everywhere.
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ZEN4
// RUN: quant-opt %s --nibble-generate-kernels=target=x86-64-v3 | FileCheck %s --check-prefix=V3IR
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=x86-64-v3" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=x86-64-v3 | FileCheck %s --check-prefix=AVX2
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=aarch64" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=aarch64-unknown-linux-gnu | FileCheck %s --check-prefix=NEON
// RUN: quant-opt %s --nibble-generate-kernels="target=znver4 row-tile=false" | FileCheck %s --check-prefix=OFF
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" \
// RUN:   --nibble-parallelize-kernel-calls="min-work=1 align=1" | FileCheck %s --check-prefix=PAR

!w4 = !nibble.qtensor<32x256, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32>>
!n4 = !nibble.qtensor<16x128, #nibble.scheme<#nibble.lut<nf4>, group<1, 64>, scale = f32>>
!u8 = !nibble.qtensor<16x128, #nibble.scheme<#nibble.int<8, unsigned>, group<1, 64>, scale = f16, zero_point = f16>>
func.func @f(%x: tensor<1x256xf32>, %x2: tensor<1x128xf32>) -> (tensor<1x32xf32>, tensor<1x16xf32>, tensor<1x16xf32>) {
  %w4 = nibble.constant dense<17> : tensor<4096xi8> -> !w4
  %s4 = arith.constant dense<0.5> : tensor<32x2xf32>
  %y4 = nibble.matmul %x, %w4 scales(%s4 : tensor<32x2xf32>) {nibble.linear = "q"} : tensor<1x256xf32>, !w4 -> tensor<1x32xf32>
  %wn = nibble.constant dense<35> : tensor<1024xi8> -> !n4
  %sn = arith.constant dense<0.5> : tensor<16x2xf32>
  %yn = nibble.matmul %x2, %wn scales(%sn : tensor<16x2xf32>) {nibble.linear = "k"} : tensor<1x128xf32>, !n4 -> tensor<1x16xf32>
  %w8 = nibble.constant dense<200> : tensor<2048xi8> -> !u8
  %s8 = arith.constant dense<0.25> : tensor<16x2xf16>
  %z8 = arith.constant dense<128.0> : tensor<16x2xf16>
  %y8 = nibble.matmul %x2, %w8 scales(%s8 : tensor<16x2xf16>) zero_points(%z8 : tensor<16x2xf16>) {nibble.linear = "u"} : tensor<1x128xf32>, !u8 -> tensor<1x16xf32>
  return %y4, %yn, %y8 : tensor<1x32xf32>, tensor<1x16xf32>, tensor<1x16xf32>
}

// CHECK-LABEL: func.func @f(
// CHECK: layout = "int4-rowtile16"
// CHECK: dense_resource<q.scales.rowtile16> : tensor<4x16xf32>
// CHECK: call @nibble_gemv_w4g128_t16_m1_n32_k256({{.*}}) : (tensor<1x256xf32>, tensor<4096xi8>, tensor<4x16xf32>,
// CHECK: layout = "code4-rowtile16"
// CHECK: call @nibble_gemv_lut{{[0-9a-f]+}}_g64_t16_m1_n16_k128(
// CHECK: layout = "uint8-coltile16"
// CHECK: dense_resource<u.zero_points.rowtile16> : tensor<2x16xf16>
// CHECK: call @nibble_gemv_u8g64zf16_sf16_t16_m1_n16_k128(
// CHECK: func.func @nibble_gemv_w4g128_t16_m1_n32_k256({{.*}} nibble.row_align = 16 : i64
// The integer codes' table, signed.
// CHECK: arith.constant dense<[0.000000e+00, 1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00, 5.000000e+00, 6.000000e+00, 7.000000e+00, -8.000000e+00, -7.000000e+00, -6.000000e+00, -5.000000e+00, -4.000000e+00, -3.000000e+00, -2.000000e+00, -1.000000e+00]> : vector<16xf32>
// CHECK: vector.bitcast {{.*}} : vector<64xi8> to vector<16xi32>
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.permvar.sf.512"
// CHECK: vector.fma
// CHECK: func.func @nibble_gemv_u8g64zf16_sf16_t16_m1_n16_k128(
// CHECK: arith.extui {{.*}} : vector<16xi8> to vector<16xi32>
// CHECK: arith.sitofp

// ZEN4-LABEL: nibble_gemv_w4g128_t16_m1_n32_k256:
// ZEN4: prefetchnta
// ZEN4: vpsrld $4, %zmm
// ZEN4: vperm{{d|ps}} %zmm
// ZEN4: vfmadd{{[0-9]+}}ps {{.*}}{1to16}, %zmm
// ZEN4-NOT: vcvtdq2ps
// ZEN4-LABEL: nibble_gemv_u8g64zf16_sf16_t16_m1_n16_k128:
// ZEN4: vpmovzxbd {{.*}}, %zmm
// ZEN4: vcvtdq2ps %zmm
// ZEN4: vfmadd{{[0-9]+}}ps {{.*}}{1to16}, %zmm

// V3IR: layout = "int4-interleave32"
// V3IR: call @nibble_gemv_w4g128_m1_n32_k256(
// V3IR: layout = "code4-interleave32"
// V3IR: layout = "uint8-coltile8"
// V3IR: dense_resource<u.scales.rowtile8> : tensor<4x8xf16>
// V3IR: call @nibble_gemv_u8g64zf16_sf16_t8_m1_n16_k128(

// AVX2-LABEL: nibble_gemv_u8g64zf16_sf16_t8_m1_n16_k128:
// AVX2: vpmovzxbd {{.*}}, %ymm
// AVX2: vcvtdq2ps %ymm
// AVX2: vfmadd{{[0-9]+}}ps {{.*}}%ymm

// NEON-LABEL: nibble_gemv_u8g64zf16_sf16_t4_m1_n16_k128:
// NEON: ushll
// NEON: scvtf v{{[0-9]+}}.4s
// NEON: fmla v{{[0-9]+}}.4s

// OFF-NOT: _t16
// OFF-NOT: rowtile
// OFF-NOT: coltile

// PAR: llvm.mlir.addressof @nibble_gemv_w4g128_t16_m1_n32_k256_rows
// PAR-NEXT: llvm.mlir.constant(16 : i64)
