// fp8 weights and bf16 activations in the NVIDIA GEMV kernels. fp8 decodes
// with cvt.rn.f16x2.e4m3x2 / .e5m2x2 on sm_89 and later; on sm_80 (where
// ptxas rejects those) two bytes at a time become f16 bit patterns with
// shifts and masks (the constants are checked against every code in
// test/unit/Formats/PackingTest.cpp), and e4m3fn's scale is multiplied by
// 2^8. bf16 activations widen with cvt.f32.bf16. The nibble-to-ptx pipeline
// generates and lowers for one chip; kernels generated for one chip are
// not lowered for another.
// RUN: rm -f %t.bad.ptx %t.sm89.ptx
// RUN: quant-opt %s --nibble-generate-gpu-kernels=chip=sm_90 | FileCheck %s --check-prefix=HW
// RUN: quant-opt %s --nibble-generate-gpu-kernels=chip=sm_80 | FileCheck %s --check-prefix=SW
// RUN: quant-opt %s --nibble-to-ptx="chip=sm_90 output=%t.sm90.ptx" -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX90 < %t.sm90.ptx
// RUN: quant-opt %s --nibble-to-ptx="chip=sm_80 output=%t.sm80.ptx" -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX80 < %t.sm80.ptx
// RUN: not quant-opt %s --nibble-generate-gpu-kernels=chip=sm_90 --nibble-gpu-to-ptx="chip=sm_80 output=%t.bad.ptx" -o /dev/null 2>&1 | FileCheck %s --check-prefix=MISMATCH
// RUN: not ls %t.bad.ptx
// RUN: not quant-opt %s --nibble-generate-gpu-kernels=chip=sm90 -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADCHIP
// sm_89 converts in hardware too, with PTX 8.1; older PTX is refused
// before LLVM's backend would abort on the intrinsic.
// RUN: not quant-opt %s --nibble-to-ptx="chip=sm_89 output=%t.sm89.ptx" -o /dev/null 2>&1 | FileCheck %s --check-prefix=PTXVER
// RUN: not ls %t.sm89.ptx
// RUN: quant-opt %s --nibble-to-ptx="chip=sm_89 features=+ptx81 output=%t.sm89.ptx" -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX89 < %t.sm89.ptx

!e4 = !nibble.qtensor<256x512, #nibble.scheme<#nibble.float<e4m3fn>, per_channel<0>, scale = f32>>
!e5 = !nibble.qtensor<256x512, #nibble.scheme<#nibble.float<e5m2>, group<1, 128>, scale = f32>>
!w4 = !nibble.qtensor<256x512, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32>>

// HW: gpu.module @nibble_gpu attributes {nibble.chip = "sm_90"}
// HW: gpu.func @nibble_we4m3a16_m1_n256_k512_g512
// HW-SAME: nibble.weight_layout = "nvptx.bytes.lsb-first.i32"
// HW: vector.load {{.*}} : memref<256x128xi32>, vector<4xi32>
// HW-NOT: arith.mulf
// HW: nvvm.convert.f8x2.to.f16x2 {{.*}} : vector<2xi8>(f8E4M3FN) -> vector<2xf16>
// HW: vector.load {{.*}} {alignment = 16 : i64} : memref<1x512xf16>, vector<8xf16>
// HW: gpu.func @nibble_we5m2abf16_m4_n256_k512_g128
// HW: nvvm.convert.f8x2.to.f16x2 {{.*}} : vector<2xi8>(f8E5M2) -> vector<2xf16>
// HW: vector.load {{.*}} : memref<4x512xbf16>, vector<8xbf16>
// HW: arith.extf {{.*}} : bf16 to f32
// HW: gpu.func @nibble_w4abf16_m1_n256_k512_g128

// SW: gpu.module @nibble_gpu attributes {nibble.chip = "sm_80"}
// SW: gpu.func @nibble_we4m3a16_m1_n256_k512_g512
// SW-NOT: nvvm.convert
// The scale times 2^8, then sign and exponent/mantissa masks.
// SW: arith.constant 2.560000e+02 : f32
// SW: arith.mulf
// SW-DAG: arith.constant -2147450880 : i32
// SW-DAG: arith.constant 1065369472 : i32
// SW: llvm.bitcast {{.*}} : i32 to vector<2xf16>
// SW: gpu.func @nibble_we5m2abf16_m4_n256_k512_g128
// SW-NOT: arith.constant 2.560000e+02
// SW: arith.constant -16711936 : i32
// SW: llvm.bitcast {{.*}} : i32 to vector<2xf16>

// PTX90: .target sm_90
// PTX90: .entry nibble_we4m3a16_m1_n256_k512_g512
// PTX90: ld.global.v4.b32
// PTX90: cvt.rn.f16x2.e4m3x2
// PTX90: fma.rn.f32
// PTX90: shfl.sync.bfly.b32
// PTX90: .entry nibble_we5m2abf16_m4_n256_k512_g128
// PTX90: cvt.rn.f16x2.e5m2x2
// PTX90: cvt.f32.bf16

// PTX80: .target sm_80
// PTX80-NOT: e4m3x2
// PTX80-NOT: e5m2x2
// PTX80: cvt.f32.f16
// PTX80: cvt.f32.bf16

// PTX89: .version 8.1
// PTX89: .target sm_89
// PTX89: cvt.rn.f16x2.e4m3x2

// PTXVER: error: kernel nibble_we4m3a16_m1_n256_k512_g512 converts fp8 with cvt.rn.f16x2, which needs PTX 8.1 on sm_89 (features=+ptx81 or later; got '+ptx80')
// MISMATCH: error: kernels were generated for sm_90 but are being lowered for sm_80 (run nibble-generate-gpu-kernels with chip=sm_80)
// BADCHIP: error: chip 'sm90': expected sm_XY (e.g. sm_80, sm_90, sm_90a)

func.func @gemv(%x: tensor<1x512xf16>, %w: !e4, %s: tensor<256x1xf32>,
                %xb: tensor<4x512xbf16>, %w5: !e5, %s5: tensor<256x4xf32>,
                %x1: tensor<1x512xbf16>, %w4: !w4)
    -> (tensor<1x256xf32>, tensor<4x256xf32>, tensor<1x256xf32>) {
  %y = nibble.matmul %x, %w scales(%s : tensor<256x1xf32>) : tensor<1x512xf16>, !e4 -> tensor<1x256xf32>
  %y5 = nibble.matmul %xb, %w5 scales(%s5 : tensor<256x4xf32>) : tensor<4x512xbf16>, !e5 -> tensor<4x256xf32>
  %y4 = nibble.matmul %x1, %w4 scales(%s5 : tensor<256x4xf32>) : tensor<1x512xbf16>, !w4 -> tensor<1x256xf32>
  return %y, %y5, %y4 : tensor<1x256xf32>, tensor<4x256xf32>, tensor<1x256xf32>
}
