// RUN: quant-opt %s --nibble-generate-gpu-decoder-kernels="chip=sm_80 vocab=512 dim=64 hidden=172 heads=8 kv-heads=4 head-dim=8 context=16 layers=2 rope=interleaved" | FileCheck %s
// RUN: quant-opt %s --nibble-generate-gpu-decoder-kernels="chip=sm_90 vocab=512 dim=64 hidden=172 heads=8 kv-heads=4 head-dim=64 context=16 layers=2" --nibble-gpu-to-ptx="chip=sm_90 output=%t.ptx" -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx
// RUN: not quant-opt %s --nibble-generate-gpu-decoder-kernels="vocab=512 dim=64 hidden=172 heads=8 kv-heads=3 head-dim=8 context=16 layers=2" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not quant-opt %s --nibble-generate-gpu-decoder-kernels="vocab=512 dim=64 hidden=172 heads=8 kv-heads=4 head-dim=8 context=16 layers=2 rope=neox" 2>&1 | FileCheck %s --check-prefix=ROPE

// The non-matmul kernels of a decode step, one token, f32.
module {}

// CHECK: gpu.module @nibble_gpu attributes {nibble.chip = "sm_80"}
// CHECK: gpu.func @nibble_embed_v512_d64(%{{.*}}: memref<32768xf32>, %{{.*}}: memref<64xf32>, %{{.*}}: i32) kernel
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>
// CHECK-SAME: nibble.grid = array<i64: 1, 1, 1>
// One warp: a butterfly sum of squares, sqrt.rn.
// CHECK: gpu.func @nibble_rmsnorm_d64(
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"
// (8 + 4) heads x 4 pairs = 48 threads; caches 2 x 16 x 4 x 8 floats.
// CHECK: gpu.func @nibble_rope_kv_h8_kv4_hd8_s16_l2_interleaved({{.*}}memref<1024xf32>, {{.*}}memref<1024xf32>, %{{.*}}: i32, %{{.*}}: i32) kernel
// CHECK-SAME: nibble.grid = array<i64: 1, 1, 1>
// One warp per query head; head_dim 8 < 32 lanes: lanes past it are masked.
// CHECK: gpu.func @nibble_attention_h8_kv4_hd8_s16_l2(
// CHECK-SAME: known_block_size = array<i32: 32, 1, 1>
// CHECK-SAME: nibble.grid = array<i64: 8, 1, 1>
// CHECK: arith.minui
// CHECK: scf.for
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: arith.cmpf ogt
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"
// CHECK: gpu.func @nibble_swiglu_f172(
// CHECK-SAME: nibble.grid = array<i64: 1, 1, 1>
// CHECK: gpu.func @nibble_add_d64(

// PTX-DAG: .entry nibble_attention_h8_kv4_hd64_s16_l2(
// PTX-DAG: ex2.approx.f32
// PTX-DAG: sqrt.rn.f32
// PTX-DAG: shfl.sync.bfly.b32
// PTX-NOT: __nv_

// BAD: GPU decoder kernels: heads (8) must be a multiple of kv_heads (3)
// ROPE: rope 'neox': expected interleaved or rotate-half
