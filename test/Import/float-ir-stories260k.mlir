// The float IR of a real llama2.c checkpoint: quant-opt parses, verifies and
// prints it; the weights are referenced by name, never pasted into the text.
// REQUIRES: shared-models
// RUN: quant-import %shared/models/stories260K/stories260K.bin --emit-ir --seq-len 4 -o %t.mlir
// RUN: quant-opt %t.mlir | FileCheck %s
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin --nibble-reference-to-llvm | FileCheck %s --check-prefix=LLVM
// RUN: not quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/tinystories-656k 2>&1 | FileCheck %s --check-prefix=WRONG

// The transposed-B map of linalg.matmul over [out, in] weights.
// CHECK: #[[TB:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// Interleaved RoPE pairs (2i, 2i+1): the partner of element p is 1 - p.
// CHECK: affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, -d3 + 1)>
// CHECK: module attributes {nibble.model = {dim = 64 : i64, format = "llama2c"
// CHECK-SAME: heads = 8 : i64, hidden_dim = 172 : i64, kv_heads = 4 : i64, layers = 5 : i64
// CHECK-SAME: rope_pairing = "interleaved"
// CHECK: func.func @forward(%{{.*}}: tensor<4xi32> {nibble.name = "tokens"}) -> tensor<4x512xf32>
// CHECK: arith.constant dense_resource<model.embed_tokens.weight> : tensor<512x64xf32>
// RoPE tables: cos and sin of float(pos) * inv_freq, computed once.
// CHECK: math.cos
// CHECK: math.sin
// CHECK: dense_resource<model.layers.0.self_attn.q_proj.weight> : tensor<64x64xf32>
// CHECK: linalg.matmul indexing_maps = [#{{.*}}, #[[TB]], #{{.*}}] {nibble.linear = "model.layers.0.self_attn.q_proj"}
// CHECK: linalg.matmul {{.*}}{nibble.input_producer = {block = 8 : i64, linear = "model.layers.0.self_attn.v_proj", repeat = 2 : i64}, nibble.linear = "model.layers.0.self_attn.o_proj"}
// CHECK: linalg.matmul {{.*}}{nibble.input_producer = {block = 1 : i64, linear = "model.layers.4.mlp.up_proj", repeat = 1 : i64}, nibble.linear = "model.layers.4.mlp.down_proj"}
// CHECK: linalg.matmul {{.*}}{nibble.linear = "lm_head"}
// CHECK-SAME: -> tensor<4x512xf32>
// CHECK-NOT: dialect_resources

// The bound weights travel into the LLVM module as constant globals.
// LLVM: llvm.mlir.global private constant {{.*}}(dense_resource<model.layers.0.self_attn.q_proj.weight> : tensor<64x64xf32>)
// LLVM: llvm.func @forward

// WRONG: error: dense_resource<model.embed_tokens.weight>: the IR expects tensor<512x64xf32> but {{.*}}model.safetensors holds [2048, 128] F32
