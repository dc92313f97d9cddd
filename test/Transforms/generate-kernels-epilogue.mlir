// Element-wise consumers fuse into the kernels' stores: SwiGLU (the gate
// kernel reads up's result; the call moves to where the generic was),
// a residual add on the integer path, a per-column bias. A weight used by
// two matmuls is repacked once. The final linalg.add has no matmul input
// and stays; fuse-epilogues=false keeps every generic.
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-generate-kernels="target=znver4 fuse-epilogues=false" | FileCheck %s --check-prefix=OFF

!w = !nibble.qtensor<64x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 64>, scale = f32>>
!w8 = !nibble.qtensor<64x64, #nibble.scheme<#nibble.int<8, signed>, group<1, 64>, scale = f32>>
#id = affine_map<(d0, d1) -> (d0, d1)>
#col = affine_map<(d0, d1) -> (d1)>

func.func @block(%x: tensor<2x64xf32>, %bias: tensor<64xf32>) -> (tensor<2x64xf32>, tensor<2x64xf32>) {
  %wg = nibble.constant dense<17> : tensor<2048xi8> -> !w
  %wu = nibble.constant dense<33> : tensor<2048xi8> -> !w
  %s = arith.constant dense<0.5> : tensor<64x1xf32>
  %g = nibble.matmul %x, %wg scales(%s : tensor<64x1xf32>) : tensor<2x64xf32>, !w -> tensor<2x64xf32>
  %u = nibble.matmul %x, %wu scales(%s : tensor<64x1xf32>) : tensor<2x64xf32>, !w -> tensor<2x64xf32>
  %e = tensor.empty() : tensor<2x64xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%g, %u : tensor<2x64xf32>, tensor<2x64xf32>) outs(%e : tensor<2x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %n = arith.negf %a : f32
    %ex = math.exp %n : f32
    %one = arith.constant 1.0 : f32
    %den = arith.addf %one, %ex : f32
    %si = arith.divf %a, %den : f32
    %r = arith.mulf %si, %b : f32
    linalg.yield %r : f32
  } -> tensor<2x64xf32>
  // W8A8 down projection + residual.
  %w8 = nibble.constant dense<-3> : tensor<4096xi8> -> !w8
  %d = nibble.matmul %h, %w8 scales(%s : tensor<64x1xf32>) {act_format = #nibble.int<8, signed>} : tensor<2x64xf32>, !w8 -> tensor<2x64xf32>
  %e2 = tensor.empty() : tensor<2x64xf32>
  %res = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x, %d : tensor<2x64xf32>, tensor<2x64xf32>) outs(%e2 : tensor<2x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<2x64xf32>
  // Bias by column.
  %p = nibble.matmul %x, %wg scales(%s : tensor<64x1xf32>) : tensor<2x64xf32>, !w -> tensor<2x64xf32>
  %e3 = tensor.empty() : tensor<2x64xf32>
  %pb = linalg.generic {indexing_maps = [#id, #col, #id], iterator_types = ["parallel", "parallel"]}
      ins(%p, %bias : tensor<2x64xf32>, tensor<64xf32>) outs(%e3 : tensor<2x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<2x64xf32>
  %e4 = tensor.empty() : tensor<2x64xf32>
  %both = linalg.add ins(%res, %pb : tensor<2x64xf32>, tensor<2x64xf32>) outs(%e4 : tensor<2x64xf32>) -> tensor<2x64xf32>
  return %both, %u : tensor<2x64xf32>, tensor<2x64xf32>
}

// CHECK-LABEL: func.func @block(
// CHECK-NOT: linalg.generic
// %wg feeds two matmuls (gate and the biased one): one packed copy.
// CHECK: %[[WG:.*]] = arith.constant {{.*}} dense_resource<weights.packed> : tensor<2048xi8>
// CHECK: %[[U:.*]] = call @nibble_gemv_w4g64_t16_m2_n64_k64(%arg0,
// CHECK: %[[H:.*]] = call @nibble_gemv_w4g64_t16_m2_n64_k64_e{{[0-9a-f]+}}(%arg0, %[[WG]], {{.*}}, %[[U]]) :
// CHECK: %[[Q:.*]]:3 = call @nibble_quantize_rows_i8g64_m2_k64(%[[H]],
// CHECK: %[[RES:.*]] = call @nibble_gemv_w8a8g64_t16_m2_n64_k64_e{{[0-9a-f]+}}(%[[Q]]#0, {{.*}}, %arg0) :
// CHECK: %[[PB:.*]] = call @nibble_gemv_w4g64_t16_m2_n64_k64_e{{[0-9a-f]+}}(%arg0, %[[WG]], {{.*}}, %arg1) :
// CHECK-NOT: linalg.generic
// CHECK: linalg.add ins(%[[RES]], %[[PB]]
// The SwiGLU kernel: silu(acc) * up[m, n] at the store.
// CHECK: func.func @nibble_gemv_w4g64_t16_m2_n64_k64_e{{.*}}(%{{.*}}: tensor<2x64xf32>, %{{.*}}: tensor<2048xi8>, %{{.*}}: tensor<4x16xf32>, %{{.*}}: tensor<2x64xf32> {bufferization.writable = true}, %{{.*}}: index, %{{.*}}: index, %[[UP:.*]]: tensor<2x64xf32>)
// CHECK: vector.fma
// CHECK: tensor.extract %[[UP]]
// CHECK: math.exp
// CHECK: arith.mulf

// OFF-COUNT-3: linalg.generic
// OFF-NOT: _e{{[0-9a-f]+}}
