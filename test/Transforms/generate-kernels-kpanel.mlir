// K panels of the row-tiled integer-dot kernel: where a tile's weights over
// the whole row would evict the row's activation codes from L1 before the
// next tile reads them again, the row is cut into panels of groups
// (k-panel-bytes: a tile's weights, codes and scales per panel), and the
// kernel runs every tile over one panel before the next, carrying partial
// sums in y. The weights, scales and zero points are stored panel after
// panel, tile after tile (`-kpanel<columns>`), so all three stay one
// forward stream. Here int4 g32: 16 * 32 / 2 + 32 + 64 = 352 bytes a group,
// 704 fit two groups, so 3 groups make panels {0, 1} and {2}.
// RUN: quant-opt %s --nibble-generate-kernels="target=znver4 k-panel-bytes=704" | FileCheck %s
// RUN: quant-opt %s --nibble-generate-kernels="target=znver4 k-panel-bytes=1056" | FileCheck %s --check-prefix=ONE
// RUN: quant-opt %s --pass-pipeline="builtin.module(nibble-generate-kernels{target=znver4 k-panel-bytes=704},nibble-reference-to-llvm)" \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ZEN4
// AVX-VNNI (ymm, tiles of 8 rows: 8 * 32 / 2 + 32 + 32 = 192 bytes a
// group, 384 fit two): the same panels, on ymm registers.
// RUN: quant-opt %s --pass-pipeline="builtin.module(nibble-generate-kernels{target=alderlake k-panel-bytes=384},nibble-reference-to-llvm)" \
// RUN:   | mlir-translate --mlir-to-llvmir | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=alderlake | FileCheck %s --check-prefix=AVXVNNI

!q = !nibble.qtensor<32x96, #nibble.scheme<#nibble.int<4, unsigned>, block<16x32>, scale = f32, zero_point = i8>>

func.func @f(%x: tensor<1x96xf32>) -> tensor<1x32xf32> {
  %w = nibble.constant dense<17> : tensor<1536xi8> -> !q
  %s = arith.constant dense<0.5> : tensor<2x3xf32>
  %z = arith.constant dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi8>
  %y = nibble.matmul %x, %w scales(%s : tensor<2x3xf32>) zero_points(%z : tensor<2x3xi8>) {nibble.linear = "q", act_format = #nibble.int<8, signed>} : tensor<1x96xf32>, !q -> tensor<1x32xf32>
  return %y : tensor<1x32xf32>
}

// CHECK: layout = "uint4-rowtile16-kpanel64"
// CHECK-DAG: dense_resource<q.scales.rowtile16.kpanel64> : tensor<6x16xf32>
// CHECK-DAG: %[[Z:.+]] = arith.constant dense_resource<q.zero_points.rowtile16.kpanel64> : tensor<6x16xi8>
// CHECK: call @nibble_gemv_u4a8g32zi8_t16_p2_m1_n32_k96({{.*}}%[[Z]],
// The kernel: a loop over the 2 panels around the loop over tiles; a
// row's partial sum enters a panel from y except in the first and leaves
// it into y except after the last, where the epilogue stores it.
// CHECK: func.func @nibble_gemv_u4a8g32zi8_t16_p2_m1_n32_k96
// CHECK: scf.for %[[P:.+]] = %c0 to %c2 step %c1
// CHECK: arith.cmpi eq, %[[P]], %c0
// CHECK: arith.cmpi eq, %[[P]], %c1
// CHECK: scf.for
// CHECK: scf.if
// CHECK: } else {
// CHECK: vector.transfer_read
// CHECK: scf.for
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// CHECK: scf.if
// CHECK: } else {
// CHECK: vector.transfer_write
// (Tile, group) rows of the zero points: panel {0, 1} (tile 0's groups 0
// and 1, tile 1's), then panel {2} (tile 0's, tile 1's).
// CHECK: q.zero_points.rowtile16.kpanel64: "0x40000000010101010101010101010101010101010202020202020202020202020202020204040404040404040404040404040404050505050505050505050505050505050303030303030303030303030303030306060606060606060606060606060606"

// A budget for the whole row: one panel, the plain row-tiled layout.
// ONE: layout = "uint4-rowtile16"
// ONE-NOT: kpanel
// ONE: call @nibble_gemv_u4a8g32zi8_t16_m1_n32_k96(
// ONE: q.zero_points.rowtile16: "0x40000000010101010101010101010101010101010202020202020202020202020202020203030303030303030303030303030303040404040404040404040404040404040505050505050505050505050505050506060606060606060606060606060606"

// Lowered and compiled: the VNNI dot product on zmm registers.
// ZEN4: vpdpbusd {{.*}}zmm

// AVXVNNI-LABEL: nibble_gemv_u4a8g32zi8_t8_p2_m1_n32_k96:
// AVXVNNI-NOT: zmm
// AVXVNNI: {vex} vpdpbusd {{.*}}ymm
// AVXVNNI: .Lfunc_end
