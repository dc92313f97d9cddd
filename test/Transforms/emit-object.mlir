// nibble-compile: nibble IR to machine code for a named target, as an
// object file or a shared library, written atomically.
// RUN: rm -rf %t && mkdir -p %t
// RUN: quant-opt %s --nibble-compile="target=znver4 output=%t/k.o" -o /dev/null
// RUN: llvm-readelf -h %t/k.o | FileCheck %s --check-prefix=OBJ
// RUN: llvm-objdump -d --no-show-raw-insn %t/k.o | FileCheck %s --check-prefix=ZEN4
// RUN: quant-opt %s --nibble-compile="target=x86-64-v4 output=%t/v4.o" -o /dev/null 2>/dev/null
// RUN: llvm-objdump -d %t/v4.o | FileCheck %s --check-prefix=V4
// RUN: quant-opt %s --nibble-compile="target=aarch64:neoverse-n1 output=%t/k.so kind=shared" -o /dev/null
// RUN: llvm-readelf -h --dyn-syms %t/k.so | FileCheck %s --check-prefix=SO
// RUN: not quant-opt %s --nibble-compile="target=znver4 output=%t/k2.o kind=archive" -o /dev/null 2>&1 | FileCheck %s --check-prefix=KIND
// RUN: not quant-opt %s --nibble-compile="target=znver4 output=%t/missing/k.o" -o /dev/null 2>&1 | FileCheck %s --check-prefix=DIR
// RUN: not quant-opt %s --nibble-emit-object="output=%t/k3.o" -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOTLLVM
// No partial or temporary files are left behind by the failures.
// RUN: ls %t | FileCheck %s --check-prefix=FILES

!w4 = !nibble.qtensor<8x256, #nibble.scheme<#nibble.int<4, signed>, group<1, 128>, scale = f32>>
func.func @forward(%x: tensor<1x256xf32>) -> tensor<1x8xf32> attributes {llvm.emit_c_interface} {
  %w4 = nibble.constant dense<17> : tensor<1024xi8> -> !w4
  %s4 = arith.constant dense<0.5> : tensor<8x2xf32>
  %y4 = nibble.matmul %x, %w4 scales(%s4 : tensor<8x2xf32>) {act_format = #nibble.int<8, signed>} : tensor<1x256xf32>, !w4 -> tensor<1x8xf32>
  return %y4 : tensor<1x8xf32>
}

// OBJ: Type: REL (Relocatable file)
// OBJ: Machine: Advanced Micro Devices X86-64
// ZEN4: <nibble_gemv_w4a8g128_m1_n8_k256>:
// ZEN4: vpdpbusd {{.*}}zmm
// V4-NOT: vpdpbusd
// SO: Type: DYN (Shared object file)
// SO: Machine: AArch64
// SO: _mlir_ciface_forward
// KIND: error: nibble-emit-object: kind must be 'object' or 'shared', not 'archive'
// DIR: error: nibble-emit-object: cannot create a temporary file next to '{{.*}}missing/k.o'
// NOTLLVM: error: nibble-emit-object: the module is not fully in the LLVM dialect
// FILES: k.o
// FILES-NEXT: k.so
// FILES-NEXT: v4.o
// FILES-NOT: {{.}}
