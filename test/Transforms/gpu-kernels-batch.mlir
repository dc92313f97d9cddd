// Small-batch (M = 8, 16, 32 activation rows) NVIDIA kernels: one warp per
// output row keeps M f32 accumulators and decodes each 128-bit chunk of
// codes once for all M rows. gpu-kernels-ptxas.test assembles them and
// checks that even M = 32 does not spill.
// RUN: quant-opt %s --nibble-generate-gpu-kernels | FileCheck %s
// CHECK: gpu.func @nibble_w4a16_m8_n4096_k4096_g128
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK: gpu.func @nibble_w4a16_m16_n4096_k4096_g128
// CHECK: gpu.func @nibble_w4abf16_m32_n4096_k4096_g128
// CHECK: gpu.func @nibble_we4m3a16_m8_n4096_k4096_g4096

!w4 = !nibble.qtensor<4096x4096, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32>>
!e4 = !nibble.qtensor<4096x4096, #nibble.scheme<#nibble.float<e4m3fn>, per_channel<0>, scale = f32>>

func.func @gemm(%x8: tensor<8x4096xf16>, %x16: tensor<16x4096xf16>, %x32: tensor<32x4096xbf16>,
                %w4: !w4, %s4: tensor<4096x32xf32>, %we: !e4, %se: tensor<4096x1xf32>)
    -> (tensor<8x4096xf32>, tensor<16x4096xf32>, tensor<32x4096xf32>, tensor<8x4096xf32>) {
  %a = nibble.matmul %x8, %w4 scales(%s4 : tensor<4096x32xf32>) : tensor<8x4096xf16>, !w4 -> tensor<8x4096xf32>
  %b = nibble.matmul %x16, %w4 scales(%s4 : tensor<4096x32xf32>) : tensor<16x4096xf16>, !w4 -> tensor<16x4096xf32>
  %c = nibble.matmul %x32, %w4 scales(%s4 : tensor<4096x32xf32>) : tensor<32x4096xbf16>, !w4 -> tensor<32x4096xf32>
  %d = nibble.matmul %x8, %we scales(%se : tensor<4096x1xf32>) : tensor<8x4096xf16>, !e4 -> tensor<8x4096xf32>
  return %a, %b, %c, %d : tensor<8x4096xf32>, tensor<16x4096xf32>, tensor<32x4096xf32>, tensor<8x4096xf32>
}
