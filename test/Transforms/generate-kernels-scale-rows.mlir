// Scales shared by several output rows: per_tensor (one scale, as int8
// SmoothQuant-style and fp8 checkpoints store them) and 2-D blocks
// (block<R x C>, as block-scaled fp8 checkpoints do) take the generated
// kernels, their scales (and zero points) repeated into one row per output
// row at compile time; groups along N (one scale per input column) have
// no kernel and say so.
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 2>&1 | FileCheck %s

!pt = !nibble.qtensor<32x64, #nibble.scheme<#nibble.int<8, signed>, per_tensor, scale = f32>>
!bk = !nibble.qtensor<32x64, #nibble.scheme<#nibble.int<4, unsigned>, block<16x32>, scale = f32, zero_point = i8>>
!gn = !nibble.qtensor<32x64, #nibble.scheme<#nibble.int<4, signed>, group<0, 16>, scale = f32>>

func.func @f(%x: tensor<1x64xf32>) -> (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>) {
  %wpt = nibble.constant dense<-3> : tensor<2048xi8> -> !pt
  %spt = arith.constant dense<0.25> : tensor<1x1xf32>
  %ypt = nibble.matmul %x, %wpt scales(%spt : tensor<1x1xf32>) {nibble.linear = "pt"} : tensor<1x64xf32>, !pt -> tensor<1x32xf32>
  %wbk = nibble.constant dense<17> : tensor<1024xi8> -> !bk
  %sbk = arith.constant dense<[[0.5, 0.25], [0.125, 1.0]]> : tensor<2x2xf32>
  %zbk = arith.constant dense<[[8, 7], [6, 5]]> : tensor<2x2xi8>
  %ybk = nibble.matmul %x, %wbk scales(%sbk : tensor<2x2xf32>) zero_points(%zbk : tensor<2x2xi8>) {nibble.linear = "bk"} : tensor<1x64xf32>, !bk -> tensor<1x32xf32>
  %wgn = nibble.constant dense<17> : tensor<1024xi8> -> !gn
  %sgn = arith.constant dense<0.5> : tensor<2x64xf32>
  %ygn = nibble.matmul %x, %wgn scales(%sgn : tensor<2x64xf32>) : tensor<1x64xf32>, !gn -> tensor<1x32xf32>
  return %ypt, %ybk, %ygn : tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>
}

// CHECK: remark: group 1 is neither a multiple of the
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.int<8, signed>, per_tensor, scale = f32, layout = "int8-coltile16">}
// CHECK-NEXT: arith.constant dense<2.500000e-01> : tensor<1x1xf32>
// CHECK-NEXT: %[[PT:.+]] = arith.constant dense_resource<pt.scales.rowtile16> : tensor<2x16xf32>
// CHECK: call @nibble_gemv_w8g64_t16_m1_n32_k64(%{{.*}}, %{{.*}}, %[[PT]],
// CHECK: layout = "uint4-rowtile16"
// CHECK: %[[BS:.+]] = arith.constant dense_resource<bk.scales.rowtile16> : tensor<4x16xf32>
// CHECK: %[[BZ:.+]] = arith.constant dense_resource<bk.zero_points.rowtile16> : tensor<4x16xi8>
// CHECK: call @nibble_gemv_u4g32zi8_t16_m1_n32_k64(%{{.*}}, %{{.*}}, %[[BS]], %[[BZ]],
// CHECK: nibble.matmul {{.*}}group<0, 16>

// The repeated rows, tiled [N/16 * groups, 16]: block row 0's scales and
// zero points for output rows 0..15 (tile 0), row 1's for 16..31 (tile 1);
// per_tensor's one scale for all 32 rows.
// CHECK: pt.scales.rowtile16: "0x400000000000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E"
// CHECK: bk.scales.rowtile16: "0x400000000000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000803E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000003E0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F0000803F"
// CHECK: bk.zero_points.rowtile16: "0x4000000008080808080808080808080808080808070707070707070707070707070707070606060606060606060606060606060605050505050505050505050505050505"
