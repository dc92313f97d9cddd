// 8-bit group scales: MXFP4 (e2m1 codes, power-of-two E8M0 scale per group
// of 32) and NVFP4-style (e2m1, groups of 16, e4m3 scales that are a
// per-tensor-scaled tensor of their own). The compiled model must agree with
// the float one as closely as the f32-scale scheme does (checked in
// BundleEndToEndTest); here: the IR, the stored bits and the errors.
// RUN: rm -rf %t.model && quant-import %t.model --synthetic > /dev/null
// RUN: quant-import %t.model/model.bin --emit-ir --seq-len 2 -o %t.mlir
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%t.model/model.bin \
// RUN:   --nibble-quantize-weights="format=e2m1fn group=32 scale=e8m0" \
// RUN:   --mlir-elide-resource-strings-if-larger=16 | FileCheck %s --check-prefix=MX
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%t.model/model.bin \
// RUN:   --nibble-quantize-weights="format=e2m1fn group=16 scale=e4m3" \
// RUN:   --mlir-elide-resource-strings-if-larger=16 | FileCheck %s --check-prefix=NV
// RUN: quant-opt %t.mlir --nibble-bind-weights=model=%t.model/model.bin \
// RUN:   --nibble-quantize-weights="format=e2m1fn group=16 scale=e4m3" \
// RUN:   --nibble-lower-to-linalg | FileCheck %s --check-prefix=LOWERED
// RUN: not quant-opt %t.mlir --nibble-bind-weights=model=%t.model/model.bin \
// RUN:   --nibble-quantize-weights="format=uint4 symmetric=false scale=e8m0" 2>&1 | FileCheck %s --check-prefix=ASYM
// RUN: not quant-opt %t.mlir --nibble-bind-weights=model=%t.model/model.bin \
// RUN:   --nibble-quantize-weights="scale=e5m2" 2>&1 | FileCheck %s --check-prefix=BAD

// MX: nibble.constant dense_resource<model.layers.0.self_attn.q_proj.codes>
// MX-SAME: -> !nibble.qtensor<{{[0-9]+}}x{{[0-9]+}}, #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f8E8M0FNU>>
// MX: arith.constant dense_resource<model.layers.0.self_attn.q_proj.scales> : tensor<{{[0-9]+}}x{{[0-9]+}}xf8E8M0FNU>
// MX: nibble.matmul {{.*}} scales(%{{.*}} : tensor<{{.*}}xf8E8M0FNU>) {nibble.bits_per_weight = 4.250000e+00 : f64, nibble.linear = "model.layers.0.self_attn.q_proj", nibble.method = "rtn", nibble.weight_error = {{[0-9.eE+-]+}} : f64}

// NV: nibble.constant dense_resource<model.layers.0.self_attn.q_proj.scales>
// NV-SAME: -> !nibble.qtensor<{{[0-9]+}}x{{[0-9]+}}, #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>
// NV: arith.constant dense_resource<model.layers.0.self_attn.q_proj.scale_scales> : tensor<1x1xf32>
// 4 + 8/16 bits, plus the one f32 tensor scale over 64 x 64 weights.
// NV: nibble.matmul {{.*}} scales(%{{.*}} : !nibble.qtensor<{{.*}}e4m3fn{{.*}}>) scale_scales(%{{.*}} : tensor<1x1xf32>) {nibble.bits_per_weight = 4.5078125 : f64

// LOWERED-NOT: nibble.matmul
// LOWERED: func.func

// ASYM: e8m0 scales need a symmetric scheme (no zero points)
// BAD: unknown scale storage 'e5m2' (expected f32, e8m0, e4m3)
