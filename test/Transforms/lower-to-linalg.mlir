// RUN: quant-opt %s --nibble-lower-to-linalg --split-input-file --verify-diagnostics | FileCheck %s

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>>

// Function boundaries carry codes as one i8 per element.
// CHECK-LABEL: func.func @dequantize
// CHECK-SAME: (%[[Q:.*]]: tensor<4x64xi8>, %[[S:.*]]: tensor<4x2xf16>) -> tensor<4x64xf32>
// The decode table of int4 has all 16 codes.
// CHECK: %[[TABLE:.*]] = arith.constant dense<[0.000000e+00, 1.000000e+00, {{.*}}, -1.000000e+00]> : tensor<16xf32>
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[Q]] : tensor<4x64xi8>)
// CHECK: arith.index_castui
// CHECK: tensor.extract %[[TABLE]]
// Group index = column / 32.
// CHECK: arith.divui %{{.*}}, %c32
// CHECK: tensor.extract %[[S]]
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: arith.mulf
// CHECK-NOT: nibble.
func.func @dequantize(%q: !q, %s: tensor<4x2xf16>) -> tensor<4x64xf32> {
  %d = nibble.dequantize %q scales(%s : tensor<4x2xf16>) : !q -> tensor<4x64xf32>
  return %d : tensor<4x64xf32>
}

// -----

!q = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, unsigned>, per_channel<0>, zero_point = i8>>

// Encode: 15 rounding thresholds searched in 4 steps (8, 4, 2, 1). A
// threshold is the smallest float that rounds up: 0.5 ties to the even code
// 0, so the first is the float after 0.5; 1.5 ties up to 2.
// CHECK-LABEL: func.func @quantize
// CHECK: arith.constant dense<[0.50000006, 1.500000e+00, {{.*}}, 14.500001]> : tensor<15xf32>
// CHECK: linalg.generic
// CHECK: arith.sitofp %{{.*}} : i8 to f32
// CHECK: arith.divf
// CHECK: arith.addf
// CHECK-COUNT-4: arith.cmpf oge
// CHECK: arith.cmpf uno
// CHECK: linalg.yield %{{.*}} : i8
func.func @quantize(%x: tensor<4x64xf32>, %s: tensor<4x1xf32>, %z: tensor<4x1xi8>) -> !q {
  %q = nibble.quantize %x scales(%s : tensor<4x1xf32>) zero_points(%z : tensor<4x1xi8>) : tensor<4x64xf32> -> !q
  return %q : !q
}

// -----

// Packed constants are unpacked from the byte stream; observers vanish.
// CHECK-LABEL: func.func @constant
// CHECK: arith.constant dense<[33, -13]> : tensor<2xi8>
// CHECK: linalg.generic
// CHECK: arith.shrui
// CHECK: arith.shli
// CHECK-NOT: nibble.observe
func.func @constant(%x: tensor<2xf32>) -> !nibble.qtensor<1x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>> {
  nibble.observe "x" %x : tensor<2xf32>
  %c = nibble.constant dense<[33, -13]> : tensor<2xi8> -> !nibble.qtensor<1x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>>
  return %c : !nibble.qtensor<1x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>>
}

// -----

// Matmul dequantizes the weight and contracts over k in f32.
// CHECK-LABEL: func.func @matmul
// CHECK: linalg.fill
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "reduction"]
// CHECK: arith.mulf
// CHECK: arith.addf
func.func @matmul(%x: tensor<2x64xf32>, %w: !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e4m3fn>, per_channel<0>>>, %s: tensor<8x1xf32>) -> tensor<2x8xf32> {
  %y = nibble.matmul %x, %w scales(%s : tensor<8x1xf32>) : tensor<2x64xf32>, !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e4m3fn>, per_channel<0>>> -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @layout(%q: !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, per_tensor, layout = "x86.k16">>, %s: tensor<1x1xf32>) -> tensor<4x64xf32> {
  // expected-error@+1 {{'nibble.dequantize' op uses layout "x86.k16", which the reference lowering does not understand}}
  %d = nibble.dequantize %q scales(%s : tensor<1x1xf32>) : !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, per_tensor, layout = "x86.k16">> -> tensor<4x64xf32>
  return %d : tensor<4x64xf32>
}

// -----

func.func @missing_file() -> !nibble.qtensor<2x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>> {
  // expected-error@+1 {{'nibble.constant' op cannot read 4 bytes at offset 16 of 'does-not-exist.bin'}}
  %c = nibble.constant #nibble.external<"does-not-exist.bin", offset = 16> -> !nibble.qtensor<2x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>>
  return %c : !nibble.qtensor<2x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor>>
}
