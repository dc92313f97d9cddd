//===- NibbleBase.td - The nibble dialect and its format interface -------===//

#ifndef NIBBLE_BASE_TD
#define NIBBLE_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Nibble_Dialect : Dialect {
  let name = "nibble";
  let cppNamespace = "::mlir::nibble";
  let summary = "Quantized tensors, their number formats and schemes";
  let description = [{
    The `nibble` dialect describes quantized tensors in a target-independent
    way so that every backend (the CPU vector path and the CUDA path) lowers
    from the same IR.

    Three ideas keep it small:

    * A *number format* is an element codec (codes <-> real values) written as
      an attribute implementing `NumberFormatAttrInterface`: `#nibble.int`,
      `#nibble.float` (parametric, the fields of LLVM's APFloat semantics) and
      `#nibble.lut` (any sorted codebook). Every pass and lowering works
      through the interface, so a new format is one attribute in IR text.
    * A *scheme* (`#nibble.scheme`) is a format plus granularity (per tensor,
      per channel, groups of N, 2-D blocks), scale element type, optional zero
      points, optional quantized scales (two-level schemes) and a layout slot.
      "q4_0" is `#nibble.scheme<#nibble.int<4, signed>, group<1, 32>, scale = f16>`,
      not a new format.
    * Scales and zero points are ordinary SSA tensors, never constants inside
      a type: a `!nibble.qtensor<shape, scheme>` value holds codes only.

    Semantics shared by every op and backend (f32 arithmetic, in this order):
    `code = encode(x / scale + zero_point)` and
    `value = (decode(code) - zero_point) * scale`, where `encode` rounds to
    nearest (ties to the even code) and saturates; see docs/formats.md.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
    void registerTypes();
  }];
}

def NumberFormatAttrInterface : AttrInterface<"NumberFormatAttrInterface"> {
  let cppNamespace = "::mlir::nibble";
  let description = [{
    An element number format. Implementations describe themselves as a
    `nibble::formats::Format` (the plain C++ codec library); everything else
    (encode/decode tables, bit widths, maximum values used by lowerings and
    quantization algorithms) is derived from that description, so adding a
    format never requires touching a pass.
  }];
  let methods = [
    InterfaceMethod<"The element codec this attribute denotes.",
      "::nibble::formats::Format", "getFormat">,
    InterfaceMethod<"Bits per stored code.", "unsigned", "getBitWidth", (ins),
      [{}], [{ return $_attr.getFormat().bits(); }]>,
  ];
}

class Nibble_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Nibble_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

class Nibble_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<Nibble_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

#endif // NIBBLE_BASE_TD
