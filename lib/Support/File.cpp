//===- File.cpp - Whole-file reads and atomic writes ----------------------===//

#include "nibble/Support/File.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nibble::support {

bool readFile(const std::string &path, std::string &out, std::string &error) {
  std::FILE *f = std::fopen(path.c_str(), "rb");
  if (!f) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  out.clear();
  char buffer[65536];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, f)) > 0)
    out.append(buffer, got);
  // fopen succeeds on a directory; the read then fails with EISDIR.
  bool failed = std::ferror(f);
  int readErrno = errno;
  std::fclose(f);
  if (failed) {
    error = "cannot read " + path + ": " + std::strerror(readErrno);
    return false;
  }
  return true;
}

bool writeFileAtomic(const std::string &path, const void *data, size_t size,
                     std::string &error) {
  AtomicFileWriter out;
  return out.open(path, error) && out.write(data, size, error) &&
         out.commit(error);
}

AtomicFileWriter::~AtomicFileWriter() { discard(); }

void AtomicFileWriter::discard() {
  if (fd_ < 0)
    return;
  ::close(fd_);
  ::unlink(tmp_.c_str());
  fd_ = -1;
  tmp_.clear();
}

bool AtomicFileWriter::open(const std::string &path, std::string &error) {
  discard();
  path_ = path;
  written_ = 0;
  tmp_ = path + ".tmp.XXXXXX";
  fd_ = mkstemp(tmp_.data());
  if (fd_ < 0) {
    error = "cannot create a temporary file next to " + path + ": " +
            std::strerror(errno);
    tmp_.clear();
    return false;
  }
  return true;
}

bool AtomicFileWriter::write(const void *data, size_t size,
                             std::string &error) {
  if (fd_ < 0) {
    error = "cannot write " + path_ + ": not open";
    return false;
  }
  const auto *p = static_cast<const uint8_t *>(data);
  size_t left = size;
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      error = "cannot write " + path_ + ": " + std::strerror(errno);
      discard();
      return false;
    }
    p += w;
    left -= size_t(w);
    written_ += size_t(w);
  }
  return true;
}

bool AtomicFileWriter::writeZeros(size_t count, std::string &error) {
  static const uint8_t zeros[4096] = {};
  while (count > 0) {
    size_t n = count < sizeof zeros ? count : sizeof zeros;
    if (!write(zeros, n, error))
      return false;
    count -= n;
  }
  return true;
}

bool AtomicFileWriter::commit(std::string &error) {
  if (fd_ < 0) {
    error = "cannot write " + path_ + ": not open";
    return false;
  }
  fchmod(fd_, 0644);
  int fd = fd_;
  fd_ = -1; // closed below whatever happens
  if (::fsync(fd) != 0) {
    error = "cannot write " + path_ + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(tmp_.c_str());
    return false;
  }
  if (::close(fd) != 0) {
    error = "cannot write " + path_ + ": " + std::strerror(errno);
    ::unlink(tmp_.c_str());
    return false;
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    error = "cannot rename to " + path_ + ": " + std::strerror(errno);
    ::unlink(tmp_.c_str());
    return false;
  }
  tmp_.clear();
  // Make the rename itself durable (best effort: some file systems refuse
  // fsync on a directory).
  size_t slash = path_.rfind('/');
  std::string dir = slash == std::string::npos ? "."
                    : slash == 0               ? "/"
                                               : path_.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

} // namespace nibble::support
