/*===- nibble_runtime.h - Run compiled Nibble bundles (C API) -------------===*
 *
 * The C interface of libnibble_runtime.so: open a bundle written by
 * quant-compile (docs/bundle.md, docs/runtime.md), check that it was
 * compiled for this machine, load its code without compiling anything, and
 * run it: tokenize, prefill, decode, sample.
 *
 * Conventions:
 *   - Functions returning `int` return 0 on success and nonzero on failure;
 *     functions returning a pointer return NULL on failure; nibble_tokenize
 *     and nibble_sample return -1 on failure. After a failure,
 *     nibble_last_error() says what went wrong. No function throws, aborts
 *     or crashes on bad input (NULL handles included).
 *   - A bundle may be shared by several threads; a session is used by one
 *     thread at a time. Sessions keep their bundle alive: closing a bundle
 *     with live sessions defers the unload until the last one is freed.
 *
 * C99; the library exports exactly the nibble_* symbols below.
 *
 *===----------------------------------------------------------------------===*/

#ifndef NIBBLE_RUNTIME_NIBBLE_RUNTIME_H
#define NIBBLE_RUNTIME_NIBBLE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(NIBBLE_RUNTIME_BUILD)
#define NIBBLE_API __attribute__((visibility("default")))
#else
#define NIBBLE_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nibble_bundle nibble_bundle;
typedef struct nibble_session nibble_session;

/* ---- Errors ------------------------------------------------------------ */

/** The message of the last failure on the calling thread ("" if none). It is
 *  not cleared by later successful calls. Valid until the next failing call
 *  on this thread. Messages about a bundle start with its path. */
NIBBLE_API const char *nibble_last_error(void);

/* ---- Bundles ----------------------------------------------------------- */

/** Opens and checks the bundle at `path`: the container (checksums,
 *  version), the manifest, the target (the triple's architecture must be
 *  this machine's and every CPU feature the runtime knows how to detect must
 *  be present), then loads the `code` section from memory (memfd + dlopen,
 *  nothing is compiled), finds both entry points and parses the tokenizer.
 *  The file stays mapped; the weights are used in place. NULL on failure. */
NIBBLE_API nibble_bundle *nibble_bundle_open(const char *path);

/** Releases the caller's handle (NULL is ignored). Sessions created from it
 *  stay valid; the code is unloaded when the last of them is freed. */
NIBBLE_API void nibble_bundle_close(nibble_bundle *bundle);

/** The path the bundle was opened with. */
NIBBLE_API const char *nibble_bundle_path(const nibble_bundle *bundle);
/** The manifest section: JSON text, NUL-terminated, owned by the bundle. */
NIBBLE_API const char *nibble_bundle_manifest(const nibble_bundle *bundle);
/** model.vocab: the number of logits per token (-1 for a NULL bundle). */
NIBBLE_API int32_t nibble_bundle_vocab(const nibble_bundle *bundle);
/** entry.context: the positions a session holds (-1 for a NULL bundle). */
NIBBLE_API int64_t nibble_bundle_context(const nibble_bundle *bundle);
/** entry.prefill_chunk: tokens per prefill call (-1 for a NULL bundle). */
NIBBLE_API int64_t nibble_bundle_prefill_chunk(const nibble_bundle *bundle);
/** tokenizer.bos / tokenizer.eos of the manifest; -1 when the tokenizer
 *  has none (or for a NULL bundle). */
NIBBLE_API int32_t nibble_bundle_bos(const nibble_bundle *bundle);
NIBBLE_API int32_t nibble_bundle_eos(const nibble_bundle *bundle);

/* ---- Tokenizer --------------------------------------------------------- */

/** Encodes `len` bytes of `text` with the bundle's tokenizer (BOS first when
 *  `add_bos` is nonzero and the tokenizer has one). Returns the number of
 *  ids; at most `cap` of them are written to `out` (which may be NULL when
 *  `cap` is 0), so call again with a larger buffer when the result exceeds
 *  `cap`. -1 on failure. */
NIBBLE_API int64_t nibble_tokenize(const nibble_bundle *bundle,
                                   const char *text, size_t len, int add_bos,
                                   int32_t *out, size_t cap);

/** The text of `n` ids (control tokens and ids outside the tokenizer's
 *  vocabulary produce nothing), NUL-terminated; free it with
 *  nibble_free_string. NULL on failure. */
NIBBLE_API char *nibble_detokenize(const nibble_bundle *bundle,
                                   const int32_t *ids, size_t n);
/** Frees a string returned by this library (NULL is ignored). */
NIBBLE_API void nibble_free_string(char *s);

/* ---- Sessions ---------------------------------------------------------- */

/** A decoding session: zeroed, 64-byte aligned K and V caches of
 *  layers x context x kv_heads x head_dim elements each (f32, or codes and
 *  scales for a quantized cache), at position 0. `threads` workers (the
 *  calling thread included; 0: one per hardware thread) split the output
 *  rows of the large matmuls; results do not depend on it. NULL on
 *  failure. */
NIBBLE_API nibble_session *nibble_session_create(nibble_bundle *bundle,
                                                 int threads);
/** Frees the session and its caches (NULL is ignored). */
NIBBLE_API void nibble_session_free(nibble_session *session);
/** Back to position 0 with zeroed caches and no logits. */
NIBBLE_API int nibble_session_reset(nibble_session *session);
/** Tokens run so far: the position of the next token (-1 for NULL). */
NIBBLE_API int64_t nibble_session_position(const nibble_session *session);

/** Runs `n` tokens at the session's position: whole chunks of
 *  entry.prefill_chunk tokens through the prefill entry, the rest one by one
 *  through decode. Fails, running nothing, when an id is outside
 *  [0, vocab) or position + n exceeds the context. When `all_logits` is not
 *  NULL, it receives n x vocab floats (row i: the logits after token i).
 *  Afterwards nibble_session_logits() holds the last token's logits.
 *  n == 0 does nothing. */
NIBBLE_API int nibble_session_prefill(nibble_session *session,
                                      const int32_t *tokens, size_t n,
                                      float *all_logits);
/** Runs one token through the decode entry (same checks as prefill). */
NIBBLE_API int nibble_session_decode(nibble_session *session, int32_t token);
/** The vocab logits after the last token run, owned by the session and
 *  overwritten by the next prefill/decode. NULL before any token. */
NIBBLE_API const float *nibble_session_logits(const nibble_session *session);

/* ---- Sampling ---------------------------------------------------------- */

/** Picks a token from `vocab` logits.
 *   - temperature == 0: greedy, the id of the largest logit (the lowest such
 *     id on ties); `rng_state` is not used and may be NULL.
 *   - temperature > 0: p_i = softmax(logits / temperature) in double; the
 *     nucleus is the smallest set of the most probable ids (higher
 *     probability first, lower id first on ties) whose probability sums to at
 *     least top_p (0 < top_p <= 1; 1 keeps every id); one draw u in [0, 1)
 *     from `*rng_state` selects within the nucleus by cumulative probability
 *     in that order (in id order when top_p == 1).
 *  NaN logits are never chosen. The generator is splitmix64: state +=
 *  0x9E3779B97F4A7C15, z = state, z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9,
 *  z = (z ^ z >> 27) * 0x94D049BB133111EB, z ^= z >> 31; u = (z >> 11) *
 *  2^-53. Any seed (0 included) is valid, and one call advances the state
 *  once, so a seed gives the same tokens on every machine.
 *  -1 on failure (NULL logits, vocab <= 0, bad temperature or top_p, NULL
 *  rng_state when sampling, all logits NaN). */
NIBBLE_API int32_t nibble_sample(const float *logits, int32_t vocab,
                                 float temperature, float top_p,
                                 uint64_t *rng_state);

/* ---- For compiled code ------------------------------------------------ */

/** Called by bundle code (nibble-parallelize-kernel-calls), not by users:
 *  runs task(context, begin, end) over [0, rows) split into ranges aligned
 *  to `align` rows, on the pool of the session whose entry point is running
 *  on this thread, or once over [0, rows) without one. */
NIBBLE_API void nibble_parallel_for(void (*task)(void *, int64_t, int64_t),
                                    void *context, int64_t rows,
                                    int64_t align);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NIBBLE_RUNTIME_NIBBLE_RUNTIME_H */
