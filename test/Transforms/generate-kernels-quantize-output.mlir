// A kernel whose output an integer-dot matmul reads with a static
// activation scale quantizes that output in its store (after its fused
// epilogue): the SwiGLU kernel writes the down projection's int8 codes and
// group sums, and no row quantizer is generated for them. A reader with a
// dynamic scale still gets its quantizer (its scale needs the row maximum).
// Row ranges of the quantizing kernel are aligned to the group.
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-generate-kernels="target=znver4 fuse-epilogues=false" | FileCheck %s --check-prefix=OFF
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" \
// RUN:   --nibble-parallelize-kernel-calls="min-work=1 align=16" | FileCheck %s --check-prefix=PAR

!w = !nibble.qtensor<256x128, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32>>
!wd = !nibble.qtensor<128x256, #nibble.scheme<#nibble.int<8, signed>, group<1, 128>, scale = f32>>
#id = affine_map<(d0, d1) -> (d0, d1)>

func.func @f(%x: tensor<2x128xf32>) -> (tensor<2x128xf32>, tensor<2x128xf32>) {
  %wg = nibble.constant dense<17> : tensor<16384xi8> -> !w
  %wu = nibble.constant dense<33> : tensor<16384xi8> -> !w
  %s = arith.constant dense<0.05> : tensor<256x1xf32>
  %g = nibble.matmul %x, %wg scales(%s : tensor<256x1xf32>) : tensor<2x128xf32>, !w -> tensor<2x256xf32>
  %u = nibble.matmul %x, %wu scales(%s : tensor<256x1xf32>) : tensor<2x128xf32>, !w -> tensor<2x256xf32>
  %e = tensor.empty() : tensor<2x256xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%g, %u : tensor<2x256xf32>, tensor<2x256xf32>) outs(%e : tensor<2x256xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.negf %a : f32
    %ex = math.exp %n : f32
    %one = arith.constant 1.0 : f32
    %den = arith.addf %one, %ex : f32
    %si = arith.divf %a, %den : f32
    %r = arith.mulf %si, %b : f32
    linalg.yield %r : f32
  } -> tensor<2x256xf32>
  %wd = nibble.constant dense<-3> : tensor<32768xi8> -> !wd
  %sd = arith.constant dense<0.25> : tensor<128x2xf32>
  %d = nibble.matmul %h, %wd scales(%sd : tensor<128x2xf32>) {act_format = #nibble.int<8, signed>, act_scale = 0.03 : f32} : tensor<2x256xf32>, !wd -> tensor<2x128xf32>
  %d2 = nibble.matmul %h, %wd scales(%sd : tensor<128x2xf32>) {act_format = #nibble.int<8, signed>} : tensor<2x256xf32>, !wd -> tensor<2x128xf32>
  return %d, %d2 : tensor<2x128xf32>, tensor<2x128xf32>
}

// CHECK-LABEL: func.func @f
// CHECK: %[[SC:.*]] = arith.constant 3.000000e-02 : f32
// CHECK: %[[H:.*]]:3 = call @nibble_gemv_w4g128_t16_m2_n256_k128_e{{[0-9a-f]+}}_q128({{.*}}, %[[SC]], %{{.*}}, %{{.*}}) : ({{.*}}) -> (tensor<2x256xf32>, tensor<2x256xi8>, tensor<2x2xf32>)
// The dynamic reader's quantizer, right after the output it reads...
// CHECK: %[[Q:.*]]:3 = call @nibble_quantize_rows_i8g128_m2_k256(%[[H]]#0,
// CHECK: %[[XS:.*]] = arith.constant dense<3.000000e-02> : tensor<2xf32>
// ...the static reader takes the kernel's codes, sums and scale.
// CHECK: call @nibble_gemv_w8a8g128_t16_m2_n128_k256(%[[H]]#1, %[[XS]], %[[H]]#2,
// CHECK: call @nibble_gemv_w8a8g128_t16_m2_n128_k256(%[[Q]]#0, %[[Q]]#2, %[[Q]]#1,
// CHECK: func.func @nibble_gemv_w4g128_t16_m2_n256_k128_e{{[0-9a-f]+}}_q128({{.*}}) -> (tensor<2x256xf32>, tensor<2x256xi8>, tensor<2x2xf32>) attributes {{{.*}}nibble.row_align = 128 : i64
// CHECK: math.roundeven {{.*}} : f32
// CHECK: arith.select
// CHECK: func.func @nibble_quantize_rows_i8g128_m2_k256
// CHECK-NOT: func.func @nibble_quantize_rows

// Without fusion both readers quantize (one quantizer per scale).
// OFF-NOT: _q128
// OFF: call @nibble_quantize_rows_i8g128_m2_k256
// OFF: call @nibble_quantize_rows_i8g128_m2_k256
// OFF-NOT: _q128

// PAR: llvm.mlir.addressof @nibble_gemv_w4g128_t16_m2_n256_k128_rows
// PAR-NEXT: llvm.mlir.constant(16 : i64)
// PAR: %[[T:[0-9]+]] = llvm.mlir.addressof @nibble_gemv_w4g128_t16_m2_n256_k128_e{{[0-9a-f]+}}_q128_rows
// PAR-NEXT: %[[A:[0-9]+]] = llvm.mlir.constant(128 : i64)
// PAR-NEXT: llvm.call @__nibble_parallel_for(%[[T]], %{{[0-9]+}}, %{{[0-9]+}}, %[[A]])
