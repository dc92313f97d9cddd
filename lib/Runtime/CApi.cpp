//===- CApi.cpp - nibble_runtime.h over the C++ runtime -------------------===//
//
// Every entry point catches everything: no exception crosses the C
// boundary, and a failure leaves its message in nibble_last_error().
//
//===----------------------------------------------------------------------===//

#include "nibble/Runtime/nibble_runtime.h"

#include "LoadedBundle.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

using nibble::runtime::LoadedBundle;
using nibble::runtime::Session;
using nibble::runtime::ThreadPool;

struct nibble_bundle {
  std::shared_ptr<LoadedBundle> impl;
};
struct nibble_session {
  std::unique_ptr<Session> impl;
};

namespace {

thread_local std::string lastError;

template <typename R> R fail(R value, std::string message) {
  lastError = std::move(message);
  return value;
}

/// Runs `body`, turning any exception into `failValue` and a message.
template <typename R, typename F> R guarded(const char *fn, R failValue,
                                            F &&body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return fail(failValue, std::string(fn) + ": out of memory");
  } catch (const std::exception &e) {
    return fail(failValue, std::string(fn) + ": internal error: " + e.what());
  } catch (...) {
    return fail(failValue, std::string(fn) + ": internal error");
  }
}

std::string nullArgument(const char *fn, const char *what) {
  return std::string(fn) + ": " + what + " is NULL";
}

} // namespace

extern "C" {

const char *nibble_last_error(void) { return lastError.c_str(); }

nibble_bundle *nibble_bundle_open(const char *path) {
  return guarded("nibble_bundle_open", (nibble_bundle *)nullptr,
                 [&]() -> nibble_bundle * {
                   if (!path)
                     return fail((nibble_bundle *)nullptr,
                                 nullArgument("nibble_bundle_open", "path"));
                   std::string error;
                   auto impl = LoadedBundle::open(path, error);
                   if (!impl)
                     return fail((nibble_bundle *)nullptr, error);
                   return new nibble_bundle{std::move(impl)};
                 });
}

void nibble_bundle_close(nibble_bundle *bundle) { delete bundle; }

const char *nibble_bundle_path(const nibble_bundle *bundle) {
  if (!bundle)
    return fail((const char *)nullptr,
                nullArgument("nibble_bundle_path", "bundle"));
  return bundle->impl->path().c_str();
}

const char *nibble_bundle_manifest(const nibble_bundle *bundle) {
  if (!bundle)
    return fail((const char *)nullptr,
                nullArgument("nibble_bundle_manifest", "bundle"));
  return bundle->impl->manifest().text.c_str();
}

int32_t nibble_bundle_vocab(const nibble_bundle *bundle) {
  return bundle ? int32_t(bundle->impl->manifest().vocab) : -1;
}
int64_t nibble_bundle_context(const nibble_bundle *bundle) {
  return bundle ? bundle->impl->manifest().context : -1;
}
int64_t nibble_bundle_prefill_chunk(const nibble_bundle *bundle) {
  return bundle ? bundle->impl->manifest().prefillChunk : -1;
}
int32_t nibble_bundle_bos(const nibble_bundle *bundle) {
  return bundle ? int32_t(bundle->impl->manifest().bos) : -1;
}
int32_t nibble_bundle_eos(const nibble_bundle *bundle) {
  return bundle ? int32_t(bundle->impl->manifest().eos) : -1;
}

int64_t nibble_tokenize(const nibble_bundle *bundle, const char *text,
                        size_t len, int add_bos, int32_t *out, size_t cap) {
  const char *fn = "nibble_tokenize";
  return guarded(fn, int64_t(-1), [&]() -> int64_t {
    if (!bundle)
      return fail(int64_t(-1), nullArgument(fn, "bundle"));
    if (!text && len)
      return fail(int64_t(-1), nullArgument(fn, "text"));
    if (!out && cap)
      return fail(int64_t(-1), nullArgument(fn, "out"));
    std::vector<int32_t> ids = bundle->impl->tokenizer().encode(
        std::string_view(text ? text : "", len), add_bos != 0);
    std::copy_n(ids.begin(), std::min(ids.size(), cap), out);
    return int64_t(ids.size());
  });
}

char *nibble_detokenize(const nibble_bundle *bundle, const int32_t *ids,
                        size_t n) {
  const char *fn = "nibble_detokenize";
  return guarded(fn, (char *)nullptr, [&]() -> char * {
    if (!bundle)
      return fail((char *)nullptr, nullArgument(fn, "bundle"));
    if (!ids && n)
      return fail((char *)nullptr, nullArgument(fn, "ids"));
    std::string text =
        bundle->impl->tokenizer().decode(std::vector<int32_t>(ids, ids + n));
    char *s = static_cast<char *>(std::malloc(text.size() + 1));
    if (!s)
      return fail((char *)nullptr, std::string(fn) + ": out of memory");
    std::memcpy(s, text.data(), text.size());
    s[text.size()] = '\0';
    return s;
  });
}

void nibble_free_string(char *s) { std::free(s); }

nibble_session *nibble_session_create(nibble_bundle *bundle, int threads) {
  const char *fn = "nibble_session_create";
  return guarded(fn, (nibble_session *)nullptr, [&]() -> nibble_session * {
    if (!bundle)
      return fail((nibble_session *)nullptr, nullArgument(fn, "bundle"));
    if (threads < 0)
      return fail((nibble_session *)nullptr,
                  std::string(fn) + ": threads = " + std::to_string(threads) +
                      " (expected 0 for one per hardware thread, or a "
                      "positive count)");
    std::string error;
    auto impl = Session::create(bundle->impl, unsigned(threads), error);
    if (!impl)
      return fail((nibble_session *)nullptr, error);
    return new nibble_session{std::move(impl)};
  });
}

void nibble_session_free(nibble_session *session) { delete session; }

int nibble_session_reset(nibble_session *session) {
  if (!session)
    return fail(1, nullArgument("nibble_session_reset", "session"));
  session->impl->reset();
  return 0;
}

int64_t nibble_session_position(const nibble_session *session) {
  return session ? session->impl->position() : -1;
}

int nibble_session_prefill(nibble_session *session, const int32_t *tokens,
                           size_t n, float *all_logits) {
  const char *fn = "nibble_session_prefill";
  return guarded(fn, 1, [&]() -> int {
    if (!session)
      return fail(1, nullArgument(fn, "session"));
    std::string error;
    if (!session->impl->run(tokens, n, all_logits, error))
      return fail(1, error);
    return 0;
  });
}

int nibble_session_decode(nibble_session *session, int32_t token) {
  const char *fn = "nibble_session_decode";
  return guarded(fn, 1, [&]() -> int {
    if (!session)
      return fail(1, nullArgument(fn, "session"));
    std::string error;
    if (!session->impl->run(&token, 1, nullptr, error))
      return fail(1, error);
    return 0;
  });
}

const float *nibble_session_logits(const nibble_session *session) {
  if (!session)
    return fail((const float *)nullptr,
                nullArgument("nibble_session_logits", "session"));
  const float *logits = session->impl->logits();
  if (!logits)
    return fail((const float *)nullptr,
                "nibble_session_logits: no token has been run yet");
  return logits;
}

int32_t nibble_sample(const float *logits, int32_t vocab, float temperature,
                      float top_p, uint64_t *rng_state) {
  return guarded("nibble_sample", int32_t(-1), [&]() -> int32_t {
    std::string error;
    int32_t id = nibble::runtime::sample(logits, vocab, temperature, top_p,
                                         rng_state, error);
    return id < 0 ? fail(int32_t(-1), error) : id;
  });
}

} // extern "C"

void nibble_parallel_for(void (*task)(void *, int64_t, int64_t), void *context,
                         int64_t rows, int64_t align) {
  ThreadPool *pool = Session::currentPool();
  if (!pool || pool->size() == 1 || rows <= align) {
    task(context, 0, rows);
    return;
  }
  pool->parallelFor(rows, align,
                    [&](int64_t b, int64_t e) { task(context, b, e); });
}
