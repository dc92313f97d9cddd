//===- Passes.td - nibble transformation passes --------------------------===//

#ifndef NIBBLE_PASSES_TD
#define NIBBLE_PASSES_TD

include "mlir/Pass/PassBase.td"

def NibbleConvertFromQuant : Pass<"nibble-convert-from-quant", "func::FuncOp"> {
  let summary = "Convert upstream quant.qcast/dcast on !quant.uniform into nibble ops";
  let description = [{
    Rewrites `quant.qcast` and `quant.dcast` whose quantized type is
    `!quant.uniform` (per tensor, per axis or sub-channel blocks, full
    integer storage range) into `nibble.quantize` / `nibble.dequantize`. The
    scales and zero points that upstream keeps inside the type become
    `arith.constant` SSA tensors:

    `tensor<4x8x!quant.uniform<i8:f32, 0.5:3>>` ->
    `!nibble.qtensor<4x8, #nibble.scheme<#nibble.int<8, signed>, per_tensor, scale = f32, zero_point = i32>>`
    with scales `dense<0.5> : tensor<1x1xf32>` and zero points
    `dense<3> : tensor<1x1xi32>` (a scheme without zero points when every
    zero point is 0). Types that cannot be expressed (narrow storage ranges,
    quantized values crossing block boundaries) are reported as errors.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::nibble::NibbleDialect"];
}

def NibbleConvertToQuant : Pass<"nibble-convert-to-quant", "func::FuncOp"> {
  let summary = "Convert nibble quantize/dequantize with constant scales into upstream quant ops";
  let description = [{
    The inverse of `nibble-convert-from-quant` for the schemes upstream can
    express: integer formats (MLIR 22's `!quant.uniform` stores integers
    only), f32 scales given by `arith.constant`, integer zero points given by
    `arith.constant` or none, per tensor / per channel / groups / 2-D blocks.
    A `nibble.quantize` whose every user is a `nibble.dequantize` with the
    same scales becomes `quant.qcast` + `quant.dcast`. Anything else is left
    alone with a remark explaining why (unless `strict`, then it is an error).
  }];
  let options = [
    Option<"strict", "strict", "bool", /*default=*/"false",
           "Fail on ops that cannot be expressed with !quant.uniform">,
  ];
  let dependentDialects = ["::mlir::quant::QuantDialect"];
}

def NibbleLowerToLinalg : Pass<"nibble-lower-to-linalg", "ModuleOp"> {
  let summary = "Reference lowering of nibble ops to linalg/arith/tensor (the numerical oracle)";
  let description = [{
    Lowers `nibble.constant`, `nibble.quantize`, `nibble.dequantize` and
    `nibble.matmul` to `linalg.generic` on tensors, following the dialect's
    semantics literally and through `NumberFormatAttrInterface` only:
    decode is a table lookup over all 2^bits codes, encode a branchless
    binary search over the rounding thresholds of the format (both tables come
    from the format library), so every format, including ones written only in
    IR, lowers without C++ changes. `!nibble.qtensor<S, scheme>` becomes
    `tensor<S x i8>` holding one code per element; packed constants are
    unpacked. `nibble.observe` probes are dropped. Matmul dequantizes the
    weight and multiplies in f32 in ascending k order. This is not a fast
    path: it is what every backend is compared against.
  }];
  let options = [
    Option<"weightsDir", "weights-dir", "std::string", /*default=*/"\"\"",
           "Directory against which relative #nibble.external paths are resolved">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::tensor::TensorDialect"];
}


def NibbleBindWeights : Pass<"nibble-bind-weights", "ModuleOp"> {
  let summary = "Attach checkpoint tensors to the dense_resource weights of float IR";
  let description = [{
    Float IR made by `quant-import --emit-ir` names its weights
    (`dense_resource<model.layers.0.self_attn.q_proj.weight>`) without their
    bytes. This pass opens the checkpoint given by `model` (a Hugging Face
    directory or a llama2.c file), checks that every referenced tensor exists
    with the shape and element type the IR expects, and attaches its bytes,
    so that the module can be lowered and run (for example with
    `nibble-reference-to-llvm` and mlir-runner).
  }];
  let options = [
    Option<"modelPath", "model", "std::string", /*default=*/"",
           "Checkpoint to read the weights from">,
  ];
}

#endif // NIBBLE_PASSES_TD
