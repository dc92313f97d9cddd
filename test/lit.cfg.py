# -*- Python -*-
# lit configuration for Nibble's FileCheck tests.

import os
import shutil

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "NIBBLE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.nibble_obj_root, "test")
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit",
                   "Inputs", "docs"]

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

tool_dirs = [config.nibble_tools_dir, config.llvm_tools_dir]
llvm_config.add_tool_substitutions(["quant-opt", "quant-import", "quant-calibrate",
                                    "quant-compile", "quant-run",
                                    "mlir-runner"],
                                   tool_dirs)

runner_libs = ",".join(os.path.join(config.llvm_lib_dir, lib) for lib in
                       ["libmlir_runner_utils.so", "libmlir_c_runner_utils.so"])
config.substitutions.append(("%runner_libs", runner_libs))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))

# The real models in ../shared (or $NIBBLE_SHARED_DIR): tests that read them
# say `REQUIRES: shared-models` and are reported UNSUPPORTED without them.
shared_dir = os.environ.get("NIBBLE_SHARED_DIR") or os.path.join(
    config.nibble_src_root, "..", "shared")
if os.path.isdir(os.path.join(shared_dir, "models")):
    config.available_features.add("shared-models")
    config.substitutions.append(("%shared", os.path.abspath(shared_dir)))
else:
    lit_config.note("shared models not found at %s: tests that need them "
                    "are unsupported" % shared_dir)

# libcuda.so.1 over the PTX emulator (tools/cuda-emulator): CUDA bundles run
# their own kernels on the CPU with LD_LIBRARY_PATH=%cuda_emulator.
config.substitutions.append(("%cuda_emulator", os.path.join(
    config.nibble_obj_root, "lib", "cuda-emulator")))

if shutil.which("ptxas"):
    config.available_features.add("ptxas")

# A machine whose CUDA driver loads: CUDA bundles run there instead of
# failing with the no-driver message.
try:
    import ctypes
    ctypes.CDLL("libcuda.so.1")
    config.available_features.add("cuda-driver")
except OSError:
    pass

# AArch64 kernels run under qemu-user (Debian qemu-user), linked freestanding
# with clang-22 and ld.lld: no aarch64 libc is needed.
if shutil.which("qemu-aarch64") and shutil.which("clang-22") and (
        shutil.which("ld.lld") or shutil.which("ld.lld-22")):
    config.available_features.add("qemu-aarch64")
else:
    lit_config.note("qemu-aarch64, clang-22 or ld.lld not found: the "
                    "aarch64 run test is unsupported")
