//===- Synthetic.h - The project's deterministic default model ------------===//
//
// A small Llama with pseudo-random weights and a byte-level vocabulary,
// generated from a seed, so that the main command and the tests run the
// whole path (compile, bundle, run, card) on a machine without the shared
// checkpoints. It is untrained: its text is word salad, and it says so.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_MODEL_SYNTHETIC_H
#define NIBBLE_MODEL_SYNTHETIC_H

#include <cstdint>
#include <string>

namespace nibble::model {

/// The architecture of a synthetic model. The default is the project's
/// small model; `llama2-7b` has Llama-2-7B's widths (for measuring decode
/// speed at LLM shapes with a few layers: the weights are random, so only
/// speed means anything there).
struct SyntheticShape {
  int32_t dim = 64, hidden = 192, layers = 4, heads = 4, kvHeads = 2,
          vocab = 512, context = 256;
};

/// Parses "NAME[,KEY=VALUE...]" where NAME is `default` or `llama2-7b`
/// (dim 4096, hidden 11008, 32 layers, 32 heads and kv heads, vocab 32000,
/// context 4096) and KEY one of dim, hidden, layers, heads, kv-heads,
/// vocab, context; e.g. "llama2-7b,layers=2". False with `error` naming
/// the offending part on an unknown name or key, a bad number, or a shape
/// the llama2.c format cannot hold (dim not a multiple of heads, heads not
/// a multiple of kv-heads, odd head width, vocab under 259).
bool parseSyntheticShape(const std::string &spec, SyntheticShape &shape,
                         std::string &error);

/// Bytes of model.bin for `shape` (header and f32 weights).
uint64_t syntheticModelBytes(const SyntheticShape &shape);

/// Writes DIR/model.bin (llama2.c format, f32, tied embeddings) and
/// DIR/tokenizer.bin (llama2.c vocabulary: <unk>, <s>, </s>, the 256 byte
/// tokens, English words, then numbered filler pieces up to the vocab).
/// The same seed and shape give the same bytes. False with `error` when
/// DIR cannot be written or the shape is invalid.
bool writeSyntheticModel(const std::string &dir, uint64_t seed,
                         const SyntheticShape &shape, std::string &error);

/// The default shape: dim 64, hidden 192, 4 layers, 4 heads over 2 kv
/// heads, vocab 512 (the 253 words fill it exactly), 256 positions.
bool writeSyntheticModel(const std::string &dir, uint64_t seed,
                         std::string &error);

} // namespace nibble::model

#endif
