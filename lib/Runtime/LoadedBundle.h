//===- LoadedBundle.h - A bundle ready to run (runtime internals) -*- C++ -*-===//
//
// The C++ side of nibble_runtime.h: a validated bundle with its code loaded,
// and sessions over it. Errors are returned as strings (the C layer turns
// them into nibble_last_error); exceptions only for out-of-memory.
//
//===----------------------------------------------------------------------===//

#ifndef NIBBLE_LIB_RUNTIME_LOADEDBUNDLE_H
#define NIBBLE_LIB_RUNTIME_LOADEDBUNDLE_H

#include "GpuDecoder.h"
#include "nibble/Bundle/Bundle.h"
#include "nibble/Runtime/MemRef.h"
#include "nibble/Runtime/ThreadPool.h"
#include "nibble/Tokenizer/Tokenizer.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace nibble::runtime {

/// _mlir_ciface_nibble_decode / _mlir_ciface_nibble_prefill.
using EntryFn = void (*)(MemRef<int32_t, 1> *tokens, int64_t pos,
                         MemRef<float, 4> *kCache, MemRef<float, 4> *vCache,
                         MemRef<float, 2> *logits, MemRef<int8_t, 1> *weights);
/// The same entry points of a bundle with a quantized KV cache: one code
/// per byte, one f32 scale per (layer, position, kv head).
using QuantKVEntryFn = void (*)(MemRef<int32_t, 1> *tokens, int64_t pos,
                                MemRef<int8_t, 4> *kCodes,
                                MemRef<int8_t, 4> *vCodes,
                                MemRef<float, 3> *kScales,
                                MemRef<float, 3> *vScales,
                                MemRef<float, 2> *logits,
                                MemRef<int8_t, 1> *weights);

/// The manifest fields the runtime uses (docs/runtime.md).
struct Manifest {
  std::string text; ///< the JSON as stored (NUL-terminated by std::string)
  int64_t vocab = 0, layers = 0, kvHeads = 0, headDim = 0;
  std::string triple, cpu;
  std::vector<std::string> features;
  std::string decodeEntry, prefillEntry;
  int64_t prefillChunk = 0, context = 0;
  int64_t weightsBytes = 0;
  std::string tokenizerKind;
  int64_t tokenizerVocab = 0, bos = -1, eos = -1;

  /// kv_cache.dtype: "f32", or the format of a quantized cache.
  std::string kvDtype = "f32";
  bool kvQuantized() const { return kvDtype != "f32"; }

  /// Elements in one cache: layers x context x kv_heads x head_dim.
  int64_t cacheElements() const {
    return layers * context * kvHeads * headDim;
  }
  /// Bytes of one element of a cache (a code or a float).
  int64_t cacheElementBytes() const { return kvQuantized() ? 1 : 4; }
};

/// Parses and checks `text`; errors start with "NAME: manifest: ".
bool parseManifest(const std::string &name, std::string_view text,
                   Manifest &out, std::string &error);

class LoadedBundle {
public:
  static std::shared_ptr<LoadedBundle> open(const std::string &path,
                                            std::string &error);
  ~LoadedBundle();
  LoadedBundle(const LoadedBundle &) = delete;
  LoadedBundle &operator=(const LoadedBundle &) = delete;

  const std::string &path() const { return path_; }
  const Manifest &manifest() const { return manifest_; }
  const tokenizer::Tokenizer &tokenizer() const { return *tokenizer_; }
  EntryFn decode() const { return decode_; }
  EntryFn prefill() const { return prefill_; }
  /// The mapped weights section (never null: an empty section gets a
  /// pointer to a static byte).
  int8_t *weights() const { return weights_; }
  /// Whether this is a CUDA bundle (PTX code, run through GpuModel).
  bool isCuda() const { return cuda_; }
  /// A CUDA bundle's GPU model, loaded by the first call (the driver, the
  /// PTX, the weights on the device); null with `error` when there is no
  /// usable GPU. Opening a CUDA bundle needs no GPU: its card, tokenizer and
  /// manifest are there without one.
  std::shared_ptr<GpuModel> gpu(std::string &error);

private:
  LoadedBundle() = default;
  bool loadCode(std::string &error);
  bool loadTokenizer(std::string &error);

  std::string path_;
  std::unique_ptr<bundle::Bundle> bundle_;
  Manifest manifest_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  void *handle_ = nullptr; ///< dlopen handle of the code section
  int codeFd_ = -1;        ///< its memfd, open while loaded (see loadCode)
  EntryFn decode_ = nullptr, prefill_ = nullptr;
  int8_t *weights_ = nullptr;
  bool cuda_ = false;
  std::mutex gpuMutex_; ///< guards gpu_ (sessions are made on any thread)
  std::shared_ptr<GpuModel> gpu_;
};

/// A KV cache over a bundle, and the position of the next token.
class Session {
public:
  /// Allocates zeroed caches; error when they do not fit in memory.
  /// `threads` workers for nibble_parallel_for (0: one per hardware
  /// thread; 1: none besides the caller).
  static std::unique_ptr<Session> create(std::shared_ptr<LoadedBundle> bundle,
                                         unsigned threads, std::string &error);
  /// The pool of the session whose entry point runs on this thread (null
  /// outside an entry-point call).
  static ThreadPool *currentPool();
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  int64_t position() const { return pos_; }
  const LoadedBundle &bundle() const { return *bundle_; }
  /// nullptr before the first token.
  const float *logits() const { return hasLogits_ ? logits_.data() : nullptr; }

  void reset();
  /// See nibble_session_prefill.
  bool run(const int32_t *tokens, size_t n, float *allLogits,
           std::string &error);

private:
  Session() = default;
  void call(EntryFn fn, const int32_t *tokens, int64_t count, float *out);

  std::shared_ptr<LoadedBundle> bundle_;
  std::unique_ptr<ThreadPool> pool_; ///< null with one thread
  /// Caches (f32, or codes) and, for quantized caches, their scales.
  void *k_ = nullptr, *v_ = nullptr;
  float *kScales_ = nullptr, *vScales_ = nullptr;
  int64_t pos_ = 0;
  /// Positions [0, written_) may hold cache entries (reset zeroes them).
  int64_t written_ = 0;
  std::vector<float> chunkLogits_; ///< prefill_chunk x vocab scratch
  std::vector<float> logits_;      ///< the last token's logits
  std::vector<int32_t> chunk_;     ///< a mutable copy of the tokens passed
  bool hasLogits_ = false;
  /// A CUDA bundle's model and device buffers (then no host caches).
  std::shared_ptr<GpuModel> gpuModel_;
  std::unique_ptr<GpuModel::State> gpu_;
};

/// nibble_sample; -1 with `error` on bad arguments.
int32_t sample(const float *logits, int32_t vocab, float temperature,
               float topP, uint64_t *rngState, std::string &error);

} // namespace nibble::runtime

#endif // NIBBLE_LIB_RUNTIME_LOADEDBUNDLE_H
