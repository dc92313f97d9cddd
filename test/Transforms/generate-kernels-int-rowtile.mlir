// Row-tiled integer-dot kernels: where N is a multiple of the dot
// product's i32 lanes (16 on AVX-512 VNNI, 8 on AVX-VNNI, 4 on NEON sdot),
// the group a multiple of 16 and the zero points constants, each vector
// load holds 4 bytes of each of lanes rows, and one dot product against
// four activations broadcast to every lane advances them all. Scales and
// zero points become constants tiled alike ([N/lanes * K/G, lanes]); 8-bit
// scale codes are looked up with a gather. Groups of 32 codes, too narrow
// for the one-row zmm kernel's 128-code block, are served. Row ranges are
// whole tiles (nibble.row_align).
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" \
// RUN:   --nibble-parallelize-kernel-calls="min-work=1 align=1" | FileCheck %s --check-prefix=PAR
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ZEN4
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=alderlake" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=alderlake | FileCheck %s --check-prefix=AVXVNNI
// RUN: quant-opt %s --nibble-generate-kernels=target=aarch64:neoverse-n1 | FileCheck %s --check-prefix=NEON-IR
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=aarch64:neoverse-n1" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=aarch64-unknown-linux-gnu -mcpu=neoverse-n1 | FileCheck %s --check-prefix=SDOT
// RUN: quant-opt %s --nibble-generate-kernels="target=znver4 row-tile=false" 2>&1 | FileCheck %s --check-prefix=OFF

!g32 = !nibble.qtensor<32x256, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f32>>
!u4 = !nibble.qtensor<32x256, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 64>, scale = f16, zero_point = i8>>
!mx = !nibble.qtensor<32x256, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f8E8M0FNU>>

func.func @f(%x: tensor<1x256xf32>) -> (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>) {
  %w = nibble.constant dense<17> : tensor<4096xi8> -> !g32
  %s = arith.constant dense<0.5> : tensor<32x8xf32>
  %y = nibble.matmul %x, %w scales(%s : tensor<32x8xf32>) {act_format = #nibble.int<8, signed>, nibble.linear = "q"} : tensor<1x256xf32>, !g32 -> tensor<1x32xf32>
  %wu = nibble.constant dense<-91> : tensor<4096xi8> -> !u4
  %su = arith.constant dense<0.25> : tensor<32x4xf16>
  %zu = arith.constant dense<7> : tensor<32x4xi8>
  %yu = nibble.matmul %x, %wu scales(%su : tensor<32x4xf16>) zero_points(%zu : tensor<32x4xi8>) {act_format = #nibble.int<8, signed>, nibble.linear = "u"} : tensor<1x256xf32>, !u4 -> tensor<1x32xf32>
  %wm = nibble.constant dense<33> : tensor<4096xi8> -> !mx
  %sm = arith.constant dense<1.0> : tensor<32x2xf8E8M0FNU>
  %ym = nibble.matmul %x, %wm scales(%sm : tensor<32x2xf8E8M0FNU>) {act_format = #nibble.int<8, signed>, nibble.linear = "m"} : tensor<1x256xf32>, !mx -> tensor<1x32xf32>
  return %y, %yu, %ym : tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>
}

// CHECK-LABEL: func.func @f
// CHECK-DAG: arith.constant dense_resource<q.scales.rowtile16> : tensor<16x16xf32>
// CHECK-DAG: layout = "int4-rowtile16-offset">} dense_resource<q.packed> : tensor<4096xi8>
// CHECK: call @nibble_gemv_w4a8g32_t16_m1_n32_k256({{.*}}) : (tensor<1x256xi8>, tensor<1xf32>, tensor<1x8xf32>, tensor<4096xi8>, tensor<16x16xf32>, tensor<1x32xf32>, index, index)
// CHECK-DAG: arith.constant dense_resource<u.scales.rowtile16> : tensor<8x16xf16>
// CHECK-DAG: arith.constant dense_resource<u.zero_points.rowtile16> : tensor<8x16xi8>
// CHECK-DAG: layout = "uint4-rowtile16">} dense_resource<u.packed>
// CHECK: call @nibble_gemv_u4a8g64zi8_sf16_t16_m1_n32_k256({{.*}}) : ({{.*}}, tensor<4096xi8>, tensor<8x16xf16>, tensor<8x16xi8>, tensor<1x32xf32>, index, index)
// CHECK: arith.constant dense_resource<m.scale_codes.rowtile16> : tensor<4x16xi8>
// CHECK: call @nibble_gemv_w4a8g128_s8t_t16_m1_n32_k256({{.*}}) : ({{.*}}, tensor<4x16xi8>, tensor<256xf32>, tensor<1x32xf32>, index, index)
// CHECK: func.func @nibble_gemv_w4a8g32_t16_m1_n32_k256({{.*}}) -> tensor<1x32xf32> attributes {{{.*}}nibble.row_align = 16 : i64
// Four activation codes, as one i32 broadcast to every lane.
// CHECK: vector.bitcast {{.*}} : vector<4xi8> to vector<1xi32>
// CHECK: vector.broadcast {{.*}} : i32 to vector<16xi32>
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// The tile's scales: one vector per group.
// CHECK: vector.transfer_read {{.*}} : tensor<16x16xf32>, vector<16xf32>
// CHECK: func.func @nibble_gemv_u4a8g64zi8_sf16_t16_m1_n32_k256(
// CHECK: vector.transfer_read {{.*}} : tensor<8x16xf16>, vector<16xf16>
// CHECK: vector.transfer_read {{.*}} : tensor<8x16xi8>, vector<16xi8>
// CHECK: func.func @nibble_gemv_w4a8g128_s8t_t16_m1_n32_k256(
// CHECK: vector.gather {{.*}} : tensor<256xf32>, vector<16xi32>, vector<16xi1>, vector<16xf32> into vector<16xf32>

// PAR: %[[T:[0-9]+]] = llvm.mlir.addressof @nibble_gemv_w4a8g32_t16_m1_n32_k256_rows
// PAR-NEXT: %[[A:[0-9]+]] = llvm.mlir.constant(16 : i64)
// PAR-NEXT: llvm.call @__nibble_parallel_for(%[[T]], %{{[0-9]+}}, %{{[0-9]+}}, %[[A]])

// The dot product takes the broadcast activations straight from memory.
// ZEN4-LABEL: nibble_gemv_w4a8g32_t16_m1_n32_k256:
// ZEN4: vpdpbusd {{.*}}{1to16}, %zmm{{[0-9]+}}, %zmm{{[0-9]+}}
// ZEN4: .Lfunc_end
// ZEN4-LABEL: nibble_gemv_w4a8g128_s8t_t16_m1_n32_k256:
// ZEN4: vgatherdps
// ZEN4-NOT: vpdpbssd

// AVXVNNI-LABEL: nibble_gemv_w4a8g32_t8_m1_n32_k256:
// AVXVNNI-NOT: zmm
// AVXVNNI: {vex} vpdpbusd {{.*}}ymm
// AVXVNNI: .Lfunc_end

// NEON-IR: layout = "int4-rowtile4">}
// NEON-IR: call @nibble_gemv_w4a8g32_t4_m1_n32_k256(
// SDOT-LABEL: nibble_gemv_w4a8g32_t4_m1_n32_k256:
// The broadcast word becomes sdot's by-element form.
// SDOT: sdot v{{[0-9]+}}.4s, v{{[0-9]+}}.16b, v{{[0-9]+}}.4b[0]

// With row-tile=false, g32 and g64 are too narrow for the one-row zmm
// kernel; g128 takes it.
// OFF: remark: group 32 is not a multiple of the 128-code block of the one-row integer kernel on this target (row tiling is off): reference lowering
// OFF: remark: group 64 is not
// OFF: call @nibble_gemv_w4a8g128_s8t_m1_n32_k256(
