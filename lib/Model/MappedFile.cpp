//===- MappedFile.cpp - Read-only memory-mapped files ---------------------===//

#include "nibble/Model/MappedFile.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace nibble::model {

std::shared_ptr<MappedFile> MappedFile::open(const std::string &path,
                                             std::string &error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = path + ": not a regular file";
    ::close(fd);
    return nullptr;
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = size_t(st.st_size);
  if (file->size_ > 0) {
    void *p = mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      error = "cannot map " + path + ": " + std::strerror(errno);
      ::close(fd);
      return nullptr;
    }
    file->data_ = static_cast<const uint8_t *>(p);
  }
  ::close(fd);
  return file;
}

std::shared_ptr<MappedFile> MappedFile::fromMemory(const std::string &name,
                                                   const uint8_t *data,
                                                   size_t size) {
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = name;
  file->size_ = size;
  file->owned_.reset(new uint8_t[size ? size : 1]);
  if (size)
    std::memcpy(file->owned_.get(), data, size);
  file->data_ = file->owned_.get();
  return file;
}

MappedFile::~MappedFile() {
  if (data_ && !owned_)
    munmap(const_cast<uint8_t *>(data_), size_);
}

} // namespace nibble::model
