// RUN: quant-opt %s --nibble-reference-to-llvm | mlir-runner -e main -entry-point-result=void -shared-libs=%runner_libs | FileCheck %s
//
// The reference lowering executed: quantize -> dequantize round trips with
// hand-computed results for an integer, a float and a lookup-table format,
// asymmetric zero points, E8M0 (MX) scales, a two-level (NVFP4-style)
// scheme, a packed constant and a W8A8 matmul.

func.func private @printMemrefF32(tensor<*xf32>)

!i4 = !nibble.qtensor<1x8, #nibble.scheme<#nibble.int<4, signed>, per_tensor, scale = f32>>
!u4 = !nibble.qtensor<1x8, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 4>, scale = f32, zero_point = i8>>
!fp4 = !nibble.qtensor<1x8, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 8>, scale = f8E8M0FNU>>
!nf4 = !nibble.qtensor<1x8, #nibble.scheme<#nibble.lut<nf4>, per_tensor, scale = f32>>
!nv = !nibble.qtensor<1x8, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 4>, scale = f32, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>>
!nvs = !nibble.qtensor<1x2, #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>
!w = !nibble.qtensor<2x4, #nibble.scheme<#nibble.int<4, signed>, per_channel<0>, scale = f32>>

func.func @print(%t: tensor<1x8xf32>) {
  %u = tensor.cast %t : tensor<1x8xf32> to tensor<*xf32>
  call @printMemrefF32(%u) : (tensor<*xf32>) -> ()
  return
}

func.func @main() {
  %x = arith.constant dense<[[0.26, -0.74, 1.25, -2.0, 3.9, 0.0, -0.25, 10.0]]> : tensor<1x8xf32>

  // int4, scale 0.5: x/0.5 = 0.52 -1.48 2.5 -4 7.8 0 -0.5 20 -> round half
  // even and saturate to [-8, 7] -> 1 -1 2 -4 7 0 -0 7.
  // CHECK: [0.5, -0.5, 1, -2, 3.5, 0, 0, 3.5]
  %s = arith.constant dense<0.5> : tensor<1x1xf32>
  %q = nibble.quantize %x scales(%s : tensor<1x1xf32>) : tensor<1x8xf32> -> !i4
  %d = nibble.dequantize %q scales(%s : tensor<1x1xf32>) : !i4 -> tensor<1x8xf32>
  call @print(%d) : (tensor<1x8xf32>) -> ()

  // uint4 with zero points, two groups of 4: scales 0.25 / 1.0, zp 8 / 3.
  // group 0: x/0.25 + 8 = 9.04 5.04 13 0 -> 9 5 13 0 -> (c-8)*0.25
  // group 1: x/1 + 3 = 6.9 3 2.75 13 -> 7 3 3 13 -> (c-3)*1
  // CHECK: [0.25, -0.75, 1.25, -2, 4, 0, 0, 10]
  %su = arith.constant dense<[[0.25, 1.0]]> : tensor<1x2xf32>
  %zu = arith.constant dense<[[8, 3]]> : tensor<1x2xi8>
  %qu = nibble.quantize %x scales(%su : tensor<1x2xf32>) zero_points(%zu : tensor<1x2xi8>) : tensor<1x8xf32> -> !u4
  %du = nibble.dequantize %qu scales(%su : tensor<1x2xf32>) zero_points(%zu : tensor<1x2xi8>) : !u4 -> tensor<1x8xf32>
  call @print(%du) : (tensor<1x8xf32>) -> ()

  // e2m1 with an E8M0 scale of 2^1 (code 128): x/2 = 0.13 -0.37 0.625 -1
  // 1.95 0 -0.125 5 -> nearest of {0, 0.5, 1, 1.5, 2, 3, 4, 6}: 0 -0.5 0.5
  // -1 2 0 -0 4 (0.625 is nearer 0.5; 5 ties between 4 (code 6) and 6
  // (code 7) and goes to the even code).
  // CHECK: [0, -1, 1, -2, 4, 0, -0, 8]
  %se = arith.constant dense<[[128]]> : tensor<1x1xi8>
  %se8 = arith.bitcast %se : tensor<1x1xi8> to tensor<1x1xf8E8M0FNU>
  %qe = nibble.quantize %x scales(%se8 : tensor<1x1xf8E8M0FNU>) : tensor<1x8xf32> -> !fp4
  %de = nibble.dequantize %qe scales(%se8 : tensor<1x1xf8E8M0FNU>) : !fp4 -> tensor<1x8xf32>
  call @print(%de) : (tensor<1x8xf32>) -> ()

  // NF4 with scale 10: x/10 = 0.026 -0.074 0.125 -0.2 0.39 0 -0.025 1
  // -> 0 -0.09105 0.16093 -0.18477 0.44071 (0.39 is 0.0507 from 0.44071 and
  // 0.0521 from 0.33792) 0 0 1.
  // CHECK: [0, -0.9105, 1.6093, -1.84773, 4.4071, 0, 0, 10]
  %s10 = arith.constant dense<10.0> : tensor<1x1xf32>
  %qn = nibble.quantize %x scales(%s10 : tensor<1x1xf32>) : tensor<1x8xf32> -> !nf4
  %dn = nibble.dequantize %qn scales(%s10 : tensor<1x1xf32>) : !nf4 -> tensor<1x8xf32>
  call @print(%dn) : (tensor<1x8xf32>) -> ()

  // Two-level: e2m1 elements with e4m3 scales [0.5, 2.0] that are themselves
  // quantized with an f32 scale of 0.25 (codes for 2 and 8).
  // group 0: x/0.5 = 0.52 -1.48 2.5 -4 -> 0.5 -1.5 2 -4 -> *0.5
  // group 1: x/2 = 1.95 0 -0.125 5 -> 2 0 -0 4 -> *2
  // CHECK: [0.25, -0.75, 1, -2, 4, 0, -0, 8]
  %sc = arith.constant dense<[[0.5, 2.0]]> : tensor<1x2xf32>
  %ss = arith.constant dense<0.25> : tensor<1x1xf32>
  %qsc = nibble.quantize %sc scales(%ss : tensor<1x1xf32>) : tensor<1x2xf32> -> !nvs
  %qv = nibble.quantize %x scales(%qsc : !nvs) scale_scales(%ss : tensor<1x1xf32>) : tensor<1x8xf32> -> !nv
  %dv = nibble.dequantize %qv scales(%qsc : !nvs) scale_scales(%ss : tensor<1x1xf32>) : !nv -> tensor<1x8xf32>
  call @print(%dv) : (tensor<1x8xf32>) -> ()

  // Packed constant: bytes 0x21 0xF3 0x7E 0x88 hold int4 codes (low nibble
  // first) 1 2 3 -1 -2 7 -8 -8; per-channel scales 1 and 0.5.
  // y = x[0:4] . w -> row 0: 0.26*1 - 0.74*2 + 1.25*3 - 2.0*-1 = 4.53
  //                   row 1: 0.5 * (0.26*-2 - 0.74*7 + 1.25*-8 - 2.0*-8) = 0.15
  // CHECK: [4.53, 0.15]
  %wb = nibble.constant dense<[33, -13, 126, -120]> : tensor<4xi8> -> !w
  %ws = arith.constant dense<[[1.0], [0.5]]> : tensor<2x1xf32>
  %x4 = tensor.extract_slice %x[0, 0] [1, 4] [1, 1] : tensor<1x8xf32> to tensor<1x4xf32>
  %y = nibble.matmul %x4, %wb scales(%ws : tensor<2x1xf32>) : tensor<1x4xf32>, !w -> tensor<1x2xf32>
  %yu = tensor.cast %y : tensor<1x2xf32> to tensor<*xf32>
  call @printMemrefF32(%yu) : (tensor<*xf32>) -> ()

  // Static per-tensor int8 activations with act_scale 0.25: x4 / 0.25 =
  // 1.04 -2.96 5 -8 -> 1 -3 5 -8 -> 0.25 -0.75 1.25 -2.
  // row 0: 0.25 - 1.5 + 3.75 + 2 = 4.5; row 1: 0.5 * (-0.5 - 5.25 - 10 + 16)
  // = 0.125. (A per-token scale, 2 / 127, would give other values.)
  // CHECK: [4.5, 0.125]
  %ys = nibble.matmul %x4, %wb scales(%ws : tensor<2x1xf32>) {act_format = #nibble.int<8, signed>, act_scale = 0.25 : f32} : tensor<1x4xf32>, !w -> tensor<1x2xf32>
  %ysu = tensor.cast %ys : tensor<1x2xf32> to tensor<*xf32>
  call @printMemrefF32(%ysu) : (tensor<*xf32>) -> ()
  return
}
