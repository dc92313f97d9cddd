// RUN: quant-opt %s --nibble-parallelize-kernel-calls="min-work=65536 align=16" | FileCheck %s

// A whole-rows call of a generated kernel (rows x work >= min-work) becomes a
// call of the dispatcher __nibble_parallel_for with a task over one row
// range and a record of the other arguments in the caller's entry block; a
// small call and a call over a partial range stay as they are. The
// dispatcher calls the runtime through the exported hook the runtime sets
// after loading the code, or runs the task over all rows when it is unset.

// CHECK-LABEL: llvm.func @step(
// CHECK: %[[REC:.*]] = llvm.alloca %{{.*}} x !llvm.struct<(ptr, i64, f32)> {alignment = 16 : i64}
// CHECK: llvm.store %{{.*}}, %{{.*}} : !llvm.ptr, !llvm.ptr
// CHECK: llvm.store %{{.*}}, %{{.*}} : i64, !llvm.ptr
// CHECK: llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr
// CHECK: %[[TASK:.*]] = llvm.mlir.addressof @nibble_gemv_x_rows : !llvm.ptr
// CHECK: llvm.call @__nibble_parallel_for(%[[TASK]], %[[REC]], %{{.*}}, %{{.*}}) : (!llvm.ptr, !llvm.ptr, i64, i64) -> ()
// CHECK: llvm.call @nibble_gemv_x(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (!llvm.ptr, i64, i64, i64, f32) -> ()
// CHECK: llvm.call @nibble_gemv_x(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (!llvm.ptr, i64, i64, i64, f32) -> ()
// CHECK-NOT: nibble_parallel_for
// CHECK: llvm.return
// CHECK: llvm.mlir.global external @nibble_parallel_for_hook() {addr_space = 0 : i32} : !llvm.ptr {
// CHECK-NEXT: %[[Z:.*]] = llvm.mlir.zero : !llvm.ptr
// CHECK-NEXT: llvm.return %[[Z]] : !llvm.ptr
// CHECK-LABEL: llvm.func internal @__nibble_parallel_for(
// CHECK-SAME: %[[T:.*]]: !llvm.ptr, %[[R:.*]]: !llvm.ptr, %[[N:.*]]: i64, %[[AL:.*]]: i64)
// CHECK: %[[H:.*]] = llvm.load %{{.*}} : !llvm.ptr -> !llvm.ptr
// CHECK: llvm.cond_br %{{.*}}, ^[[SERIAL:.*]], ^[[POOL:.*]]
// CHECK: ^[[SERIAL]]:
// CHECK: llvm.call %[[T]](%[[R]], %{{.*}}, %[[N]]) : !llvm.ptr, (!llvm.ptr, i64, i64) -> ()
// CHECK: ^[[POOL]]:
// CHECK: llvm.call %[[H]](%[[T]], %[[R]], %[[N]], %[[AL]]) : !llvm.ptr, (!llvm.ptr, !llvm.ptr, i64, i64) -> ()
// CHECK-LABEL: llvm.func @nibble_gemv_x_rows(
// CHECK-SAME: %[[CTX:.*]]: !llvm.ptr, %[[B:.*]]: i64, %[[E:.*]]: i64)
// CHECK: %[[A0:.*]] = llvm.load %{{.*}} : !llvm.ptr -> !llvm.ptr
// CHECK: %[[A1:.*]] = llvm.load %{{.*}} : !llvm.ptr -> i64
// CHECK: %[[A2:.*]] = llvm.load %{{.*}} : !llvm.ptr -> f32
// CHECK: llvm.call @nibble_gemv_x(%[[A0]], %[[A1]], %[[B]], %[[E]], %[[A2]])
module {
  llvm.func @nibble_gemv_x(%a: !llvm.ptr, %b: i64, %n0: i64, %n1: i64, %c: f32) attributes {nibble.kernel = "weight-only", nibble.row_range = 2 : i64, nibble.row_work = 4096 : i64} {
    llvm.return
  }
  llvm.func @step(%p: !llvm.ptr, %f: f32) {
    %c0 = llvm.mlir.constant(0 : index) : i64
    %c8 = llvm.mlir.constant(8 : index) : i64
    %c256 = llvm.mlir.constant(256 : index) : i64
    %c7 = llvm.mlir.constant(7 : i64) : i64
    llvm.call @nibble_gemv_x(%p, %c7, %c0, %c256, %f) : (!llvm.ptr, i64, i64, i64, f32) -> ()
    llvm.call @nibble_gemv_x(%p, %c7, %c0, %c8, %f) : (!llvm.ptr, i64, i64, i64, f32) -> ()
    llvm.call @nibble_gemv_x(%p, %c7, %c8, %c256, %f) : (!llvm.ptr, i64, i64, i64, f32) -> ()
    llvm.return
  }
}
