// NVIDIA GEMV kernels generated from nibble IR (no GPU or CUDA needed):
// the gpu dialect kernel, and the PTX that LLVM's NVPTX backend makes of it
// for sm_80 and sm_90 (128-bit code loads, f32 FMAs, warp shuffles). The
// PTX is assembled by ptxas in gpu-kernels-ptxas.test.
// RUN: quant-opt %s --nibble-generate-gpu-kernels 2>&1 | FileCheck %s
// RUN: quant-opt %s --nibble-generate-gpu-kernels --nibble-gpu-to-ptx="chip=sm_90 output=%t.sm90.ptx" -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX < %t.sm90.ptx
// RUN: quant-opt %s --nibble-generate-gpu-kernels=chip=sm_80 --nibble-gpu-to-ptx="chip=sm_80 output=%t.sm80.ptx" -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX80 < %t.sm80.ptx
// RUN: not quant-opt %s --nibble-gpu-to-ptx="chip=sm_90" -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOOUT
// RUN: not quant-opt %s --nibble-gpu-to-ptx="chip=sm_90 output=%t.none.ptx" -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOMOD
// RUN: not ls %t.none.ptx

!w4 = !nibble.qtensor<4096x4096, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32>>
!w8 = !nibble.qtensor<512x256, #nibble.scheme<#nibble.int<8, signed>, per_channel<0>, scale = f32>>
!w3 = !nibble.qtensor<64x64, #nibble.scheme<#nibble.int<3, signed>, group<1, 32>, scale = f32>>
!wz = !nibble.qtensor<64x64, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, scale = f32, zero_point = f32>>

// CHECK: remark: no GPU kernel: weights are not int4 / int8 signed or fp8 e4m3fn / e5m2
// CHECK: remark: no GPU kernel: weights are not int4 / int8 signed or fp8 e4m3fn / e5m2
// CHECK: module attributes {gpu.container_module}
// CHECK: nibble.matmul {{.*}} {nibble.gpu_kernel = @nibble_gpu::@nibble_w4a16_m1_n4096_k4096_g128}
// CHECK: nibble.matmul {{.*}} {nibble.gpu_kernel = @nibble_gpu::@nibble_w8a32_m4_n512_k256_g256}
// CHECK: gpu.module @nibble_gpu attributes {nibble.chip = "sm_90"}
// CHECK: gpu.func @nibble_w4a16_m1_n4096_k4096_g128(%{{.*}}: memref<1x4096xf16>, %{{.*}}: memref<4096x512xi32>, %{{.*}}: memref<4096x32xf32>, %{{.*}}: memref<1x4096xf32>) kernel
// CHECK-SAME: known_block_size = array<i32: 128, 1, 1>, nibble.grid = array<i64: 1024, 1, 1>, nibble.weight_layout = "nvptx.offset-binary.lsb-first.i32"
// The magic number 2^23 and the offset-binary bias 2^23 + 8.
// CHECK: vector.load {{.*}} {alignment = 16 : i64} : memref<4096x512xi32>, vector<4xi32>
// CHECK: arith.constant 1258291200 : i32
// CHECK: arith.constant 0x4B000008 : f32
// CHECK: llvm.intr.fma
// CHECK: gpu.shuffle  xor
// CHECK: gpu.func @nibble_w8a32_m4_n512_k256_g256
// CHECK: arith.constant 0x4B000080 : f32

// PTX: .target sm_90
// PTX: .entry nibble_w4a16_m1_n4096_k4096_g128
// PTX: .maxntid 128, 1, 1
// PTX: ld.global.v4.b32
// PTX: fma.rn.f32
// PTX: shfl.sync.bfly.b32
// PTX: .entry nibble_w8a32_m4_n512_k256_g256
// PTX80: .target sm_80

// NOOUT: error: nibble-gpu-to-ptx needs output=FILE
// NOMOD: error: no gpu.module to lower (run nibble-generate-gpu-kernels first)

func.func @gemv(%x: tensor<1x4096xf16>, %w: !w4, %s: tensor<4096x32xf32>,
                %x8: tensor<4x256xf32>, %w8: !w8, %s8: tensor<512x1xf32>,
                %x3: tensor<1x64xf32>, %w3: !w3, %s3: tensor<64x2xf32>,
                %wz: !wz, %z: tensor<64x2xf32>)
    -> (tensor<1x4096xf32>, tensor<4x512xf32>, tensor<1x64xf32>, tensor<1x64xf32>) {
  %y = nibble.matmul %x, %w scales(%s : tensor<4096x32xf32>) : tensor<1x4096xf16>, !w4 -> tensor<1x4096xf32>
  %y8 = nibble.matmul %x8, %w8 scales(%s8 : tensor<512x1xf32>) : tensor<4x256xf32>, !w8 -> tensor<4x512xf32>
  %y3 = nibble.matmul %x3, %w3 scales(%s3 : tensor<64x2xf32>) : tensor<1x64xf32>, !w3 -> tensor<1x64xf32>
  %yz = nibble.matmul %x3, %wz scales(%s3 : tensor<64x2xf32>) zero_points(%z : tensor<64x2xf32>) : tensor<1x64xf32>, !wz -> tensor<1x64xf32>
  return %y, %y8, %y3, %yz : tensor<1x4096xf32>, tensor<4x512xf32>, tensor<1x64xf32>, tensor<1x64xf32>
}
