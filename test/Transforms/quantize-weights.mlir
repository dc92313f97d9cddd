// nibble-quantize-weights on the bound float IR of a real checkpoint:
// linears become packed nibble.constant + scales + nibble.matmul, the recipe
// picks per-layer settings, and the result still lowers to LLVM.
// REQUIRES: shared-models
// RUN: quant-import %shared/models/stories260K/stories260K.bin --emit-ir --seq-len 4 -o %t.mlir
// RUN: printf '{"rules": [{"match": "^lm_head$", "skip": true}, {"match": "down_proj$", "group": 0, "format": "int8"}, {"match": "v_proj$", "format": "uint4", "symmetric": false}]}' > %t.recipe.json
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin \
// RUN:   --nibble-quantize-weights="method=rtn-mse format=int4 group=32 recipe=%t.recipe.json" \
// RUN:   --mlir-elide-resource-strings-if-larger=16 | FileCheck %s
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin \
// RUN:   --nibble-quantize-weights="recipe=%t.recipe.json" --nibble-reference-to-llvm | FileCheck %s --check-prefix=LLVM
// RUN: not quant-opt %t.mlir --nibble-quantize-weights 2>&1 | FileCheck %s --check-prefix=UNBOUND
// RUN: quant-opt --help | FileCheck %s --check-prefix=HELP

// CHECK: nibble.constant dense_resource<model.layers.0.self_attn.q_proj.codes> : tensor<2048xi8>
// CHECK-SAME: -> !nibble.qtensor<64x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f32>>
// CHECK: nibble.matmul %{{.*}}, %{{.*}} scales(%{{.*}} : tensor<64x2xf32>) {nibble.bits_per_weight = 5.000000e+00 : f64, nibble.linear = "model.layers.0.self_attn.q_proj", nibble.method = "rtn-mse", nibble.weight_error = {{[0-9.eE+-]+}} : f64}
// CHECK: nibble.constant dense_resource<model.layers.0.self_attn.v_proj.codes> : tensor<1024xi8>
// CHECK-SAME: #nibble.int<4, unsigned>, group<1, 32>, scale = f32, zero_point = f32
// CHECK: nibble.matmul {{.*}} zero_points(%{{.*}} : tensor<32x2xf32>) {nibble.bits_per_weight = 6.000000e+00 : f64, nibble.linear = "model.layers.0.self_attn.v_proj"
// CHECK: nibble.constant dense_resource<model.layers.0.mlp.down_proj.codes> : tensor<11008xi8>
// CHECK-SAME: #nibble.int<8, signed>, per_channel<0>, scale = f32
// CHECK: scales(%{{.*}} : tensor<64x1xf32>) {nibble.bits_per_weight = 8.18604{{[0-9]*}} : f64, nibble.input_producer = {{.*}}, nibble.linear = "model.layers.0.mlp.down_proj"
// The skipped lm_head stays a float linalg.matmul.
// CHECK: linalg.matmul {{.*}}{nibble.linear = "lm_head"}

// LLVM: llvm.func @forward

// UNBOUND: error: the weight dense_resource<model.layers.0.self_attn.q_proj.weight> has no data: bind it first (nibble-bind-weights)

// HELP: --nibble-quantize-weights
// HELP: --method=<string>
// HELP: --recipe=<string>
