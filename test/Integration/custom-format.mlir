// RUN: quant-opt %s --nibble-reference-to-llvm | mlir-runner -e main -entry-point-result=void -shared-libs=%runner_libs | FileCheck %s
//
// A researcher's new formats, written in IR text only (no C++ change): a
// 3-bit lookup table and a 5-bit parametric float (e3m1, bias 2, no
// Inf/NaN). Both run through quantize -> dequantize -> matmul.

func.func private @printMemrefF32(tensor<*xf32>)

#cb = #nibble.lut<[-2.0, -1.0, -0.25, 0.0, 0.25, 1.0, 2.0, 3.0]>
#f5 = #nibble.float<e3m1, bias = 2, nonfinite = finite_only>
!lut = !nibble.qtensor<2x8, #nibble.scheme<#cb, per_channel<0>, scale = f32>>
!flt = !nibble.qtensor<2x8, #nibble.scheme<#f5, per_channel<0>, scale = f32>>

func.func @main() {
  %w = arith.constant dense<[[0.3, -0.9, 1.3, 2.6, -5.0, 7.0, 100.0, -0.1],
                             [-0.3, 0.9, -1.3, -2.6, 5.0, -7.0, -100.0, 0.1]]> : tensor<2x8xf32>
  %s = arith.constant dense<1.0> : tensor<2x1xf32>
  %x = arith.constant dense<1.0> : tensor<1x8xf32>

  // e3m1 bias 2 values: 0 0.25 0.5 0.75 1 1.5 2 3 4 6 8 12 16 24 32 48.
  // -5 ties 4 (code 8) / 6 (code 9) -> 4; 7 ties 6 (code 9) / 8 (code 10)
  // -> 8; 100 saturates to 48; -0.1 -> -0.
  // CHECK: [0.25, -1, 1.5, 3, -4, 8, 48, -0],
  // CHECK-NEXT: [-0.25, 1, -1.5, -3, 4, -8, -48, 0]
  %qf = nibble.quantize %w scales(%s : tensor<2x1xf32>) : tensor<2x8xf32> -> !flt
  %df = nibble.dequantize %qf scales(%s : tensor<2x1xf32>) : !flt -> tensor<2x8xf32>
  %dfu = tensor.cast %df : tensor<2x8xf32> to tensor<*xf32>
  call @printMemrefF32(%dfu) : (tensor<*xf32>) -> ()

  // Lookup table: nearest entry, saturating at -2 and 3.
  // CHECK: [0.25, -1, 1, 3, -2, 3, 3, 0],
  // CHECK-NEXT: [-0.25, 1, -1, -2, 3, -2, -2, 0]
  %ql = nibble.quantize %w scales(%s : tensor<2x1xf32>) : tensor<2x8xf32> -> !lut
  %dl = nibble.dequantize %ql scales(%s : tensor<2x1xf32>) : !lut -> tensor<2x8xf32>
  %dlu = tensor.cast %dl : tensor<2x8xf32> to tensor<*xf32>
  call @printMemrefF32(%dlu) : (tensor<*xf32>) -> ()

  // Matmul with a ones vector gives the row sums of the dequantized weights.
  // CHECK: [55.75, -55.75]
  %yf = nibble.matmul %x, %qf scales(%s : tensor<2x1xf32>) : tensor<1x8xf32>, !flt -> tensor<1x2xf32>
  %yfu = tensor.cast %yf : tensor<1x2xf32> to tensor<*xf32>
  call @printMemrefF32(%yfu) : (tensor<*xf32>) -> ()
  // CHECK: [7.25, -3.25]
  %yl = nibble.matmul %x, %ql scales(%s : tensor<2x1xf32>) : tensor<1x8xf32>, !lut -> tensor<1x2xf32>
  %ylu = tensor.cast %yl : tensor<1x2xf32> to tensor<*xf32>
  call @printMemrefF32(%ylu) : (tensor<*xf32>) -> ()
  return
}
