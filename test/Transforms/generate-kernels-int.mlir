// Integer-dot kernels (W4A8, W8A8): the target's features pick the
// instruction. vpdpbusd (u8 x s8) on AVX-512 VNNI (zmm) and AVX-VNNI (ymm,
// VEX), with offset-binary weights; NEON sdot with dotprod; nothing on
// x86-64-v4 (AVX-512 without VNNI) or plain aarch64, which keep the
// reference lowering with a remark. Never vpdpbssd (Zen 4 lacks it).
// These are the one-row kernels (N = 8 is not a multiple of zmm's 16
// lanes; row-tile=false on the narrower targets); the row-tiled ones are
// in generate-kernels-int-rowtile.mlir.
// RUN: quant-opt %s --nibble-generate-kernels=target=znver4 | FileCheck %s
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" \
// RUN:   --nibble-parallelize-kernel-calls="min-work=1 align=1" | FileCheck %s --check-prefix=PAR
// PAR-COUNT-3: llvm.call @__nibble_parallel_for(
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=znver4" | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=znver4 | FileCheck %s --check-prefix=ZEN4
// RUN: quant-opt %s --nibble-generate-kernels="target=alderlake row-tile=false" --nibble-reference-to-llvm \
// RUN:   | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=alderlake | FileCheck %s --check-prefix=AVXVNNI
// RUN: quant-opt %s --nibble-reference-to-llvm="kernel-target=x86-64-v4" 2>%t.err | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=x86_64-unknown-linux-gnu -mcpu=x86-64-v4 | FileCheck %s --check-prefix=V4
// RUN: FileCheck %s --check-prefix=V4-REMARK < %t.err
// RUN: quant-opt %s --nibble-generate-kernels="target=aarch64:neoverse-n1 row-tile=false" --nibble-reference-to-llvm \
// RUN:   | mlir-translate --mlir-to-llvmir \
// RUN:   | llc -O3 -mtriple=aarch64-unknown-linux-gnu -mcpu=neoverse-n1 | FileCheck %s --check-prefix=SDOT
// RUN: quant-opt %s --nibble-generate-kernels="target=aarch64:neoverse-n1 row-tile=false" | FileCheck %s --check-prefix=SDOT-IR
// RUN: quant-opt %s --nibble-generate-kernels=target=aarch64 2>&1 | FileCheck %s --check-prefix=NODOT

!w4 = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32>>
!w8 = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<8, signed>, per_channel<0>, scale = f32>>
!g32 = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f32>>

func.func @f(%x: tensor<2x256xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
  %w4 = nibble.constant dense<17> : tensor<1024xi8> -> !w4
  %s4 = arith.constant dense<0.5> : tensor<8x2xf32>
  %y4 = nibble.matmul %x, %w4 scales(%s4 : tensor<8x2xf32>) {act_format = #nibble.int<8, signed>, nibble.linear = "q"} : tensor<2x256xf32>, !w4 -> tensor<2x8xf32>
  // Same input, same grouping: the quantized activations are shared.
  %k4 = nibble.matmul %x, %w4 scales(%s4 : tensor<8x2xf32>) {act_format = #nibble.int<8, signed>, nibble.linear = "k"} : tensor<2x256xf32>, !w4 -> tensor<2x8xf32>
  %w8 = nibble.constant dense<-3> : tensor<2048xi8> -> !w8
  %s8 = arith.constant dense<0.25> : tensor<8x1xf32>
  %y8 = nibble.matmul %x, %w8 scales(%s8 : tensor<8x1xf32>) {act_format = #nibble.int<8, signed>, act_scale = 0.5 : f32} : tensor<2x256xf32>, !w8 -> tensor<2x8xf32>
  // Groups of 32 are narrower than the zmm kernel's 128-code block.
  %g = nibble.constant dense<17> : tensor<1024xi8> -> !g32
  %sg = arith.constant dense<0.5> : tensor<8x8xf32>
  %yg = nibble.matmul %x, %g scales(%sg : tensor<8x8xf32>) {act_format = #nibble.int<8, signed>} : tensor<2x256xf32>, !g32 -> tensor<2x8xf32>
  return %y4, %k4, %y8, %yg : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
}

// CHECK-LABEL: func.func @f
// CHECK: %[[Q:.*]]:3 = call @nibble_quantize_rows_i8g128_m2_k256(%arg0, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK: arith.constant {nibble.scheme = #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32, layout = "int4-interleave128-offset">} dense_resource<q.packed>
// CHECK: call @nibble_gemv_w4a8g128_m2_n8_k256(%[[Q]]#0, %[[Q]]#2, %[[Q]]#1,
// CHECK-NOT: call @nibble_quantize_rows_i8g128
// CHECK: call @nibble_gemv_w4a8g128_m2_n8_k256(%[[Q]]#0, %[[Q]]#2, %[[Q]]#1,
// CHECK: layout = "int8-dense-offset"
// CHECK: call @nibble_gemv_w8a8g256_m2_n8_k256
// CHECK: nibble.matmul {{.*}}group<1, 32>
// CHECK: func.func @nibble_gemv_w4a8g128_m2_n8_k256({{.*}}) -> tensor<2x8xf32> attributes {llvm.emit_c_interface, nibble.kernel = "w4a8", nibble.row_range = 38 : i64, nibble.row_work = 512 : i64}
// CHECK: arith.andi {{.*}} : vector<64xi8>
// CHECK: arith.shrui {{.*}} : vector<64xi8>
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"({{.*}}) : (vector<16xi32>, vector<64xi8>, vector<64xi8>) -> vector<16xi32>
// CHECK: func.func @nibble_quantize_rows_i8g128_m2_k256
// CHECK: math.roundeven
// The quantizer for the static scale of the int8 matmul (group = K).
// CHECK: func.func @nibble_quantize_rows_i8g256_m2_k256

// ZEN4-LABEL: nibble_gemv_w4a8g128_m2_n8_k256:
// ZEN4: vpdpbusd {{.*}}zmm
// ZEN4: .Lfunc_end
// ZEN4-NOT: vpdpbssd

// AVXVNNI-LABEL: nibble_gemv_w4a8g128_m2_n8_k256:
// AVXVNNI-NOT: zmm
// AVXVNNI: {vex} vpdpbusd {{.*}}ymm
// AVXVNNI: .Lfunc_end

// V4-NOT: vpdpbusd
// V4-NOT: vpdpbssd
// V4-REMARK: remark: target x86_64-unknown-linux-gnu x86-64-v4 has no 8-bit dot product

// SDOT-IR: layout = "int4-interleave32"
// SDOT-IR: llvm.call_intrinsic "llvm.aarch64.neon.sdot.v4i32.v16i8"
// SDOT-LABEL: nibble_gemv_w4a8g128_m2_n8_k256:
// SDOT: sdot v{{[0-9]+}}.4s, v{{[0-9]+}}.16b, v{{[0-9]+}}.16b

// NODOT: remark: target aarch64-unknown-linux-gnu generic has no 8-bit dot product
// NODOT-NOT: call @nibble_gemv_w4a8
