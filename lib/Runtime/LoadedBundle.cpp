//===- LoadedBundle.cpp - Open a bundle, load its code, run sessions ------===//

#include "LoadedBundle.h"
#include "nibble/Runtime/nibble_runtime.h"

#include "nibble/Runtime/CpuFeatures.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace nibble::runtime {
namespace {

std::string join(const std::vector<std::string> &items) {
  std::string out;
  for (const std::string &s : items)
    out += (out.empty() ? "" : " ") + s;
  return out;
}

void replaceAll(std::string &s, const std::string &from,
                const std::string &to) {
  if (from.empty())
    return;
  for (size_t at = s.find(from); at != std::string::npos;
       at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

bool writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    bytes.remove_prefix(size_t(n));
  }
  return true;
}

/// ELF e_machine of this machine.
uint16_t hostMachine() {
#if defined(__x86_64__)
  return 62; // EM_X86_64
#elif defined(__aarch64__)
  return 183; // EM_AARCH64
#else
  return 0;
#endif
}

std::string machineName(uint16_t machine) {
  switch (machine) {
  case 62:
    return "x86_64";
  case 183:
    return "aarch64";
  case 3:
    return "i386";
  case 40:
    return "arm";
  case 243:
    return "riscv";
  default:
    return "machine " + std::to_string(machine);
  }
}

/// The code section must be a 64-bit little-endian ELF shared object for
/// this machine: checked here so that a mismatch reads as such rather than
/// as dlopen's "invalid ELF header".
bool checkElf(const std::string &where, std::string_view code,
              std::string &error) {
  auto u16 = [&](size_t at) {
    return uint16_t(uint8_t(code[at]) | uint8_t(code[at + 1]) << 8);
  };
  if (code.size() < 64 || code.substr(0, 4) != "\x7f"
                                               "ELF") {
    error = where + " is not an ELF file (" + std::to_string(code.size()) +
            " bytes" + (code.size() >= 4 ? ", no \\x7fELF magic" : "") + ")";
    return false;
  }
  if (code[4] != 2 || code[5] != 1) {
    error = where + " is not a 64-bit little-endian ELF file";
    return false;
  }
  if (u16(16) != 3) { // ET_DYN
    error = where + " is an ELF file of type " + std::to_string(u16(16)) +
            ", expected a shared object (ET_DYN, 3)";
    return false;
  }
  if (u16(18) != hostMachine()) {
    error = where + " is an ELF shared object for " + machineName(u16(18)) +
            ", this machine is " + hostArch();
    return false;
  }
  return true;
}

/// Asks for transparent huge pages on the mapped weights: decode streams
/// every weight once per token, and 2 MiB pages spare a TLB miss per 4 KiB
/// and let the hardware prefetcher run past 4 KiB boundaries (the read
/// probe of bench/ gains about 30% at one thread, docs/performance.md).
/// Where the page cache already holds the file in 2 MiB folios the mapping
/// is PMD-mapped without it; elsewhere (CONFIG_READ_ONLY_THP_FOR_FS)
/// khugepaged only collapses ranges so advised. Advice, never an error.
void adviseHugePages(const void *data, size_t bytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page * page;
  uintptr_t end = reinterpret_cast<uintptr_t>(data) + bytes;
  (void)madvise(reinterpret_cast<void *>(begin), end - begin, MADV_HUGEPAGE);
}

} // namespace

std::shared_ptr<LoadedBundle> LoadedBundle::open(const std::string &path,
                                                 std::string &error) {
  std::shared_ptr<LoadedBundle> b(new LoadedBundle());
  b->path_ = path;
  b->bundle_ = bundle::Bundle::open(path, error);
  if (!b->bundle_) {
    // Every message starts with the path: "cannot open PATH: why" (from the
    // file mapping) becomes "PATH: cannot open: why".
    if (error.compare(0, path.size() + 1, path + ":") != 0) {
      replaceAll(error, " " + path + ":", ":");
      error = path + ": " + error;
    }
    return nullptr;
  }
  for (const char *name : {"manifest", "code", "weights", "tokenizer"})
    if (!b->bundle_->has(name)) {
      error = path + ": missing section \"" + name +
              "\" (a bundle has manifest, code, weights and tokenizer)";
      return nullptr;
    }
  Manifest &m = b->manifest_;
  if (!parseManifest(path, b->bundle_->section("manifest"), m, error))
    return nullptr;

  const bool cuda = m.triple.rfind("nvptx", 0) == 0;
  std::string arch = tripleArch(m.triple);
  if (!cuda && arch != hostArch()) {
    error =
        path + ": compiled for " + m.triple + ", this machine is " + hostArch();
    return nullptr;
  }
  std::vector<std::string> missing =
      cuda ? std::vector<std::string>() : missingFeatures(m.features);
  if (!missing.empty()) {
    error = path + ": compiled for CPU " + m.cpu +
            " with features this machine lacks: " + join(missing);
    return nullptr;
  }

  size_t weightBytes = b->bundle_->sectionSize("weights");
  if (int64_t(weightBytes) != m.weightsBytes) {
    error = path + ": manifest: field \"weights.bytes\" is " +
            std::to_string(m.weightsBytes) + " but section \"weights\" has " +
            std::to_string(weightBytes) + " bytes";
    return nullptr;
  }
  static int8_t noWeights = 0;
  b->weights_ = weightBytes
                    ? const_cast<int8_t *>(reinterpret_cast<const int8_t *>(
                          b->bundle_->sectionData("weights")))
                    : &noWeights;

  b->cuda_ = cuda;
  if (!cuda && weightBytes)
    adviseHugePages(b->weights_, weightBytes);
  if ((!cuda && !b->loadCode(error)) || !b->loadTokenizer(error))
    return nullptr;
  return b;
}

std::shared_ptr<GpuModel> LoadedBundle::gpu(std::string &error) {
  std::lock_guard<std::mutex> lock(gpuMutex_);
  if (!gpu_ && cuda_)
    gpu_ = GpuModel::load(path_, manifest_, bundle_->section("code"),
                          weights_, size_t(manifest_.weightsBytes), error);
  return gpu_;
}

bool LoadedBundle::loadCode(std::string &error) {
  const std::string where = path_ + ": section \"code\"";
  std::string_view code = bundle_->section("code");
  if (!checkElf(where, code, error))
    return false;

  // The code is dlopen'ed from an anonymous memory file: nothing touches
  // the disk and nothing is left behind. glibc matches dlopen names against
  // loaded objects, so the descriptor (and with it the name
  // /proc/self/fd/N) stays open while the code is loaded, and a number whose
  // name a still-loaded object holds is never used.
  int fd = ::memfd_create("nibble-code", MFD_CLOEXEC);
  if (fd < 0) {
    error = where + ": memfd_create failed: " + std::strerror(errno);
    return false;
  }
  if (!writeAll(fd, code)) {
    error =
        where + ": cannot write the code to memory: " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  std::string name;
  for (int attempt = 0;; ++attempt) {
    name = "/proc/self/fd/" + std::to_string(fd);
    void *stale = ::dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (!stale)
      break;
    ::dlclose(stale);
    int other = ::fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
    ::close(fd);
    fd = other;
    if (fd < 0 || attempt == 64) {
      error = where + ": no free descriptor name to load the code under";
      if (fd >= 0)
        ::close(fd);
      return false;
    }
  }
  codeFd_ = fd;
  handle_ = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char *why = ::dlerror();
    std::string reason = why ? why : "unknown dlopen error";
    replaceAll(reason, name + ": ", "");
    replaceAll(reason, name, "the code");
    error = where + ": cannot load: " + reason;
    return false;
  }
  struct Want {
    const std::string &symbol;
    const char *field;
    EntryFn *out;
  };
  for (Want w : {Want{manifest_.decodeEntry, "entry.decode", &decode_},
                 Want{manifest_.prefillEntry, "entry.prefill", &prefill_}}) {
    void *sym = ::dlsym(handle_, w.symbol.c_str());
    if (!sym) {
      error = where + " has no entry point \"" + w.symbol + "\" (manifest " +
              w.field + ")";
      return false;
    }
    *w.out = reinterpret_cast<EntryFn>(sym);
  }
  // Code that splits matmul rows over the session's pool calls through
  // this hook (nibble-parallelize-kernel-calls); the runtime sets it here
  // instead of leaving it to symbol resolution, which a host that loaded
  // this library with RTLD_LOCAL (Python's ctypes) would defeat.
  if (void *hook = ::dlsym(handle_, "nibble_parallel_for_hook"))
    *static_cast<void **>(hook) = reinterpret_cast<void *>(&nibble_parallel_for);
  return true;
}

bool LoadedBundle::loadTokenizer(std::string &error) {
  const std::string name = path_ + ": section \"tokenizer\"";
  std::string_view bytes = bundle_->section("tokenizer");
  const Manifest &m = manifest_;
  if (m.tokenizerKind == "llama2c") {
    tokenizer_ = tokenizer::parseLlama2cTokenizer(
        reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(),
        int32_t(m.tokenizerVocab), name, error);
  } else if (m.tokenizerKind == "hf-bpe") {
    tokenizer_ = tokenizer::parseHFTokenizerJson(bytes, name, error);
  } else {
    // SentencePiece loads only from a path: a private temporary file,
    // removed as soon as it is read.
    const char *dir = std::getenv("TMPDIR");
    std::string tmp =
        std::string(dir && *dir ? dir : "/tmp") + "/nibble-tokenizer-XXXXXX";
    int fd = ::mkstemp(tmp.data());
    if (fd < 0) {
      error = name + ": cannot create a temporary file " + tmp + ": " +
              std::strerror(errno);
      return false;
    }
    bool written = writeAll(fd, bytes);
    int writeErrno = errno;
    ::close(fd);
    if (written)
      tokenizer_ = tokenizer::loadSentencePiece(tmp, error);
    ::unlink(tmp.c_str());
    if (!written) {
      error = name + ": cannot write a temporary file " + tmp + ": " +
              std::strerror(writeErrno);
      return false;
    }
    replaceAll(error, tmp, name);
  }
  if (!tokenizer_) {
    if (error.compare(0, path_.size(), path_) != 0)
      error = name + ": " + error;
    return false;
  }
  if (tokenizer_->vocabSize() != m.tokenizerVocab) {
    error = name + ": has " + std::to_string(tokenizer_->vocabSize()) +
            " tokens, the manifest's tokenizer.vocab says " +
            std::to_string(m.tokenizerVocab);
    return false;
  }
  return true;
}

LoadedBundle::~LoadedBundle() {
  if (handle_)
    ::dlclose(handle_);
  if (codeFd_ >= 0)
    ::close(codeFd_);
}

//===----------------------------------------------------------------------===//
// Sessions
//===----------------------------------------------------------------------===//

namespace {
thread_local ThreadPool *tlsPool = nullptr;
} // namespace

ThreadPool *Session::currentPool() { return tlsPool; }

std::unique_ptr<Session> Session::create(std::shared_ptr<LoadedBundle> bundle,
                                         unsigned threads,
                                         std::string &error) {
  const Manifest &m = bundle->manifest();
  std::unique_ptr<Session> s(new Session());
  if (threads != 1) {
    s->pool_ = std::make_unique<ThreadPool>(threads);
    if (s->pool_->size() == 1)
      s->pool_.reset();
  }
  if (bundle->isCuda()) {
    // PTX for the driver, weights uploaded once per bundle (docs/gpu.md).
    if (!(s->gpuModel_ = bundle->gpu(error)) ||
        !(s->gpu_ = GpuModel::newState(s->gpuModel_, error)))
      return nullptr;
    s->logits_.resize(size_t(m.vocab));
    s->bundle_ = std::move(bundle);
    return s;
  }
  // Two caches, and for a quantized cache two scale arrays; each zeroed and
  // 64-byte aligned.
  auto alloc = [](size_t bytes) -> void * {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = nullptr;
    if (::posix_memalign(&p, 64, rounded) != 0)
      return nullptr;
    std::memset(p, 0, rounded);
    return p;
  };
  const size_t cacheBytes =
      size_t(m.cacheElements()) * size_t(m.cacheElementBytes());
  const size_t scaleBytes =
      size_t(m.layers * m.context * m.kvHeads) * sizeof(float);
  s->k_ = alloc(cacheBytes);
  s->v_ = alloc(cacheBytes);
  bool ok = s->k_ && s->v_;
  if (ok && m.kvQuantized()) {
    s->kScales_ = static_cast<float *>(alloc(scaleBytes));
    s->vScales_ = static_cast<float *>(alloc(scaleBytes));
    ok = s->kScales_ && s->vScales_;
  }
  if (!ok) {
    error = bundle->path() + ": cannot allocate two KV caches of " +
            std::to_string(cacheBytes) + " bytes";
    return nullptr;
  }
  s->chunkLogits_.resize(size_t(m.prefillChunk * m.vocab));
  s->logits_.resize(size_t(m.vocab));
  s->chunk_.resize(size_t(m.prefillChunk));
  s->bundle_ = std::move(bundle);
  return s;
}

Session::~Session() {
  std::free(k_);
  std::free(v_);
  std::free(kScales_);
  std::free(vScales_);
}

void Session::reset() {
  if (gpu_) { // positions past pos are written before they are read
    pos_ = written_ = 0;
    hasLogits_ = false;
    return;
  }
  // Positions at or past written_ were never written: zero only the rest,
  // layer by layer ([layers][context][kv_heads * head_dim]).
  const Manifest &m = bundle_->manifest();
  const int64_t row = m.kvHeads * m.headDim;
  const size_t elem = size_t(m.cacheElementBytes());
  for (void *cache : {k_, v_})
    for (int64_t l = 0; l < m.layers; ++l)
      std::memset(static_cast<char *>(cache) + l * m.context * row * elem, 0,
                  size_t(written_ * row) * elem);
  for (float *scales : {kScales_, vScales_})
    if (scales)
      for (int64_t l = 0; l < m.layers; ++l)
        std::memset(scales + l * m.context * m.kvHeads, 0,
                    size_t(written_ * m.kvHeads) * sizeof(float));
  pos_ = 0;
  written_ = 0;
  hasLogits_ = false;
}

void Session::call(EntryFn fn, const int32_t *tokens, int64_t count,
                   float *out) {
  const Manifest &m = bundle_->manifest();
  std::copy(tokens, tokens + count, chunk_.begin());
  MemRef<int32_t, 1> t{chunk_.data(), chunk_.data(), 0, {count}, {1}};
  const int64_t sizes[4] = {m.layers, m.context, m.kvHeads, m.headDim};
  const int64_t strides[4] = {m.context * m.kvHeads * m.headDim,
                              m.kvHeads * m.headDim, m.headDim, 1};
  MemRef<float, 2> l{out, out, 0, {count, m.vocab}, {m.vocab, 1}};
  MemRef<int8_t, 1> w{
      bundle_->weights(), bundle_->weights(), 0, {m.weightsBytes}, {1}};
  // nibble_parallel_for, called by the code, finds this session's pool.
  struct PoolScope {
    ThreadPool *saved = tlsPool;
    explicit PoolScope(ThreadPool *p) { tlsPool = p; }
    ~PoolScope() { tlsPool = saved; }
  } scope(pool_.get());
  if (!m.kvQuantized()) {
    auto cache = [&](void *c) {
      float *p = static_cast<float *>(c);
      return MemRef<float, 4>{p,
                              p,
                              0,
                              {sizes[0], sizes[1], sizes[2], sizes[3]},
                              {strides[0], strides[1], strides[2], strides[3]}};
    };
    MemRef<float, 4> k = cache(k_), v = cache(v_);
    fn(&t, pos_, &k, &v, &l, &w);
  } else {
    auto codes = [&](void *c) {
      int8_t *p = static_cast<int8_t *>(c);
      return MemRef<int8_t, 4>{
          p,
          p,
          0,
          {sizes[0], sizes[1], sizes[2], sizes[3]},
          {strides[0], strides[1], strides[2], strides[3]}};
    };
    auto scales = [&](float *p) {
      return MemRef<float, 3>{p,
                              p,
                              0,
                              {m.layers, m.context, m.kvHeads},
                              {m.context * m.kvHeads, m.kvHeads, 1}};
    };
    MemRef<int8_t, 4> k = codes(k_), v = codes(v_);
    MemRef<float, 3> ks = scales(kScales_), vs = scales(vScales_);
    reinterpret_cast<QuantKVEntryFn>(reinterpret_cast<void *>(fn))(&t, pos_, &k, &v, &ks, &vs, &l, &w);
  }
  pos_ += count;
  written_ = std::max(written_, pos_);
}

bool Session::run(const int32_t *tokens, size_t n, float *allLogits,
                  std::string &error) {
  const Manifest &m = bundle_->manifest();
  if (n == 0)
    return true;
  if (!tokens) {
    error = "no tokens given (NULL with n = " + std::to_string(n) + ")";
    return false;
  }
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= m.vocab) {
      error = bundle_->path() + ": token " + std::to_string(tokens[i]) +
              " at index " + std::to_string(i) + " is out of range [0, " +
              std::to_string(m.vocab) + ")";
      return false;
    }
  if (n > uint64_t(m.context - pos_)) {
    error = bundle_->path() + ": " + std::to_string(n) +
            " tokens at position " + std::to_string(pos_) +
            " exceed the context of " + std::to_string(m.context) + " (" +
            std::to_string(m.context - pos_) + " positions left)";
    return false;
  }
  if (gpu_) {
    // One token at a time through the kernel sequence.
    for (size_t i = 0; i < n; ++i) {
      float *out = allLogits ? allLogits + i * size_t(m.vocab)
                             : logits_.data();
      if (!gpuModel_->step(*gpu_, tokens[i], pos_, out, error))
        return false;
      ++pos_;
      if (allLogits && i + 1 == n)
        std::copy(out, out + m.vocab, logits_.begin());
    }
    written_ = std::max(written_, pos_);
    hasLogits_ = true;
    return true;
  }
  const int64_t chunk = m.prefillChunk;
  size_t done = 0;
  float *last = nullptr;
  while (done < n) {
    bool whole = n - done >= size_t(chunk);
    int64_t count = whole ? chunk : 1;
    float *out = allLogits ? allLogits + done * size_t(m.vocab)
                 : whole   ? chunkLogits_.data()
                           : logits_.data();
    call(whole ? bundle_->prefill() : bundle_->decode(), tokens + done, count,
         out);
    done += size_t(count);
    last = out + (count - 1) * m.vocab;
  }
  if (last != logits_.data())
    std::copy(last, last + m.vocab, logits_.begin());
  hasLogits_ = true;
  return true;
}

} // namespace nibble::runtime
