// Bad inputs get one clear line naming the file and what was expected.
// RUN: not quant-import %t.missing --describe 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: quant-import: error: cannot open {{.*}}.missing: no such file or directory

// RUN: printf 'abc' > %t.short.bin
// RUN: not quant-import %t.short.bin --describe 2>&1 | FileCheck %s --check-prefix=SHORT
// SHORT: quant-import: error: {{.*}}short.bin: file is 3 bytes, too short for the 28-byte llama2.c header

// RUN: rm -rf %t.dir && mkdir -p %t.dir && printf '{"hidden_size": 8}' > %t.dir/config.json
// RUN: not quant-import %t.dir --describe 2>&1 | FileCheck %s --check-prefix=CONFIG
// CONFIG: quant-import: error: {{.*}}config.json: required field 'intermediate_size' is missing

// RUN: not quant-opt %s --nibble-bind-weights 2>&1 | FileCheck %s --check-prefix=NOPATH
// NOPATH: error: nibble-bind-weights needs model=PATH
module {}
