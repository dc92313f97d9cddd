/*===- ToyModel.c - A "model" with the bundle entry ABI, for runtime tests -===*
 *
 * Built as a shared library and packed as a bundle's `code` section, so the
 * runtime tests exercise the real loading and calling path without a
 * compiler. For each of the C tokens at positions p = pos .. pos+C-1:
 *   k_cache[0][p][0][0] = token, v_cache[0][p][0][0] = p, and the last
 *   element of row p (last layer, last head, last dim) = token in both;
 *   logits row: zeros except
 *     [(token + TOY_SHIFT) % vocab] = 1 + weights[0] + (S % 8), where S is
 *         the sum of k_cache[0][q][0][0] over q = 0..p (the tokens cached so
 *         far, this one included): attention over the cache;
 *     [(token + TOY_SHIFT + 1) % vocab] = 0.5 when called as prefill, 0.25
 *         as decode (which entry ran).
 * When an argument breaks the ABI (wrong chunk length, non-row-major
 * strides, unaligned caches, pos + C > context, a cache entry past p that
 * is not zero), every logit is -1, which no test expects.
 *
 *===----------------------------------------------------------------------===*/

#include <stdint.h>

#ifndef TOY_SHIFT
#define TOY_SHIFT 1
#endif
#ifndef TOY_PREFILL_CHUNK
#define TOY_PREFILL_CHUNK 4
#endif

typedef struct {
  int32_t *allocated, *aligned;
  int64_t offset, sizes[1], strides[1];
} MemRef1I32;
typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[4], strides[4];
} MemRef4F32;
typedef struct {
  float *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
} MemRef2F32;
typedef struct {
  int8_t *allocated, *aligned;
  int64_t offset, sizes[1], strides[1];
} MemRef1I8;

static int rowMajorCache(const MemRef4F32 *m) {
  return m->strides[3] == 1 && m->strides[2] == m->sizes[3] &&
         m->strides[1] == m->sizes[2] * m->sizes[3] &&
         m->strides[0] == m->sizes[1] * m->sizes[2] * m->sizes[3] &&
         ((uintptr_t)m->aligned & 63) == 0 && m->offset == 0;
}

static void step(int64_t chunk, float marker, MemRef1I32 *tokens, int64_t pos,
                 MemRef4F32 *k, MemRef4F32 *v, MemRef2F32 *logits,
                 MemRef1I8 *weights) {
  const int64_t count = tokens->sizes[0], vocab = logits->sizes[1];
  const int64_t context = k->sizes[1], row = k->sizes[2] * k->sizes[3];
  const int64_t layerStride = k->strides[0];
  float *out = logits->aligned + logits->offset;
  int ok = count == chunk && tokens->strides[0] == 1 && pos >= 0 &&
           pos + count <= context && rowMajorCache(k) && rowMajorCache(v) &&
           logits->sizes[0] == count && logits->strides[0] == vocab &&
           logits->strides[1] == 1 && weights->sizes[0] >= 1;
  for (int64_t q = pos; ok && q < context; ++q)
    if (k->aligned[q * row] != 0 || v->aligned[q * row] != 0)
      ok = 0;
  for (int64_t i = 0; i < count * vocab; ++i)
    out[i] = ok ? 0.0f : -1.0f;
  if (!ok)
    return;
  for (int64_t c = 0; c < count; ++c) {
    const int32_t token = tokens->aligned[tokens->offset + c];
    const int64_t p = pos + c;
    const int64_t last = (k->sizes[0] - 1) * layerStride + p * row + row - 1;
    k->aligned[p * row] = (float)token;
    v->aligned[p * row] = (float)p;
    k->aligned[last] = (float)token;
    v->aligned[last] = (float)token;
    int64_t sum = 0;
    for (int64_t q = 0; q <= p; ++q)
      sum += (int64_t)k->aligned[q * row];
    float *r = out + c * vocab;
    r[(token + TOY_SHIFT) % vocab] =
        1.0f + (float)weights->aligned[weights->offset] + (float)(sum % 8);
    r[(token + TOY_SHIFT + 1) % vocab] = marker;
  }
}

void _mlir_ciface_nibble_decode(MemRef1I32 *tokens, int64_t pos, MemRef4F32 *k,
                                MemRef4F32 *v, MemRef2F32 *logits,
                                MemRef1I8 *weights) {
  step(1, 0.25f, tokens, pos, k, v, logits, weights);
}

#ifndef TOY_NO_PREFILL
void _mlir_ciface_nibble_prefill(MemRef1I32 *tokens, int64_t pos,
                                 MemRef4F32 *k, MemRef4F32 *v,
                                 MemRef2F32 *logits, MemRef1I8 *weights) {
  step(TOY_PREFILL_CHUNK, 0.5f, tokens, pos, k, v, logits, weights);
}
#endif
