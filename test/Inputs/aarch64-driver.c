/* Freestanding aarch64 driver for test/Integration/aarch64-qemu.mlir: calls
 * the generated kernels (forward) and the reference lowering (forward_ref)
 * on the same input and compares them. No libc: raw Linux syscalls, a bump
 * allocator, and the few memory functions LLVM may call. */
typedef unsigned long size_t;
typedef long int64_t;

struct MemRef2 {
  float *allocated, *aligned;
  int64_t offset, sizes[2], strides[2];
};

void _mlir_ciface_forward(struct MemRef2 *result, struct MemRef2 *x);
void _mlir_ciface_forward_ref(struct MemRef2 *result, struct MemRef2 *x);

static long sys(long n, long a, long b, long c) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
static void put(const char *s) {
  size_t n = 0;
  while (s[n])
    ++n;
  sys(64, 1, (long)s, (long)n);
}
static void putInt(long v) {
  char buf[24];
  int i = 23;
  buf[i] = 0;
  if (v == 0)
    buf[--i] = '0';
  while (v > 0) {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  }
  put(buf + i);
}

static _Alignas(64) unsigned char heap[1 << 22];
static size_t used;
void *malloc(size_t n) {
  used = (used + 63) & ~(size_t)63;
  if (used + n > sizeof heap) {
    put("driver: out of heap\n");
    sys(93, 2, 0, 0);
  }
  void *p = heap + used;
  used += n;
  return p;
}
void *aligned_alloc(size_t a, size_t n) { (void)a; return malloc(n); }
void free(void *p) { (void)p; }
void *memcpy(void *d, const void *s, size_t n) {
  unsigned char *dd = d;
  const unsigned char *ss = s;
  while (n--)
    *dd++ = *ss++;
  return d;
}
void *memmove(void *d, const void *s, size_t n) {
  unsigned char *dd = d;
  const unsigned char *ss = s;
  if (dd < ss)
    while (n--)
      *dd++ = *ss++;
  else
    while (n--)
      dd[n] = ss[n];
  return d;
}
void *memset(void *d, int c, size_t n) {
  unsigned char *dd = d;
  while (n--)
    *dd++ = (unsigned char)c;
  return d;
}

static float fabsf_(float v) { return v < 0 ? -v : v; }

void _start(void) {
  static float x[256];
  for (int i = 0; i < 256; ++i)
    x[i] = (float)((i * 37) % 23 - 11) * 0.13f;
  struct MemRef2 in = {x, x, 0, {1, 256}, {256, 1}};
  struct MemRef2 got, want;
  _mlir_ciface_forward(&got, &in);
  _mlir_ciface_forward_ref(&want, &in);
  int n = (int)got.sizes[1], bad = 0;
  float scale = 0;
  for (int j = 0; j < n; ++j)
    if (fabsf_(want.aligned[want.offset + j]) > scale)
      scale = fabsf_(want.aligned[want.offset + j]);
  put("outputs ");
  putInt(n);
  put("\n");
  for (int j = 0; j < n; ++j) {
    float d = got.aligned[got.offset + j] - want.aligned[want.offset + j];
    if (fabsf_(d) > 1e-4f * (scale + 1.0f)) {
      put("mismatch at output ");
      putInt(j);
      put("\n");
      ++bad;
    }
  }
  if (n == 0 || scale == 0) // the count is checked by FileCheck
    bad = 1;
  put(bad ? "FAILED\n" : "aarch64 kernels match the reference lowering\n");
  sys(93, bad, 0, 0);
  for (;;)
    ;
}
