// RUN: quant-opt %s --split-input-file --nibble-drop-in-place-results --nibble-deallocate-temporaries -verify-diagnostics | FileCheck %s

// A generated kernel in destination-passing style returns its destination
// argument (carried through a loop): the result leaves the signature and
// the call site uses the buffer it passed. The kernel's LLVM intrinsic call
// has no declared memory effects, so ownership-based deallocation skips the
// kernel; its scratch buffer is freed at the end of the allocating block.
// The caller's temporary is freed by the ownership analysis.

// CHECK-LABEL: func.func @caller(%{{.*}}: memref<4xf32>) -> memref<4xf32>
// CHECK: %[[TMP:.*]] = memref.alloc() : memref<4xf32>
// CHECK: call @kernel(%{{.*}}, %[[TMP]]) : (memref<4xf32>, memref<4xf32>) -> (){{$}}
// CHECK: memref.copy %[[TMP]], %{{.*}} :
// CHECK: %[[BASE:.*]], %{{.*}}, %{{.*}}, %{{.*}} = memref.extract_strided_metadata %[[TMP]]
// CHECK: bufferization.dealloc ({{.*}}%[[BASE]]{{.*}}) if ({{.*}}) retain
// CHECK-LABEL: func.func @kernel(
// CHECK-SAME: memref<4xf32>) attributes
// CHECK: %[[S:.*]] = memref.alloc() : memref<16xi8>
// CHECK: llvm.call_intrinsic
// CHECK: memref.dealloc %[[S]] : memref<16xi8>
// CHECK-NEXT: return{{$}}
module {
  func.func @caller(%x: memref<4xf32>) -> memref<4xf32> {
    %tmp = memref.alloc() : memref<4xf32>
    %r = call @kernel(%x, %tmp) : (memref<4xf32>, memref<4xf32>) -> memref<4xf32>
    %out = memref.alloc() : memref<4xf32>
    memref.copy %r, %out : memref<4xf32> to memref<4xf32>
    return %out : memref<4xf32>
  }
  func.func @kernel(%x: memref<4xf32>, %y: memref<4xf32>) -> memref<4xf32> attributes {nibble.kernel = "weight-only"} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %scratch = memref.alloc() : memref<16xi8>
    %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%acc = %y) -> (memref<4xf32>) {
      %v = memref.load %x[%i] : memref<4xf32>
      %w = llvm.call_intrinsic "llvm.fabs.f32"(%v) : (f32) -> f32
      memref.store %w, %acc[%i] : memref<4xf32>
      scf.yield %acc : memref<4xf32>
    }
    return %r : memref<4xf32>
  }
}

// -----

// A kernel whose scratch buffer leaves the block that allocates it cannot
// be freed there: an error naming the kernel.
module {
  func.func @kernel(%x: memref<4xf32>) attributes {nibble.kernel = "weight-only"} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %r = scf.for %i = %c0 to %c4 step %c1 iter_args(%a = %x) -> (memref<4xf32>) {
      // expected-error @below {{kernel @kernel: a scratch buffer leaves the block that allocates it}}
      %s = memref.alloc() : memref<4xf32>
      scf.yield %s : memref<4xf32>
    }
    return
  }
}
