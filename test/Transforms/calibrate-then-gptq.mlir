// The separate steps meet at files: calibrate on a stated slice, then GPTQ
// with the recorded Hessians.
// REQUIRES: shared-models
// RUN: quant-calibrate %shared/models/stories260K/stories260K.bin --text %shared/data/tinystories_dev.txt --first-token 128 --sequences 2 --seq-len 32 --quiet -o %t.stats | FileCheck %s --check-prefix=CAL
// RUN: quant-import %shared/models/stories260K/stories260K.bin --emit-ir --seq-len 4 -o %t.mlir
// RUN: printf '{"rules": [{"match": "down_proj$", "group": 0}]}' > %t.recipe.json
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin \
// RUN:   --nibble-quantize-weights="method=gptq format=int3 group=32 act-order=true stats=%t.stats recipe=%t.recipe.json" \
// RUN:   --mlir-elide-resource-strings-if-larger=16 | FileCheck %s
// RUN: not quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin \
// RUN:   --nibble-quantize-weights="method=gptq stats=%t.missing" 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not quant-calibrate %shared/models/stories260K/stories260K.bin --text %shared/data/tinystories_dev.txt --first-token 99999999 -o %t.never 2>&1 | FileCheck %s --check-prefix=RANGE
// RUN: not ls %t.never

// CAL: wrote {{.*}}: 36 layers, 64 tokens from tokens [128, 192) of tinystories_dev.txt
// CHECK: nibble.matmul {{.*}} {nibble.bits_per_weight = {{.*}}, nibble.linear = "model.layers.0.self_attn.q_proj", nibble.method = "gptq", nibble.weight_error = {{.*}}}
// CHECK-SAME: #nibble.int<3, signed>, group<1, 32>
// CHECK: nibble.linear = "lm_head", nibble.method = "gptq"
// MISSING: error: cannot open {{.*}}.missing
// RANGE: quant-calibrate: error: {{.*}}tinystories_dev.txt: calibration windows need tokens [99999999, {{[0-9]+}}) but the text has {{[0-9]+}} tokens
