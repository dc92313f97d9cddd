//===- NibbleAttrs.td - Number formats, schemes, weight references -------===//

#ifndef NIBBLE_ATTRS_TD
#define NIBBLE_ATTRS_TD

include "nibble/Dialect/Nibble/IR/NibbleBase.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

def Nibble_IntFormatAttr : Nibble_Attr<"IntFormat", "int",
    [DeclareAttrInterfaceMethods<NumberFormatAttrInterface>]> {
  let summary = "Integer format of 2 to 8 bits, signed or unsigned";
  let description = [{
    Two's complement (`signed`) or plain binary (`unsigned`) integers of
    `width` bits. The verifier rejects widths outside 2..8.

    ```mlir
    #i4 = #nibble.int<4, signed>
    #u3 = #nibble.int<3, unsigned>
    ```
  }];
  let parameters = (ins "unsigned":$width, "bool":$isSigned);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def Nibble_FloatFormatAttr : Nibble_Attr<"FloatFormat", "float",
    [DeclareAttrInterfaceMethods<NumberFormatAttrInterface>]> {
  let summary = "Parametric binary floating-point format";
  let description = [{
    A binary float described by the fields of LLVM's `fltSemantics`:
    exponent and mantissa bits, exponent bias, non-finite behaviour
    (`ieee`: Inf and NaN in the all-ones exponent; `nan_only`: no Inf;
    `finite_only`: every code is a number), NaN encoding (`ieee`, `all_ones`,
    `negative_zero` as in the FNUZ formats), signedness and whether zero
    exists. Well-known formats have short names: `e4m3fn`, `e5m2`,
    `e4m3fnuz`, `e5m2fnuz`, `e2m3fn`, `e3m2fn`, `e2m1fn`, `e8m0fnu`, `f16`,
    `bf16`, `f32`. Any other format is written as `eXmY` followed by the
    fields that differ from the IEEE-style defaults (bias 2^(X-1)-1, `ieee`).

    ```mlir
    #fp8 = #nibble.float<e4m3fn>
    #mx  = #nibble.float<e8m0fnu>
    // A new 7-bit float with NaN only in the all-ones pattern, bias 3:
    #f7  = #nibble.float<e3m3, bias = 3, nonfinite = nan_only, nan = all_ones>
    ```
  }];
  let parameters = (ins "unsigned":$expBits, "unsigned":$manBits,
                        "int":$bias, "::mlir::nibble::NonFiniteKind":$nonFinite,
                        "::mlir::nibble::NanEncodingKind":$nanEncoding,
                        "bool":$isSigned, "bool":$hasZero);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    ::nibble::formats::FloatSpec getSpec() const;
    static FloatFormatAttr get(::mlir::MLIRContext *ctx,
                               const ::nibble::formats::FloatSpec &spec);
  }];
}

def Nibble_LutFormatAttr : Nibble_Attr<"LutFormat", "lut",
    [DeclareAttrInterfaceMethods<NumberFormatAttrInterface>]> {
  let summary = "Lookup-table format: a sorted codebook of 2 to 256 values";
  let description = [{
    Code `i` means `values[i]`. Values must be finite and strictly
    ascending; the code width is ceil(log2(#values)). Encoding picks the
    nearest value, ties going to the even code. `#nibble.lut<nf4>` is the
    QLoRA NormalFloat-4 table.

    ```mlir
    #nf4 = #nibble.lut<nf4>
    #cb  = #nibble.lut<[-1.5, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0]>
    ```
  }];
  let parameters = (ins "::mlir::DenseF32ArrayAttr":$values);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def Nibble_SchemeAttr : Nibble_Attr<"Scheme", "scheme"> {
  let summary = "Quantization scheme: format, granularity, scales, zero points, layout";
  let description = [{
    How a tensor is quantized:

    * `format`: any attribute implementing `NumberFormatAttrInterface`.
    * granularity: `per_tensor`; `per_channel<axis>` (one scale per index of
      `axis`); `group<axis, N>` (groups of N consecutive elements along
      `axis`); `block<R x C>` (2-D blocks over the last two dimensions).
      The scales tensor has the data's rank and, on every dimension, the
      data's size divided by the block size on that dimension.
    * `scale = T`: element type of the scales tensor: f32, f16, bf16 or a
      builtin float of at most 8 bits (`f8E8M0FNU` for MX, `f8E4M3FN`).
    * `zero_point = T`: present for asymmetric schemes (integer or float
      element type); absent means symmetric.
    * `scale_scheme = #nibble.scheme<...>`: two-level schemes. The scales are
      themselves a quantized tensor with this scheme (K-quants, NF4 double
      quantization, NVFP4's E4M3 scales with a per-tensor f32 scale); ops then
      take the scales' own scales as `scale_scales`. Only one level of nesting.
    * `layout = ATTR`: the packed layout of stored codes; absent means the
      canonical dense LSB-first layout (docs/formats.md). Backends record their
      pre-interleaved layouts here.

    ```mlir
    // q4_0-style: int4, groups of 32 along the input dimension, f16 scales.
    #q4_0 = #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>
    // Asymmetric uint4 with i8 zero points, groups of 128.
    #u4 = #nibble.scheme<#nibble.int<4, unsigned>, group<1, 128>, scale = f32, zero_point = i8>
    // MXFP4: e2m1 elements, blocks of 32, power-of-two E8M0 scales.
    #mxfp4 = #nibble.scheme<#nibble.float<e2m1fn>, group<1, 32>, scale = f8E8M0FNU>
    // NVFP4: e2m1, blocks of 16, e4m3 scales with one f32 scale per tensor.
    #nvfp4 = #nibble.scheme<#nibble.float<e2m1fn>, group<1, 16>, scale = f32, scale_scheme = #nibble.scheme<#nibble.float<e4m3fn>, per_tensor, scale = f32>>
    ```
  }];
  let parameters = (ins "::mlir::Attribute":$format,
                        "::mlir::nibble::GranularityKind":$granularity,
                        "int64_t":$axis,
                        ArrayRefParameter<"int64_t">:$blockShape,
                        "::mlir::Type":$scaleType,
                        "::mlir::Type":$zeroPointType,
                        "::mlir::Attribute":$scaleScheme,
                        "::mlir::Attribute":$layout);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    NumberFormatAttrInterface getFormatAttr() const {
      return ::llvm::cast<NumberFormatAttrInterface>(getFormat());
    }
    bool hasZeroPoints() const { return static_cast<bool>(getZeroPointType()); }
    SchemeAttr getScaleSchemeAttr() const {
      return ::llvm::dyn_cast_or_null<SchemeAttr>(getScaleScheme());
    }
    /// Check that the scheme applies to a tensor of this shape (axis in
    /// range, block sizes dividing the dimensions).
    ::mlir::LogicalResult verifyShape(
        ::llvm::ArrayRef<int64_t> shape,
        ::llvm::function_ref<::mlir::InFlightDiagnostic()> emitError) const;
    /// Block extent on every dimension for data of this shape.
    ::llvm::SmallVector<int64_t> getBlockSizes(::llvm::ArrayRef<int64_t> shape) const;
    /// Shape of the scales (and zero points) for data of this shape.
    ::llvm::SmallVector<int64_t> getScaleShape(::llvm::ArrayRef<int64_t> shape) const;
    /// For a 2-D [out, in] weight with `cols` input columns: how many
    /// consecutive columns of a row share a scale (G for group<1, G>, cols
    /// for per_channel<0>); std::nullopt for every other layout.
    std::optional<int64_t> getColumnsPerScale(int64_t cols) const;
  }];
}

def Nibble_ExternalWeightsAttr : Nibble_Attr<"ExternalWeights", "external"> {
  let summary = "Reference to packed bytes in an external weight file";
  let description = [{
    The packed payload of a `nibble.constant` stored at byte `offset` of
    `path` instead of inside the IR. The number of bytes is implied by the
    constant's type.

    ```mlir
    #w = #nibble.external<"weights.bin", offset = 4096>
    ```
  }];
  let parameters = (ins "::mlir::StringAttr":$path, "uint64_t":$offset);
  let assemblyFormat = "`<` $path `,` `offset` `=` $offset `>`";
}

#endif // NIBBLE_ATTRS_TD
