#include "adapters/sqlite/shared_counter.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace dither::sqlite {
namespace {

static_assert(std::atomic_ref<uint64_t>::is_always_lock_free,
              "a counter shared between processes needs lock-free 64-bit atomics");

// The file descriptor while the file is opened and mapped.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Error unavailable(const std::string& path, std::string_view what, int error) {
  return make_error(ErrorKind::kUnavailable, "sqlite: cannot " + std::string(what) + " '" + path +
                                                 "': " + std::strerror(error));
}

}  // namespace

SharedCounters::SharedCounters(void* mapping, size_t size)
    : mapping_(mapping), size_(size), words_(own_) {
  if (mapping_ != nullptr) words_ = static_cast<uint64_t*>(mapping_);
}

SharedCounters::~SharedCounters() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

Result<std::unique_ptr<SharedCounters>> SharedCounters::open(const std::string& path) {
  if (path.empty()) return std::unique_ptr<SharedCounters>(new SharedCounters(nullptr, 0));
  const Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
  if (fd.get() < 0) return unavailable(path, "open", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return unavailable(path, "stat", errno);
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorKind::kUnavailable, "sqlite: '" + path + "' is not a regular file");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return make_error(ErrorKind::kUnavailable,
                      "sqlite: '" + path + "' may be written by others than its owner (chmod 600)");
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  const size_t size = page > 0 ? static_cast<size_t>(page) : 4096;
  // Allocated on disk now (a mapped page without blocks would fault on a full disk at the first
  // write), and never shrunk: a process that maps it meanwhile keeps its words.
  if (const int e = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size)); e != 0) {
    return unavailable(path, "allocate", e);
  }
  void* mapping = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (mapping == MAP_FAILED) return unavailable(path, "map", errno);
  // The mapping keeps the file after the descriptor closes.
  return std::unique_ptr<SharedCounters>(new SharedCounters(mapping, size));
}

uint64_t SharedCounters::load(size_t i) const {
  return std::atomic_ref<uint64_t>(words_[i]).load(std::memory_order_acquire);
}

void SharedCounters::bump(size_t i) { std::atomic_ref<uint64_t>(words_[i]).fetch_add(1); }

}  // namespace dither::sqlite
