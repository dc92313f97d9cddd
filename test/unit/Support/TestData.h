//===- TestData.h - Shared test data and synthetic checkpoints ------------===//

#ifndef NIBBLE_TEST_UNIT_SUPPORT_TESTDATA_H
#define NIBBLE_TEST_UNIT_SUPPORT_TESTDATA_H

#include "nibble/Model/Model.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nibble::testdata {

/// ../shared beside the checkout, or $NIBBLE_SHARED_DIR. Empty when absent:
/// tests that need it skip with a message naming the path.
std::string sharedDir();
#define NIBBLE_REQUIRE_SHARED(var)                                             \
  std::string var = ::nibble::testdata::sharedDir();                            \
  if (var.empty())                                                             \
  GTEST_SKIP() << "shared models not found (set NIBBLE_SHARED_DIR or place "   \
                  "../shared beside the checkout)"

/// A fresh empty directory under the system temp dir (removed at exit).
std::string makeTempDir(const std::string &tag);

/// A small random Llama config for synthetic checkpoints.
struct SyntheticSpec {
  int64_t dim = 32, hidden = 48, layers = 2, heads = 4, kvHeads = 2;
  int64_t vocab = 64, maxSeq = 64;
  bool tied = false;
  std::string ropeScalingJson = "null"; ///< config.json's rope_scaling
  uint32_t seed = 1;
};

/// Writes config.json and the weights of a random model to `dir` as `dtype`
/// (F32, F16 or BF16), in one file or `shards` files with an index. Values
/// are exactly representable in all three dtypes, so twins compare equal.
/// Returns false with `error` set on failure.
bool writeSyntheticHF(const std::string &dir, const SyntheticSpec &spec,
                      model::DType dtype, int shards, std::string &error);

/// Writes `model` (a llama2.c-format model: f32, interleaved RoPE) back as
/// a llama2.c legacy checkpoint, with the tensors named in `replace`
/// substituted (same shapes). Returns false with `error` on failure.
bool writeLlama2c(const std::string &path, const model::Model &model,
                  const std::map<std::string, std::vector<float>> &replace,
                  std::string &error);

/// Text file contents (empty when missing).
std::string readText(const std::string &path);
void writeText(const std::string &path, const std::string &text);

} // namespace nibble::testdata

#endif
