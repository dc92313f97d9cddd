// RUN: quant-opt %s --split-input-file --nibble-drop-in-place-results --nibble-externalize-weights="min-bytes=64" -verify-diagnostics | FileCheck %s

// Results that are the updated arguments leave the signature; constants of
// at least 64 bytes move to the weights blob (identical contents once, at
// 64-byte aligned offsets) and are read through a trailing weights
// argument; small constants stay in the code.

// CHECK-LABEL: module attributes {nibble.weights = {bytes = 192 : i64, entries = [{bytes = 64 : i64, global = @big_a, offset = 0 : i64}, {bytes = 128 : i64, global = @big_b, offset = 64 : i64}, {bytes = 64 : i64, global = @big_a_twin, offset = 0 : i64}]}}
// CHECK-NOT: memref.global "private" constant @big
// CHECK: memref.global "private" constant @small
// CHECK: memref.global "private" constant @channels : memref<32xindex>
// CHECK: func.func @step(%{{.*}}: memref<16xf32>, %[[W:.*]]: memref<?xi8> {nibble.name = "weights"}) attributes
// CHECK-DAG: %[[O64:.*]] = arith.constant 64 : index
// CHECK-DAG: %[[O0:.*]] = arith.constant 0 : index
// CHECK-DAG: memref.view %[[W]][%[[O0]]][] : memref<?xi8> to memref<16xf32>
// CHECK-DAG: memref.view %[[W]][%[[O64]]][] : memref<?xi8> to memref<32xf32>
// CHECK-DAG: memref.get_global @small
// CHECK: return{{$}}
module {
  memref.global "private" constant @big_a : memref<16xf32> = dense<1.0>
  memref.global "private" constant @big_b : memref<32xf32> = dense<2.0>
  memref.global "private" constant @big_a_twin : memref<16xf32> = dense<1.0>
  memref.global "private" constant @small : memref<4xf32> = dense<3.0>
  // index elements have no byte width here: they stay in the code.
  memref.global "private" constant @channels : memref<32xindex> = dense<7>
  func.func @step(%c: memref<16xf32>) -> memref<16xf32> attributes {nibble.in_place_results} {
    %a = memref.get_global @big_a : memref<16xf32>
    %b = memref.get_global @big_b : memref<32xf32>
    %t = memref.get_global @big_a_twin : memref<16xf32>
    %s = memref.get_global @small : memref<4xf32>
    %ch = memref.get_global @channels : memref<32xindex>
    memref.copy %a, %c : memref<16xf32> to memref<16xf32>
    memref.copy %t, %c : memref<16xf32> to memref<16xf32>
    %sub = memref.subview %b[0] [16] [1] : memref<32xf32> to memref<16xf32, strided<[1]>>
    memref.copy %sub, %c : memref<16xf32, strided<[1]>> to memref<16xf32>
    %v = memref.subview %c[0] [4] [1] : memref<16xf32> to memref<4xf32, strided<[1]>>
    memref.copy %s, %v : memref<4xf32> to memref<4xf32, strided<[1]>>
    return %c : memref<16xf32>
  }
}

// -----

func.func @copied(%c: memref<4xf32>) -> memref<4xf32> attributes {nibble.in_place_results} {
  %n = memref.alloc() : memref<4xf32>
  // expected-error @+1 {{@copied: result 0 is not updated in place in an argument}}
  return %n : memref<4xf32>
}

// -----

memref.global "private" constant @w : memref<32xf32> = dense<1.0>
func.func private @kernel(%c: memref<32xf32>) {
  // expected-error @+1 {{weight @w is read outside a public function}}
  %w = memref.get_global @w : memref<32xf32>
  memref.copy %w, %c : memref<32xf32> to memref<32xf32>
  return
}
