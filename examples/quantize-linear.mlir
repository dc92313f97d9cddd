// The main job's embedded default (scripts/demo.sh): one linear layer,
// y = x W^T with W 4x32, quantized four ways with RTN scales (absmax / max of
// the format, per channel or per group of 16), compiled through the
// reference lowering and executed. Prints the float output, then each
// quantized output (compare them with the first line).
func.func private @printMemrefF32(tensor<*xf32>)

!i8 = !nibble.qtensor<4x32, #nibble.scheme<#nibble.int<8, signed>, per_channel<0>, scale = f32>>
!i4 = !nibble.qtensor<4x32, #nibble.scheme<#nibble.int<4, signed>, group<1, 16>, scale = f16>>
!nf4 = !nibble.qtensor<4x32, #nibble.scheme<#nibble.lut<nf4>, group<1, 16>, scale = f32>>
!fp8 = !nibble.qtensor<4x32, #nibble.scheme<#nibble.float<e4m3fn>, per_channel<0>, scale = f32>>

func.func @main() {
  %w = arith.constant dense<[[0.047, 0.625, -0.466, 0.496, -0.13, -0.131, 0.95, 0.079, -0.021, 0.365, 0.563, -0.015, 0.294, -0.487, -0.183, -0.219, -0.666, -0.754, -0.813, -0.119, -0.086, -0.16, 0.035, -0.668, -0.04, 0.119, 0.376, -0.423, -0.2, -1.008, -0.252, -1.098], [-0.71, 0.551, -1.101, 0.399, 0.164, -0.156, 0.23, 0.264, 0.523, -0.115, -0.296, -0.302, -0.493, -0.022, -0.393, 0.534, -0.935, -0.547, -0.477, -1.046, 0.951, -1.204, -0.142, -0.263, 0.828, -0.993, 0.536, -0.366, -0.078, -0.335, 0.32, -0.569], [-0.039, 0.177, 0.92, -1.203, 0.763, 0.474, -0.242, 0.152, -0.233, 0.823, 0.105, -0.108, -0.114, -0.1, -0.088, -0.439, 1.029, -0.955, -1.803, -0.061, -0.073, 0.186, -0.102, -0.074, 0.166, 0.484, -0.224, -0.186, 0.97, 0.265, -0.493, 1.162], [0.388, -0.294, -0.587, 0.149, -0.416, -0.529, -0.648, -0.253, 0.554, -0.217, -0.725, 0.334, 0.033, 0.422, 0.601, -0.084, -0.072, -0.023, -0.567, 0.334, 0.686, 0.087, -0.119, -0.13, -0.39, -0.402, -0.2, -0.421, -0.219, -0.789, 0.175, 0.025]]> : tensor<4x32xf32>
  %x = arith.constant dense<[[-1.153, -2.298, -0.008, 1.104, -0.734, -0.483, -0.568, 0.653, -0.916, 0.986, -0.303, 0.925, 0.033, -0.231, -1.478, -0.687, -0.261, 0.66, 0.245, -0.697, 0.41, 0.987, -0.149, -0.439, -0.394, 0.811, 0.538, -0.93, 0.375, -0.48, -0.751, 1.24]]> : tensor<1x32xf32>
  %init = tensor.empty() : tensor<1x4xf32>
  %zero = arith.constant 0.0 : f32
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<1x4xf32>) -> tensor<1x4xf32>
  %ref = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : tensor<1x32xf32>, tensor<4x32xf32>) outs(%acc : tensor<1x4xf32>) -> tensor<1x4xf32>
  %ru = tensor.cast %ref : tensor<1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%ru) : (tensor<*xf32>) -> ()

  // int8 per output channel
  %s8 = arith.constant dense<[[0.008645669291338583], [0.009480314960629921], [0.014196850393700788], [0.0062125984251968506]]> : tensor<4x1xf32>
  %q8 = nibble.quantize %w scales(%s8 : tensor<4x1xf32>) : tensor<4x32xf32> -> !i8
  %y8 = nibble.matmul %x, %q8 scales(%s8 : tensor<4x1xf32>) : tensor<1x32xf32>, !i8 -> tensor<1x4xf32>
  %uy8 = tensor.cast %y8 : tensor<1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%uy8) : (tensor<*xf32>) -> ()

  // int4, groups of 16, f16 scales (q4_0-like)
  %s4 = arith.constant dense<[[0.1357142857142857, 0.15685714285714286], [0.15728571428571428, 0.172], [0.17185714285714287, 0.25757142857142856], [0.10357142857142856, 0.11271428571428573]]> : tensor<4x2xf16>
  %q4 = nibble.quantize %w scales(%s4 : tensor<4x2xf16>) : tensor<4x32xf32> -> !i4
  %y4 = nibble.matmul %x, %q4 scales(%s4 : tensor<4x2xf16>) : tensor<1x32xf32>, !i4 -> tensor<1x4xf32>
  %uy4 = tensor.cast %y4 : tensor<1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%uy4) : (tensor<*xf32>) -> ()

  // NF4, groups of 16
  %snf = arith.constant dense<[[0.95, 1.098], [1.101, 1.204], [1.203, 1.803], [0.725, 0.789]]> : tensor<4x2xf32>
  %qn = nibble.quantize %w scales(%snf : tensor<4x2xf32>) : tensor<4x32xf32> -> !nf4
  %yn = nibble.matmul %x, %qn scales(%snf : tensor<4x2xf32>) : tensor<1x32xf32>, !nf4 -> tensor<1x4xf32>
  %uyn = tensor.cast %yn : tensor<1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%uyn) : (tensor<*xf32>) -> ()

  // fp8 e4m3fn per channel, with int8 activations (W8A8-style fake quant)
  %s448 = arith.constant dense<[[0.002450892857142857], [0.0026875], [0.004024553571428571], [0.0017611607142857145]]> : tensor<4x1xf32>
  %qf = nibble.quantize %w scales(%s448 : tensor<4x1xf32>) : tensor<4x32xf32> -> !fp8
  %yf = nibble.matmul %x, %qf scales(%s448 : tensor<4x1xf32>) {act_format = #nibble.int<8, signed>} : tensor<1x32xf32>, !fp8 -> tensor<1x4xf32>
  %uyf = tensor.cast %yf : tensor<1x4xf32> to tensor<*xf32>
  call @printMemrefF32(%uyf) : (tensor<*xf32>) -> ()
  return
}
