// RUN: quant-opt %s | quant-opt | FileCheck %s
// RUN: quant-opt %s --mlir-print-op-generic | quant-opt | FileCheck %s
// Round trip of every nibble attribute, type and op.

// CHECK-LABEL: func @formats
// CHECK-SAME: #nibble.int<4, signed>
// CHECK-SAME: #nibble.int<2, unsigned>
// CHECK-SAME: #nibble.int<8, signed>
// CHECK-SAME: #nibble.float<e4m3fn>
// CHECK-SAME: #nibble.float<e5m2>
// CHECK-SAME: #nibble.float<e4m3fnuz>
// CHECK-SAME: #nibble.float<e5m2fnuz>
// CHECK-SAME: #nibble.float<e2m3fn>
// CHECK-SAME: #nibble.float<e3m2fn>
// CHECK-SAME: #nibble.float<e2m1fn>
// CHECK-SAME: #nibble.float<e8m0fnu>
// CHECK-SAME: #nibble.float<f16>
// CHECK-SAME: #nibble.float<bf16>
// CHECK-SAME: #nibble.float<f32>
// CHECK-SAME: #nibble.float<e3m3, bias = 2, nonfinite = nan_only>
// CHECK-SAME: #nibble.float<e4m3fn>
// CHECK-SAME: #nibble.float<e3m2, nonfinite = finite_only, unsigned>
// CHECK-SAME: #nibble.float<e4m0, nonfinite = nan_only, unsigned, no_zero>
// CHECK-SAME: #nibble.lut<nf4>
// CHECK-SAME: #nibble.lut<[-1.500000e+00, -5.000000e-01, 0.000000e+00, 2.500000e-01, 5.000000e-01, 1.000000e+00, 2.000000e+00, 4.000000e+00]>
func.func @formats() attributes {
  f = [#nibble.int<4, signed>, #nibble.int<2, unsigned>, #nibble.int<8, signed>,
       #nibble.float<e4m3fn>, #nibble.float<e5m2>, #nibble.float<e4m3fnuz>,
       #nibble.float<e5m2fnuz>, #nibble.float<e2m3fn>, #nibble.float<e3m2fn>,
       #nibble.float<e2m1fn>, #nibble.float<e8m0fnu>, #nibble.float<f16>,
       #nibble.float<bf16>, #nibble.float<f32>,
       #nibble.float<e3m3, bias = 2, nonfinite = nan_only, nan = all_ones>,
       // The long form of a named format prints as its name.
       #nibble.float<e4m3, nonfinite = nan_only, nan = all_ones>,
       #nibble.float<e3m2, nonfinite = finite_only, unsigned>,
       #nibble.float<e4m0, nonfinite = nan_only, unsigned, no_zero>,
       #nibble.lut<nf4>,
       #nibble.lut<[-1.5, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0]>]
} {
  return
}

// CHECK-LABEL: func @schemes
// CHECK-SAME: #nibble.scheme<#nibble.int<8, signed>, per_tensor, scale = f32>
// CHECK-SAME: #nibble.scheme<#nibble.int<8, signed>, per_channel<0>, scale = bf16>
// CHECK-SAME: #nibble.scheme<#nibble.int<4, unsigned>, group<1, 128>, scale = f16, zero_point = i8>
// CHECK-SAME: #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f8E8M0FNU>
// CHECK-SAME: #nibble.scheme<#nibble.float<e2m1fn>, group<1, 16>, scale = f32, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>
// CHECK-SAME: #nibble.scheme<#nibble.lut<nf4>, block<32x32>, scale = f32, layout = "x86.avx512.k16">
// CHECK-SAME: #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, scale = f32, zero_point = f16>
func.func @schemes() attributes {
  s = [#nibble.scheme<#nibble.int<8, signed>, per_tensor>,
       #nibble.scheme<#nibble.int<8, signed>, per_channel<0>, scale = bf16>,
       #nibble.scheme<#nibble.int<4, unsigned>, group<1, 128>, scale = f16, zero_point = i8>,
       #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f8E8M0FNU>,
       #nibble.scheme<#nibble.float<e2m1fn>, group<1, 16>, scale = f32,
                      scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>,
       #nibble.scheme<#nibble.lut<nf4>, block<32x32>, scale = f32, layout = "x86.avx512.k16">,
       #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, zero_point = f16>]
} {
  return
}

!q4 = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>>
!u4 = !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, scale = f32, zero_point = i8>>
!nv = !nibble.qtensor<4x64, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 16>, scale = f32, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>>
!nvs = !nibble.qtensor<4x4, #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>

// CHECK-LABEL: func @ops
// CHECK: %[[Q:.*]] = nibble.quantize %{{.*}} scales(%{{.*}} : tensor<4x2xf16>) : tensor<4x64xf32> -> !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>>
// CHECK: nibble.dequantize %[[Q]] scales(%{{.*}} : tensor<4x2xf16>) : !nibble.qtensor<4x64, {{.*}}> -> tensor<4x64xf32>
// CHECK: nibble.quantize %{{.*}} scales(%{{.*}} : tensor<4x2xf32>) zero_points(%{{.*}} : tensor<4x2xi8>)
// CHECK: nibble.dequantize %{{.*}} scales(%{{.*}} : tensor<4x2xf32>) zero_points(%{{.*}} : tensor<4x2xi8>)
// CHECK: nibble.dequantize %{{.*}} scales(%{{.*}} : !nibble.qtensor<4x4, {{.*}}>) scale_scales(%{{.*}} : tensor<1x1xf32>)
// CHECK: nibble.matmul %{{.*}}, %[[Q]] scales(%{{.*}} : tensor<4x2xf16>) : tensor<2x64xf32>, !nibble.qtensor<4x64, {{.*}}> -> tensor<2x4xf32>
// CHECK: nibble.matmul %{{.*}}, %[[Q]] scales(%{{.*}} : tensor<4x2xf16>) {act_format = #nibble.int<8, signed>} : tensor<2x64xf16>, {{.*}} -> tensor<2x4xf16>
// CHECK: nibble.observe "blk0.q_proj.input" %{{.*}} : tensor<2x64xf32>
// CHECK: nibble.constant dense<[33, -1]> : tensor<2xi8> -> !nibble.qtensor<1x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor, scale = f32>>
// CHECK: nibble.constant dense_resource<w0> : tensor<128xi8> -> !nibble.qtensor<4x64, {{.*}}>
// CHECK: nibble.constant #nibble.external<"weights.bin", offset = 4096> -> !nibble.qtensor<4x64, {{.*}}>
func.func @ops(%x: tensor<4x64xf32>, %s16: tensor<4x2xf16>, %s: tensor<4x2xf32>,
               %zp: tensor<4x2xi8>, %a: tensor<2x64xf32>, %ah: tensor<2x64xf16>,
               %nvq: !nv, %nvs: !nvs, %nvss: tensor<1x1xf32>) {
  %q = nibble.quantize %x scales(%s16 : tensor<4x2xf16>) : tensor<4x64xf32> -> !q4
  %d = nibble.dequantize %q scales(%s16 : tensor<4x2xf16>) : !q4 -> tensor<4x64xf32>
  %u = nibble.quantize %x scales(%s : tensor<4x2xf32>) zero_points(%zp : tensor<4x2xi8>) : tensor<4x64xf32> -> !u4
  %du = nibble.dequantize %u scales(%s : tensor<4x2xf32>) zero_points(%zp : tensor<4x2xi8>) : !u4 -> tensor<4x64xf32>
  %dn = nibble.dequantize %nvq scales(%nvs : !nvs) scale_scales(%nvss : tensor<1x1xf32>) : !nv -> tensor<4x64xf32>
  %y = nibble.matmul %a, %q scales(%s16 : tensor<4x2xf16>) : tensor<2x64xf32>, !q4 -> tensor<2x4xf32>
  %y8 = nibble.matmul %ah, %q scales(%s16 : tensor<4x2xf16>) {act_format = #nibble.int<8, signed>} : tensor<2x64xf16>, !q4 -> tensor<2x4xf16>
  nibble.observe "blk0.q_proj.input" %a : tensor<2x64xf32>
  %c = nibble.constant dense<[33, -1]> : tensor<2xi8> -> !nibble.qtensor<1x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor, scale = f32>>
  %r = nibble.constant dense_resource<w0> : tensor<128xi8> -> !q4
  %e = nibble.constant #nibble.external<"weights.bin", offset = 4096> -> !q4
  return
}

{-#
  dialect_resources: {
    builtin: {
      w0: "0x040000001212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212121212"
    }
  }
#-}
