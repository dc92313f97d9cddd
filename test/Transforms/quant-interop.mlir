// RUN: quant-opt %s --split-input-file --nibble-convert-from-quant | FileCheck %s --check-prefix=FROM
// RUN: quant-opt %s --split-input-file --nibble-convert-from-quant --nibble-convert-to-quant | FileCheck %s --check-prefix=BACK

// FROM-LABEL: func.func @per_tensor
// FROM-DAG: %[[S:.*]] = arith.constant dense<5.000000e-01> : tensor<1x1xf32>
// FROM-DAG: %[[Z:.*]] = arith.constant dense<3> : tensor<1x1xi32>
// FROM: %[[Q:.*]] = nibble.quantize %{{.*}} scales(%[[S]] : tensor<1x1xf32>) zero_points(%[[Z]] : tensor<1x1xi32>) : tensor<4x8xf32> -> !nibble.qtensor<4x8, #nibble.scheme<#nibble.int<8, signed>, per_tensor, scale = f32, zero_point = i32>>
// FROM: nibble.dequantize %[[Q]] scales(%[[S]] : tensor<1x1xf32>) zero_points(%[[Z]] : tensor<1x1xi32>)
// BACK-LABEL: func.func @per_tensor
// BACK: quant.qcast %{{.*}} : tensor<4x8xf32> to tensor<4x8x!quant.uniform<i8:f32, 5.000000e-01:3>>
// BACK: quant.dcast
func.func @per_tensor(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %q = quant.qcast %x : tensor<4x8xf32> to tensor<4x8x!quant.uniform<i8:f32, 0.5:3>>
  %d = quant.dcast %q : tensor<4x8x!quant.uniform<i8:f32, 0.5:3>> to tensor<4x8xf32>
  return %d : tensor<4x8xf32>
}

// -----

// FROM-LABEL: func.func @per_axis
// FROM: arith.constant dense<{{\[}}[1.000000e+00, 2.000000e+00]]> : tensor<1x2xf32>
// FROM: !nibble.qtensor<3x2, #nibble.scheme<#nibble.int<4, unsigned>, per_channel<1>, scale = f32>>
// BACK-LABEL: func.func @per_axis
// BACK: !quant.uniform<u4:f32:1, {1.000000e+00,2.000000e+00}>
func.func @per_axis(%x: tensor<3x2xf32>) -> tensor<3x2xf32> {
  %q = quant.qcast %x : tensor<3x2xf32> to tensor<3x2x!quant.uniform<u4:f32:1, {1.0, 2.0}>>
  %d = quant.dcast %q : tensor<3x2x!quant.uniform<u4:f32:1, {1.0, 2.0}>> to tensor<3x2xf32>
  return %d : tensor<3x2xf32>
}

// -----

// FROM-LABEL: func.func @sub_channel
// FROM: !nibble.qtensor<2x4, #nibble.scheme<#nibble.int<8, signed>, group<1, 2>, scale = f32>>
// BACK-LABEL: func.func @sub_channel
// BACK: !quant.uniform<i8:f32:{0:1, 1:2}
func.func @sub_channel(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %q = quant.qcast %x : tensor<2x4xf32> to tensor<2x4x!quant.uniform<i8:f32:{0:1, 1:2}, {{2.0, 3.0}, {4.0, 5.0}}>>
  %d = quant.dcast %q : tensor<2x4x!quant.uniform<i8:f32:{0:1, 1:2}, {{2.0, 3.0}, {4.0, 5.0}}>> to tensor<2x4xf32>
  return %d : tensor<2x4xf32>
}
