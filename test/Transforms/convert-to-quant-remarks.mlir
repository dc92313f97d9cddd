// RUN: quant-opt %s --nibble-convert-to-quant --verify-diagnostics
// RUN: not quant-opt %s --nibble-convert-to-quant=strict=true 2>&1 | FileCheck %s

// CHECK: error: 'nibble.quantize' op not converted to !quant.uniform: upstream !quant.uniform stores integers only

!q = !nibble.qtensor<4x8, #nibble.scheme<#nibble.float<e4m3fn>, per_tensor>>
func.func @float_format(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %s = arith.constant dense<0.5> : tensor<1x1xf32>
  // expected-remark@+1 {{not converted to !quant.uniform: upstream !quant.uniform stores integers only}}
  %q = nibble.quantize %x scales(%s : tensor<1x1xf32>) : tensor<4x8xf32> -> !q
  %d = nibble.dequantize %q scales(%s : tensor<1x1xf32>) : !q -> tensor<4x8xf32>
  return %d : tensor<4x8xf32>
}
