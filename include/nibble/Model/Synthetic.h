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

/// Writes DIR/model.bin (llama2.c format: dim 64, hidden 192, 4 layers,
/// 4 heads over 2 kv heads, vocab 512, 256 positions, f32) and
/// DIR/tokenizer.bin (llama2.c vocabulary: <unk>, <s>, </s>, the 256 byte
/// tokens, then 253 English words). The same seed gives the same bytes.
/// False with `error` when DIR cannot be written.
bool writeSyntheticModel(const std::string &dir, uint64_t seed,
                         std::string &error);

} // namespace nibble::model

#endif
