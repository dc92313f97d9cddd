// The W8A8 pipeline on stories260K, step by step: SmoothQuant folds its
// scales into the norms and (through grouped-query attention) into v_proj
// and up_proj rows; outlier channels move to a small f16 matmul; weights
// become int8 per channel; activations get calibrated static scales.
// REQUIRES: shared-models
// RUN: quant-calibrate %shared/models/stories260K/stories260K.bin --text %shared/data/tinystories_dev.txt --first-token 4096 --sequences 2 --seq-len 32 --quiet -o %t.stats
// RUN: quant-import %shared/models/stories260K/stories260K.bin --emit-ir --seq-len 4 -o %t.mlir
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin \
// RUN:   --nibble-smooth="stats=%t.stats alpha=0.5" \
// RUN:   --nibble-split-outliers="stats=%t.stats threshold=3" \
// RUN:   --nibble-quantize-weights="format=int8 group=0" \
// RUN:   --nibble-quantize-activations="mode=static stats=%t.stats" \
// RUN:   --mlir-elide-resource-strings-if-larger=16 | FileCheck %s
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin \
// RUN:   --nibble-smooth="stats=%t.stats fold=false" --mlir-elide-resource-strings-if-larger=16 | FileCheck %s --check-prefix=UNFOLDED
// RUN: not quant-opt %t.mlir --nibble-bind-weights=model=%shared/models/stories260K/stories260K.bin \
// RUN:   --nibble-smooth 2>&1 | FileCheck %s --check-prefix=NOSTATS
// RUN: quant-opt --help | FileCheck %s --check-prefix=HELP

// The attention norm's weight is replaced by its smoothed copy.
// CHECK: dense_resource<model.layers.0.input_layernorm.weight.smoothed>
// CHECK: linalg.generic {{.*}}nibble.norm = "model.layers.0.input_layernorm"
// CHECK: nibble.matmul {{.*}}act_format = #nibble.int<8, signed>, act_scale = {{.*}} : f32
// CHECK-SAME: nibble.input_multiplier = dense_resource<model.layers.0.self_attn.q_proj.input_multiplier>
// CHECK-SAME: nibble.linear = "model.layers.0.self_attn.q_proj"
// CHECK-SAME: nibble.smoothing = "smoothquant alpha=0.500000"
// After smoothing, only layer 3's attention input still has channels above
// 3 on this slice.
// CHECK-NOT: nibble.outlier_part
// CHECK: linalg.matmul {{.*}}nibble.outlier_part = "model.layers.3.self_attn.q_proj"
// CHECK-SAME: tensor<64x{{[0-9]+}}xf16>
// CHECK: nibble.matmul {{.*}}act_scale
// CHECK-SAME: nibble.linear = "model.layers.3.self_attn.q_proj"
// CHECK-SAME: nibble.outlier_channels = array<i64:

// UNFOLDED: smooth_inverse_scales
// UNFOLDED-NOT: layernorm.weight.smoothed
// NOSTATS: error: nibble-smooth needs calibration statistics (stats=FILE)
// HELP-DAG: --nibble-smooth
// HELP-DAG: --nibble-split-outliers
// HELP-DAG: --nibble-quantize-activations
