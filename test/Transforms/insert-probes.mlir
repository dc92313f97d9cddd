// RUN: quant-opt %s --nibble-insert-probes | FileCheck %s
// RUN: quant-opt %s --nibble-insert-probes="match=^b$" | FileCheck %s --check-prefix=MATCH
// RUN: quant-opt %s --nibble-insert-probes --nibble-lower-to-linalg="probes=call" | FileCheck %s --check-prefix=CALL
// RUN: quant-opt %s --nibble-insert-probes --nibble-lower-to-linalg | FileCheck %s --check-prefix=DROP
// RUN: not quant-opt %s --nibble-lower-to-linalg="probes=maybe" 2>&1 | FileCheck %s --check-prefix=BAD

// Two linears reading %x and one reading the first's output.
func.func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %w = arith.constant dense<1.0> : tensor<4x4xf32>
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x4xf32>
  %acc = linalg.fill ins(%z : f32) outs(%e : tensor<2x4xf32>) -> tensor<2x4xf32>
  %a = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] {nibble.linear = "a"} ins(%x, %w : tensor<2x4xf32>, tensor<4x4xf32>) outs(%acc : tensor<2x4xf32>) -> tensor<2x4xf32>
  %b = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] {nibble.linear = "b"} ins(%a, %w : tensor<2x4xf32>, tensor<4x4xf32>) outs(%acc : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %b : tensor<2x4xf32>
}

// CHECK: func.func @f(%[[X:.*]]: tensor<2x4xf32>)
// CHECK: nibble.observe "a" %[[X]] : tensor<2x4xf32>
// CHECK: %[[A:.*]] = linalg.matmul {{.*}}nibble.linear = "a"
// CHECK: nibble.observe "b" %[[A]] : tensor<2x4xf32>
// CHECK: linalg.matmul {{.*}}nibble.linear = "b"

// MATCH-NOT: nibble.observe "a"
// MATCH: nibble.observe "b"

// CALL: module attributes {nibble.probes = ["a", "b"]}
// CALL: func.func private @nibble_observe_f32(i64, tensor<*xf32> {bufferization.access = "read"})
// CALL: %[[ID0:.*]] = arith.constant 0 : i64
// CALL: %[[C0:.*]] = tensor.cast %{{.*}} : tensor<2x4xf32> to tensor<*xf32>
// CALL: call @nibble_observe_f32(%[[ID0]], %[[C0]])
// CALL: arith.constant 1 : i64
// CALL: call @nibble_observe_f32

// DROP-NOT: nibble.observe
// DROP-NOT: nibble_observe_f32

// BAD: error: probes must be drop or call, got 'maybe'
