// Generated weight-only kernels: the IR the generator emits, then the
// machine code LLVM makes of it for named targets (the target decides the
// vector registers; the generator checks for vector FMA first).
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ZEN4
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=x86-64-v3" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=x86-64-v3 | FileCheck %s --check-prefix=AVX2
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=aarch64" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=aarch64-unknown-linux-gnu | FileCheck %s --check-prefix=NEON
// RUN: quant-opt %s --nibble-generate-kernels=target=x86-64 2>&1 | FileCheck %s --check-prefix=NOFMA
// The row range each kernel records (nibble.row_range) is where its
// n0/n1 land after convert-func-to-llvm: every call is split.
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" \
// RUN:   --nibble-parallelize-kernel-calls="min-work=1 align=1" | FileCheck %s --check-prefix=PAR
// PAR-COUNT-3: llvm.call @__nibble_parallel_for(
// RUN: not quant-opt %s --nibble-generate-kernels=target=pentium9000 2>&1 | FileCheck %s --check-prefix=BAD

!w4 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f32>>
!w8 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<8, signed>, per_channel<0>, scale = f32>>
!u4 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, scale = f32, zero_point = f32>>

func.func @f(%x: tensor<1x64xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>) {
  %w4 = nibble.constant dense<17> : tensor<256xi8> -> !w4
  %s4 = arith.constant dense<0.5> : tensor<8x2xf32>
  %y4 = nibble.matmul %x, %w4 scales(%s4 : tensor<8x2xf32>) {nibble.linear = "q"} : tensor<1x64xf32>, !w4 -> tensor<1x8xf32>
  %w8 = nibble.constant dense<-3> : tensor<512xi8> -> !w8
  %s8 = arith.constant dense<0.25> : tensor<8x1xf32>
  %y8 = nibble.matmul %x, %w8 scales(%s8 : tensor<8x1xf32>) : tensor<1x64xf32>, !w8 -> tensor<1x8xf32>
  // Zero points: the kernel subtracts s * zp * (group sum of x).
  %u4 = nibble.constant dense<17> : tensor<256xi8> -> !u4
  %z4 = arith.constant dense<8.0> : tensor<8x2xf32>
  %yu = nibble.matmul %x, %u4 scales(%s4 : tensor<8x2xf32>) zero_points(%z4 : tensor<8x2xf32>) : tensor<1x64xf32>, !u4 -> tensor<1x8xf32>
  return %y4, %y8, %yu : tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>
}

// CHECK: module attributes {nibble.target = "x86_64-unknown-linux-gnu znver4"}
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f32, layout = "int4-interleave32">} dense_resource<q.packed> : tensor<256xi8>
// CHECK: call @nibble_gemv_w4g32_m1_n8_k64(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.int<8, signed>, per_channel<0>, scale = f32, layout = "int8-dense">} dense_resource<weights.packed> : tensor<512xi8>
// CHECK: call @nibble_gemv_w8g64_m1_n8_k64
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, scale = f32, zero_point = f32, layout = "uint4-interleave32">}
// CHECK: call @nibble_gemv_u4g32z_m1_n8_k64(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-NOT: nibble.matmul
// CHECK: func.func @nibble_gemv_w4g32_m1_n8_k64(%{{.*}}: tensor<1x64xf32>, %{{.*}}: tensor<256xi8>, %{{.*}}: tensor<8x2xf32>, %{{.*}}: tensor<1x8xf32> {bufferization.writable = true}, %{{.*}}: index, %{{.*}}: index) -> tensor<1x8xf32>
// CHECK: vector.transfer_read {{.*}} : tensor<256xi8>, vector<16xi8>
// CHECK: arith.extsi {{.*}} : vector<16xi8> to vector<16xi32>
// CHECK: arith.shrsi
// CHECK: arith.sitofp {{.*}} : vector<16xi32> to vector<16xf32>
// CHECK: vector.fma
// CHECK: vector.reduction <add>, {{.*}} fastmath<reassoc>

// ZEN4-LABEL: nibble_gemv_w4g32_m1_n8_k64:
// ZEN4: vcvtdq2ps {{.*}}zmm
// ZEN4: vfmadd{{[0-9]+}}ps {{.*}}zmm

// AVX2-LABEL: nibble_gemv_w4g32_m1_n8_k64:
// AVX2-NOT: zmm
// AVX2: vfmadd{{[0-9]+}}ps {{.*}}ymm
// AVX2-NOT: zmm
// AVX2: .Lfunc_end

// NEON-LABEL: nibble_gemv_w4g32_m1_n8_k64:
// NEON: scvtf v{{[0-9]+}}.4s
// NEON: fmla v{{[0-9]+}}.4s

// NOFMA: remark: target x86_64-unknown-linux-gnu x86-64 has no vector FMA: nibble.matmul keeps the reference lowering
// NOFMA-NOT: call @nibble_gemv
// BAD: error: target 'pentium9000': unknown CPU 'pentium9000'
