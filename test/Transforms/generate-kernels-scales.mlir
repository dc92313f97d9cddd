// Group scales stored narrower than f32 stay narrow in memory: f16 / bf16
// scales are widened per group (arith.extf), 8-bit scale codes (E8M0 of
// the MX formats; a two-level scheme's e4m3 codes) index a 256-entry f32
// table, with a two-level scheme's per-tensor scale folded into the table.
// NVFP4's groups of 16 are narrower than the 32-code step: each 16-code
// run of a step gets its own group's scale (and, with zero points, its own
// zero-point term). Zero points are read in their stored type: f16 / bf16
// widened, integers sign-extended (AWQ / GPTQ-style f16 scales and zero
// points, quant-dialect i32 zero points). A group that neither divides the
// step nor is a multiple of it keeps the reference lowering, with a remark.
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 2>%t.err | FileCheck %s
// RUN: FileCheck %s --check-prefix=REMARK < %t.err

!mx = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f8E8M0FNU>>
!h = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>>
!sc = !nibble.qtensor<8x2, #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>
!nv32 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f32, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>>
!sc16 = !nibble.qtensor<8x4, #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>
!nv16 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 16>, scale = f32, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>>
!u16 = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 16>, scale = f32, zero_point = f32>>
!awq = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 32>, scale = f16, zero_point = f16>>
!zi = !nibble.qtensor<8x64, #nibble.scheme<#nibble.int<8, unsigned>, group<1, 32>, scale = bf16, zero_point = i32>>
!u48 = !nibble.qtensor<8x96, #nibble.scheme<#nibble.int<4, unsigned>, group<1, 48>, scale = f32, zero_point = f32>>

func.func @f(%x: tensor<1x64xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>) {
  %w = nibble.constant dense<17> : tensor<256xi8> -> !mx
  %e = arith.constant dense<"0x7F80817E7F80817E7F80817E7F80817E"> : tensor<8x2xf8E8M0FNU>
  %y0 = nibble.matmul %x, %w scales(%e : tensor<8x2xf8E8M0FNU>) : tensor<1x64xf32>, !mx -> tensor<1x8xf32>
  %wh = nibble.constant dense<17> : tensor<256xi8> -> !h
  %sh = arith.constant dense<0.5> : tensor<8x2xf16>
  %y1 = nibble.matmul %x, %wh scales(%sh : tensor<8x2xf16>) : tensor<1x64xf32>, !h -> tensor<1x8xf32>
  %wn = nibble.constant dense<17> : tensor<256xi8> -> !nv32
  %cn = nibble.constant dense<56> : tensor<16xi8> -> !sc
  %t = arith.constant dense<2.0> : tensor<1x1xf32>
  %y2 = nibble.matmul %x, %wn scales(%cn : !sc) scale_scales(%t : tensor<1x1xf32>) : tensor<1x64xf32>, !nv32 -> tensor<1x8xf32>
  %w16 = nibble.constant dense<17> : tensor<256xi8> -> !nv16
  %c16 = nibble.constant dense<56> : tensor<32xi8> -> !sc16
  %y3 = nibble.matmul %x, %w16 scales(%c16 : !sc16) scale_scales(%t : tensor<1x1xf32>) : tensor<1x64xf32>, !nv16 -> tensor<1x8xf32>
  %wu = nibble.constant dense<17> : tensor<256xi8> -> !u16
  %su = arith.constant dense<0.5> : tensor<8x4xf32>
  %zu = arith.constant dense<8.0> : tensor<8x4xf32>
  %y4 = nibble.matmul %x, %wu scales(%su : tensor<8x4xf32>) zero_points(%zu : tensor<8x4xf32>) : tensor<1x64xf32>, !u16 -> tensor<1x8xf32>
  %wa = nibble.constant dense<17> : tensor<256xi8> -> !awq
  %sa = arith.constant dense<0.5> : tensor<8x2xf16>
  %za = arith.constant dense<8.0> : tensor<8x2xf16>
  %y5 = nibble.matmul %x, %wa scales(%sa : tensor<8x2xf16>) zero_points(%za : tensor<8x2xf16>) : tensor<1x64xf32>, !awq -> tensor<1x8xf32>
  %wi = nibble.constant dense<17> : tensor<512xi8> -> !zi
  %si = arith.constant dense<0.5> : tensor<8x2xbf16>
  %zi = arith.constant dense<128> : tensor<8x2xi32>
  %y6 = nibble.matmul %x, %wi scales(%si : tensor<8x2xbf16>) zero_points(%zi : tensor<8x2xi32>) : tensor<1x64xf32>, !zi -> tensor<1x8xf32>
  return %y0, %y1, %y2, %y3, %y4, %y5, %y6 : tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>
}

func.func @g(%x: tensor<1x96xf32>) -> tensor<1x8xf32> {
  %w = nibble.constant dense<17> : tensor<384xi8> -> !u48
  %s = arith.constant dense<0.5> : tensor<8x2xf32>
  %z = arith.constant dense<8.0> : tensor<8x2xf32>
  %y = nibble.matmul %x, %w scales(%s : tensor<8x2xf32>) zero_points(%z : tensor<8x2xf32>) : tensor<1x96xf32>, !u48 -> tensor<1x8xf32>
  return %y : tensor<1x8xf32>
}

// CHECK-LABEL: func.func @f
// The E8M0 codes as bytes, and the table of their values 2^(c - 127) as
// little-endian f32 bits: 2^-127 (subnormal 0x00400000), 2^-126, ...
// CHECK: %[[E:.*]] = arith.constant dense_resource<scales> : tensor<8x2xi8>
// CHECK: %[[T:.*]] = arith.constant dense<"0x0000400000008000000000010000800100000002
// ... 1.0 for code 127, and NaN for 255 (last).
// CHECK-SAME: 0000803F
// CHECK-SAME: 0000C07F"> : tensor<256xf32>
// CHECK: call @nibble_gemv_lut{{[0-9a-f]+}}_g32_s8t_m1_n8_k64(%arg0, %{{.*}}, %[[E]], %[[T]],
// CHECK: call @nibble_gemv_w4g32_sf16_m1_n8_k64(%arg0, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x64xf32>, tensor<256xi8>, tensor<8x2xf16>,
// The e4m3 table times the tensor scale 2: code 1 (2^-9) is 2^-8.
// CHECK: %[[T2:.*]] = arith.constant dense<"0x000000000000803B0000003C{{.*}}"> : tensor<256xf32>
// CHECK: call @nibble_gemv_lut{{[0-9a-f]+}}_g32_s8t_m1_n8_k64(%arg0, %{{.*}}, %{{.*}}, %[[T2]],
// Groups of 16: a kernel of its own, two scales per 32-code step.
// CHECK: call @nibble_gemv_lut{{[0-9a-f]+}}_g16_s8t_m1_n8_k64(
// Groups of 16 with zero points: one zero-point term per group of a step.
// CHECK: call @nibble_gemv_u4g16z_m1_n8_k64(
// CHECK: call @nibble_gemv_u4g32zf16_sf16_m1_n8_k64(%arg0, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x64xf32>, tensor<256xi8>, tensor<8x2xf16>, tensor<8x2xf16>,
// CHECK: call @nibble_gemv_u8g32zi32_sbf16_m1_n8_k64(%arg0, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x64xf32>, tensor<512xi8>, tensor<8x2xbf16>, tensor<8x2xi32>,
// CHECK-LABEL: func.func @g
// CHECK: nibble.matmul {{.*}}zero_points
// CHECK: func.func @nibble_gemv_lut{{[0-9a-f]+}}_g32_s8t_m1_n8_k64(%arg0: tensor<1x64xf32>, %arg1: tensor<256xi8>, %arg2: tensor<8x2xi8>, %arg3: tensor<256xf32>, %arg4: tensor<1x8xf32> {bufferization.writable = true}, %arg5: index, %arg6: index)
// CHECK: arith.extui {{.*}} : i8 to i32
// CHECK: arith.index_castui
// CHECK: tensor.extract %arg3[
// CHECK: func.func @nibble_gemv_w4g32_sf16_m1_n8_k64(
// CHECK: arith.extf {{.*}} : f16 to f32
// CHECK: func.func @nibble_gemv_u4g16z_m1_n8_k64(
// Two groups of a step: two scales, two zero points, two group sums.
// CHECK-COUNT-2: tensor.extract %arg3[
// CHECK: func.func @nibble_gemv_u4g32zf16_sf16_m1_n8_k64(
// CHECK: arith.extf {{.*}} : f16 to f32
// CHECK: arith.extf {{.*}} : f16 to f32
// CHECK: func.func @nibble_gemv_u8g32zi32_sbf16_m1_n8_k64(
// CHECK: arith.extf {{.*}} : bf16 to f32
// CHECK: arith.sitofp {{.*}} : i32 to f32
// The codes' bytes (after the blob's 4-byte alignment header).
// CHECK: scales: "0x400000007F80817E7F80817E7F80817E7F80817E"
// CHECK: scales_1: "0x4000000038383838383838383838383838383838"

// REMARK: remark: group 48 is neither a multiple of the 32-code step of the weight-only kernel nor a multiple of 16 dividing it: reference lowering
