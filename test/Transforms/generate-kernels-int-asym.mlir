// Asymmetric integer-dot kernels: uint4 / uint8 weights, with or without
// zero points, times int8 activations. vpdpbusd reads the weights as u8,
// so unsigned codes are stored as they are (no offset) and the zero point
// joins the per-row correction: y = xs * sum_g s (dot - (offset + zp) xsum).
// NEON's sdot reads them as s8: uint4 codes fit, uint8 codes are stored
// minus 128 (layout "-offset") and the kernel adds 128 back. Scales and
// zero points stored narrow (f16 scales, i32 zero points: GPTQ-style
// checkpoints) are widened where the kernel reads them; 8-bit scale codes
// (E8M0, MX-style) index a table of their values.
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ZEN4
// RUN: quant-opt %s --nibble-generate-kernels="target=aarch64:neoverse-n1 row-tile=false" | FileCheck %s --check-prefix=NEON

!u4 = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 128>, scale = f32, zero_point = f32>>
!u8 = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<8, unsigned>, per_channel<0>, scale = f32>>
!u4h = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 128>, scale = f16, zero_point = i32>>
!w4e = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f8E8M0FNU>>

func.func @f(%x: tensor<1x256xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>) {
  %w4 = nibble.constant dense<17> : tensor<1024xi8> -> !u4
  %s4 = arith.constant dense<0.5> : tensor<8x2xf32>
  %z4 = arith.constant dense<8.0> : tensor<8x2xf32>
  %y4 = nibble.matmul %x, %w4 scales(%s4 : tensor<8x2xf32>) zero_points(%z4 : tensor<8x2xf32>) {act_format = #nibble.int<8, signed>} : tensor<1x256xf32>, !u4 -> tensor<1x8xf32>
  %w8 = nibble.constant dense<-3> : tensor<2048xi8> -> !u8
  %s8 = arith.constant dense<0.25> : tensor<8x1xf32>
  %y8 = nibble.matmul %x, %w8 scales(%s8 : tensor<8x1xf32>) {act_format = #nibble.int<8, signed>} : tensor<1x256xf32>, !u8 -> tensor<1x8xf32>
  %wh = nibble.constant dense<33> : tensor<1024xi8> -> !u4h
  %sh = arith.constant dense<0.5> : tensor<8x2xf16>
  %zh = arith.constant dense<7> : tensor<8x2xi32>
  %yh = nibble.matmul %x, %wh scales(%sh : tensor<8x2xf16>) zero_points(%zh : tensor<8x2xi32>) {act_format = #nibble.int<8, signed>} : tensor<1x256xf32>, !u4h -> tensor<1x8xf32>
  %we = nibble.constant dense<33> : tensor<1024xi8> -> !w4e
  %se = arith.constant dense<0.5> : tensor<8x2xf8E8M0FNU>
  %ye = nibble.matmul %x, %we scales(%se : tensor<8x2xf8E8M0FNU>) {act_format = #nibble.int<8, signed>} : tensor<1x256xf32>, !w4e -> tensor<1x8xf32>
  return %y4, %y8, %yh, %ye : tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>
}

// CHECK: layout = "uint4-interleave128">}
// CHECK: call @nibble_gemv_u4a8g128z_m1_n8_k256(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x256xi8>, tensor<1xf32>, tensor<1x2xf32>, tensor<1024xi8>, tensor<8x2xf32>, tensor<8x2xf32>, tensor<1x8xf32>, index, index)
// CHECK: layout = "uint8-dense">}
// CHECK: call @nibble_gemv_u8a8g256_m1_n8_k256(
// CHECK: call @nibble_gemv_u4a8g128zi32_sf16_m1_n8_k256({{.*}}) : (tensor<1x256xi8>, tensor<1xf32>, tensor<1x2xf32>, tensor<1024xi8>, tensor<8x2xf16>, tensor<8x2xi32>, tensor<1x8xf32>, index, index)
// CHECK: %[[E8:.*]] = arith.constant dense<{{.*}}> : tensor<256xf32>
// CHECK: call @nibble_gemv_w4a8g128_s8t_m1_n8_k256({{.*}}, %[[E8]], {{.*}}) : (tensor<1x256xi8>, tensor<1xf32>, tensor<1x2xf32>, tensor<1024xi8>, tensor<8x2xi8>, tensor<256xf32>, tensor<1x8xf32>, index, index)
// CHECK-NOT: nibble.matmul
// The row's correction: scales times (offset 0 + zero points), dotted with
// the group sums.
// CHECK-LABEL: func.func @nibble_gemv_u4a8g128z_m1_n8_k256(
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// CHECK: %[[S:.*]] = vector.transfer_read %arg4
// CHECK: %[[Z:.*]] = vector.transfer_read %arg5
// CHECK: %[[O:.*]] = arith.addf %{{.*}}, %[[Z]] : vector<2xf32>
// CHECK: arith.mulf %[[S]], %[[O]] : vector<2xf32>
// CHECK-LABEL: func.func @nibble_gemv_u4a8g128zi32_sf16_m1_n8_k256(
// CHECK: arith.extf {{.*}} : f16 to f32
// CHECK: %[[SH:.*]] = vector.transfer_read %arg4{{.*}} : tensor<8x2xf16>, vector<2xf16>
// CHECK: %[[SW:.*]] = arith.extf %[[SH]] : vector<2xf16> to vector<2xf32>
// CHECK: %[[ZI:.*]] = vector.transfer_read %arg5{{.*}} : tensor<8x2xi32>, vector<2xi32>
// CHECK: arith.sitofp %[[ZI]] : vector<2xi32> to vector<2xf32>
// The scale code, read unsigned, indexes the table (per group: no vector
// read of the row's scales).
// CHECK-LABEL: func.func @nibble_gemv_w4a8g128_s8t_m1_n8_k256(
// CHECK: %[[C:.*]] = tensor.extract %arg4[{{.*}}] : tensor<8x2xi8>
// CHECK: %[[W:.*]] = arith.extui %[[C]] : i8 to i32
// CHECK: %[[I:.*]] = arith.index_castui %[[W]] : i32 to index
// CHECK: tensor.extract %arg5[%[[I]]] : tensor<256xf32>
// CHECK-NOT: vector.transfer_read %arg4
// CHECK: return

// ZEN4-LABEL: nibble_gemv_u4a8g128z_m1_n8_k256:
// ZEN4: vpdpbusd {{.*}}zmm
// ZEN4-LABEL: nibble_gemv_u8a8g256_m1_n8_k256:
// ZEN4: vpdpbusd {{.*}}zmm
// ZEN4-LABEL: nibble_gemv_u4a8g128zi32_sf16_m1_n8_k256:
// ZEN4: vpdpbusd {{.*}}zmm

// NEON: layout = "uint4-interleave32">}
// NEON: layout = "uint8-dense-offset">}
// NEON-LABEL: func.func @nibble_gemv_u8a8g256_m1_n8_k256(
// NEON: llvm.call_intrinsic "llvm.aarch64.neon.sdot.v4i32.v16i8"
// NEON: arith.constant dense<-1.280000e+02> : vector<1xf32>
