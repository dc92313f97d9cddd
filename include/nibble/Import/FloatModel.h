//===- FloatModel.h - Float IR of a whole Llama decoder -------------------===//
//
// Emits the decoder of a model description as upstream MLIR
// (func/linalg/tensor/arith/math) that computes exactly what the C++
// reference (nibble/Reference/LlamaReference.h) computes, operation for
// operation, so the two can be compared bit for bit after the reference
// lowering:
//
//   func.func @forward(%tokens: tensor<Txi32>) -> tensor<TxVxf32>
//
// runs T tokens from position 0 with causal attention and returns the logits
// of every position. Linear layers are `linalg.matmul` with transposed-B
// indexing maps over weights [out, in], tagged `nibble.linear = "<name>"`
// (the canonical weight name without ".weight") for calibration and
// quantization passes to find them.
//
// Weights are never pasted into the IR: each is an
//   arith.constant dense_resource<CANONICAL_TENSOR_NAME> : tensor<...xDTYPE>
// of the checkpoint's own element type (f32, f16 or bf16; widened in the
// computation). The printed module therefore holds only names; bindWeights
// (or the nibble-bind-weights pass) attaches the checkpoint bytes before the
// module is lowered or run.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_IMPORT_FLOATMODEL_H
#define NIBBLE_IMPORT_FLOATMODEL_H

#include "nibble/Formats/Format.h"
#include "nibble/Model/Model.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace mlir {
class DialectRegistry;
class MLIRContext;
} // namespace mlir

namespace nibble::import {

struct FloatModelOptions {
  /// Static number of tokens the function processes.
  int64_t seqLen = 64;
  std::string funcName = "forward";
  /// A step over a KV cache instead of a whole sequence from position 0:
  ///
  ///   func.func @NAME(%tokens: tensor<Cxi32>, %pos: index,
  ///                   %k_cache: tensor<L x S x KVH x HDxf32>,
  ///                   %v_cache: tensor<L x S x KVH x HDxf32>,
  ///                   %logits: tensor<C x Vxf32>)
  ///       -> (tensor<CxVxf32>, k_cache, v_cache)
  ///
  /// runs C = seqLen tokens at positions pos .. pos+C-1, writes their keys
  /// and values into the caches at those positions, attends over positions
  /// 0 .. pos+C-1 (a dynamic slice of the cache, causal within the chunk)
  /// and writes the logits of every token into %logits. The results are
  /// the updated arguments, so bufferization updates them in place and
  /// drops them from the signature. The caller guarantees pos + C <= S.
  bool kvCache = false;
  /// Cache positions S (0: the model's maximum sequence length).
  int64_t contextLen = 0;
  /// KV-cache quantization (step mode only; unset: f32 caches). The caches
  /// hold one code of this format per byte, tensor<L x S x KVH x HD x i8>,
  /// with one f32 scale per (layer, position, kv head) in two more
  /// arguments after the caches:
  ///
  ///   (%tokens, %pos, %k_cache, %v_cache,
  ///    %k_scales: tensor<L x S x KVH x f32>, %v_scales, %logits)
  ///       -> (logits, k_cache, v_cache, k_scales, v_scales)
  ///
  /// A head's key (value) row x of HD elements is stored as codes
  /// encode(x / s), s = max|x| / maxValue(format) (1 where x is all zero),
  /// and read back as decode(code) * s, for every attended position
  /// including the chunk's own (LlamaReference::setKVCacheFormat computes
  /// the same).
  std::optional<formats::Format> kvFormat;
};

/// Dialects the float IR uses.
void registerFloatModelDialects(mlir::DialectRegistry &registry);

/// Builds the module (weights unbound). Null and `error` on failure.
mlir::OwningOpRef<mlir::ModuleOp>
buildFloatModel(mlir::MLIRContext &ctx, const model::Model &model,
                const FloatModelOptions &options, std::string &error);

/// Appends the function `options` describes to `module` (built by
/// buildFloatModel, so that the decode step and the prefill chunk of one
/// model share a module). False and `error` on failure.
bool appendFloatFunction(mlir::ModuleOp module, const model::Model &model,
                         const FloatModelOptions &options, std::string &error);

/// Attaches the bytes of every weight the module references by canonical
/// tensor name. With `copy` false, aligned tensors are referenced in place
/// (the model must then outlive every use of the module and its context);
/// with `copy` true the bytes are copied into the context. Fails, naming
/// the resource, when a name is unknown or the tensor type disagrees.
bool bindWeights(mlir::ModuleOp module, const model::Model &model, bool copy,
                 std::string &error);

} // namespace nibble::import

#endif // NIBBLE_IMPORT_FLOATMODEL_H
