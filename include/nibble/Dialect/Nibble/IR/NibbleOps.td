//===- NibbleOps.td - nibble operations -----------------------------------===//

#ifndef NIBBLE_OPS_TD
#define NIBBLE_OPS_TD

include "nibble/Dialect/Nibble/IR/NibbleTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class Nibble_Op<string mnemonic, list<Trait> traits = []>
    : Op<Nibble_Dialect, mnemonic, traits>;

def Nibble_QTensor : Type<CPred<"::llvm::isa<::mlir::nibble::QTensorType>($_self)">,
                          "quantized tensor", "::mlir::nibble::QTensorType">;
def Nibble_FloatTensor : RankedTensorOf<[F32, F16, BF16]>;
def Nibble_ScalesLike : AnyTypeOf<[AnyRankedTensor, Nibble_QTensor]>;

def Nibble_QuantizeOp : Nibble_Op<"quantize",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "Quantize a float tensor with given scales (and zero points)";
  let description = [{
    `code = encode(x / scale + zero_point)` element-wise in f32, where the
    scale and zero point of an element are those of its block under the
    result's scheme. `encode` rounds to nearest, ties to the even code, and
    saturates (docs/formats.md). With a two-level scheme, `scales` is itself
    a quantized tensor and `scale_scales` are its scales.

    ```mlir
    %q = nibble.quantize %x scales(%s : tensor<4x2xf32>)
        : tensor<4x64xf32> -> !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f32>>
    ```
  }];
  let arguments = (ins Nibble_FloatTensor:$input, Nibble_ScalesLike:$scales,
                       Optional<AnyRankedTensor>:$zero_points,
                       Optional<AnyRankedTensor>:$scale_scales);
  let results = (outs Nibble_QTensor:$result);
  let assemblyFormat = [{
    $input `scales` `(` $scales `:` type($scales) `)`
    (`zero_points` `(` $zero_points^ `:` type($zero_points) `)`)?
    (`scale_scales` `(` $scale_scales^ `:` type($scale_scales) `)`)?
    attr-dict `:` type($input) `->` qualified(type($result))
  }];
  let hasVerifier = 1;
}

def Nibble_DequantizeOp : Nibble_Op<"dequantize",
    [Pure, AttrSizedOperandSegments]> {
  let summary = "Dequantize codes to a float tensor";
  let description = [{
    `value = (decode(code) - zero_point) * scale` element-wise in f32, then
    converted to the result element type.

    ```mlir
    %y = nibble.dequantize %q scales(%s : tensor<4x2xf32>)
        : !nibble.qtensor<4x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f32>> -> tensor<4x64xf32>
    ```
  }];
  let arguments = (ins Nibble_QTensor:$input, Nibble_ScalesLike:$scales,
                       Optional<AnyRankedTensor>:$zero_points,
                       Optional<AnyRankedTensor>:$scale_scales);
  let results = (outs Nibble_FloatTensor:$result);
  let assemblyFormat = [{
    $input `scales` `(` $scales `:` type($scales) `)`
    (`zero_points` `(` $zero_points^ `:` type($zero_points) `)`)?
    (`scale_scales` `(` $scale_scales^ `:` type($scale_scales) `)`)?
    attr-dict `:` qualified(type($input)) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Nibble_ConstantOp : Nibble_Op<"constant", [ConstantLike, Pure]> {
  let summary = "Packed quantized constant (inline, resource blob or external file)";
  let description = [{
    Codes packed in the scheme's layout (canonical: dense LSB-first). The
    payload is an `i8` elements attribute (`dense<...>` or
    `dense_resource<...>`) with exactly the packed byte count, or a
    `#nibble.external` reference into a weight file.

    ```mlir
    %w = nibble.constant dense<[33, -1]> : tensor<2xi8>
        -> !nibble.qtensor<1x4, #nibble.scheme<#nibble.int<4, signed>, per_tensor, scale = f32>>
    %v = nibble.constant #nibble.external<"weights.bin", offset = 0>
        -> !nibble.qtensor<64x128, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>>
    ```
  }];
  let arguments = (ins AnyAttr:$value);
  let results = (outs Nibble_QTensor:$result);
  let assemblyFormat = "$value attr-dict `->` qualified(type($result))";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Nibble_MatmulOp : Nibble_Op<"matmul", [Pure, AttrSizedOperandSegments]> {
  let summary = "Float activations times a quantized weight (transposed)";
  let description = [{
    `result[m, n] = sum_k x[m, k] * W[n, k]` where `W` is the dequantized
    weight of shape `N x K` (the PyTorch `Linear` layout), accumulated in f32.
    With `act_format`, activations are quantized on the fly per row (token),
    symmetrically, with scale `max|x[m, :]| / max(act_format)` (1 for an
    all-zero row), as W8A8 / W4A8 kernels do; the reference lowering
    fake-quantizes them before the product. With `act_scale` as well, the
    quantization is static per tensor: every row uses that calibrated
    scale (`nibble-quantize-activations{mode=static}`).

    ```mlir
    %y = nibble.matmul %x, %w scales(%s : tensor<16x2xf16>)
        : tensor<1x64xf32>, !nibble.qtensor<16x64, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>> -> tensor<1x16xf32>
    ```
  }];
  let arguments = (ins Nibble_FloatTensor:$input, Nibble_QTensor:$weight,
                       Nibble_ScalesLike:$scales,
                       Optional<AnyRankedTensor>:$zero_points,
                       Optional<AnyRankedTensor>:$scale_scales,
                       OptionalAttr<AnyAttr>:$act_format,
                       OptionalAttr<F32Attr>:$act_scale);
  let results = (outs Nibble_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `scales` `(` $scales `:` type($scales) `)`
    (`zero_points` `(` $zero_points^ `:` type($zero_points) `)`)?
    (`scale_scales` `(` $scale_scales^ `:` type($scale_scales) `)`)?
    attr-dict `:` type($input) `,` qualified(type($weight)) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Nibble_ObserveOp : Nibble_Op<"observe", [MemoryEffects<[MemWrite]>]> {
  let summary = "Calibration probe: record statistics of a tensor";
  let description = [{
    Marks a value whose statistics calibration records under `name`
    (min/max, abs-max, moments, histogram, Hessian for matmul inputs). The
    probe has a side effect so that it survives canonicalization; the
    reference lowering drops it.

    ```mlir
    nibble.observe "blk0.attn.q_proj.input" %x : tensor<4x64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, AnyRankedTensor:$input);
  let assemblyFormat = "$name $input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

#endif // NIBBLE_OPS_TD
