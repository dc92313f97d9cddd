//===- NibbleTypes.td - Quantized tensor type ----------------------------===//

#ifndef NIBBLE_TYPES_TD
#define NIBBLE_TYPES_TD

include "nibble/Dialect/Nibble/IR/NibbleAttrs.td"

def Nibble_QTensorType : Nibble_Type<"QTensor", "qtensor"> {
  let summary = "A statically shaped tensor of quantized codes";
  let description = [{
    Holds codes of the scheme's format, one per element, in the scheme's
    layout. Scales and zero points are separate SSA values.

    ```mlir
    !w = !nibble.qtensor<64x128, #nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>>
    ```
  }];
  let parameters = (ins ArrayRefParameter<"int64_t">:$shape,
                        "SchemeAttr":$scheme);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getRank() const { return getShape().size(); }
    int64_t getNumElements() const;
    /// Bytes of the canonical dense packing of all codes.
    int64_t getPackedByteCount() const;
    ::llvm::SmallVector<int64_t> getScaleShape() const {
      return getScheme().getScaleShape(getShape());
    }
  }];
}

#endif // NIBBLE_TYPES_TD
