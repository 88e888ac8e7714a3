#include "adapters/sqlite/shared_counter.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string_view>
#include <vector>

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

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kCheckEveryNs = 1'000'000'000;
constexpr int kEpochShift = 48;  // a mapping's epoch in the top bits of the values it gives

}  // namespace

struct SharedCounters::Mapping {
  void* address = nullptr;  // null: the counters of this process alone, in `own`
  size_t size = 0;
  dev_t device = 0;
  ino_t inode = 0;
  uint64_t epoch = 0;  // how many files were mapped before this one
  alignas(8) uint64_t own[kCount] = {};

  uint64_t* words() { return address != nullptr ? static_cast<uint64_t*>(address) : own; }
  ~Mapping() {
    if (address != nullptr) ::munmap(address, size);
  }

  static Result<std::unique_ptr<Mapping>> of(const std::string& path) {
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
    // Allocated on disk now (a mapped page without blocks would fault on a full disk at the
    // first write), and never shrunk: a process that maps it meanwhile keeps its words.
    if (const int e = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size)); e != 0) {
      return unavailable(path, "allocate", e);
    }
    void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (address == MAP_FAILED) return unavailable(path, "map", errno);
    auto m = std::make_unique<Mapping>();
    m->address = address;  // the mapping keeps the file after the descriptor closes
    m->size = size;
    m->device = st.st_dev;
    m->inode = st.st_ino;
    return m;
  }
};

struct SharedCounters::State {
  std::string path;
  std::atomic<Mapping*> current{nullptr};
  std::mutex remapping;
  std::vector<std::unique_ptr<Mapping>> mappings;  // every one mapped: a reader may hold any
  std::atomic<int64_t> next_check{0};
  std::atomic<bool> lost{false};      // the file is gone and could not be mapped again
  std::atomic<uint64_t> lost_values{0};
};

SharedCounters::SharedCounters(std::string path, std::unique_ptr<Mapping> first)
    : state_(std::make_unique<State>()) {
  state_->path = std::move(path);
  state_->current.store(first.get());
  state_->mappings.push_back(std::move(first));
  state_->next_check.store(steady_ns() + kCheckEveryNs);
}

SharedCounters::~SharedCounters() = default;

Result<std::unique_ptr<SharedCounters>> SharedCounters::open(const std::string& path) {
  std::unique_ptr<Mapping> first;
  if (path.empty()) {
    first = std::make_unique<Mapping>();
  } else {
    Result<std::unique_ptr<Mapping>> mapped = Mapping::of(path);
    if (!mapped) return mapped.error();
    first = std::move(*mapped);
  }
  return std::unique_ptr<SharedCounters>(new SharedCounters(path, std::move(first)));
}

void SharedCounters::check_file(bool now_always) {
  State& s = *state_;
  if (s.path.empty()) return;
  const int64_t now = steady_ns();
  int64_t due = s.next_check.load(std::memory_order_relaxed);
  if (!now_always &&
      (now < due || !s.next_check.compare_exchange_strong(due, now + kCheckEveryNs))) {
    return;
  }
  const std::lock_guard lock(s.remapping);
  Mapping* current = s.current.load(std::memory_order_acquire);
  struct stat st {};
  if (::stat(s.path.c_str(), &st) == 0 && st.st_dev == current->device &&
      st.st_ino == current->inode) {
    s.lost.store(false, std::memory_order_release);
    return;
  }
  Result<std::unique_ptr<Mapping>> mapped = Mapping::of(s.path);
  if (!mapped) {
    s.lost.store(true, std::memory_order_release);
    return;
  }
  (*mapped)->epoch = current->epoch + 1;
  s.current.store(mapped->get(), std::memory_order_release);
  s.mappings.push_back(std::move(*mapped));
  s.lost.store(false, std::memory_order_release);
}

uint64_t SharedCounters::load(size_t i) {
  check_file(false);
  State& s = *state_;
  if (s.lost.load(std::memory_order_acquire)) {
    // Never a value given before: the top bit set, then a count of its own.
    return (uint64_t{1} << 63) | s.lost_values.fetch_add(1, std::memory_order_relaxed);
  }
  Mapping* m = s.current.load(std::memory_order_acquire);
  const uint64_t value = std::atomic_ref<uint64_t>(m->words()[i]).load(std::memory_order_acquire);
  return value ^ (m->epoch << kEpochShift);
}

void SharedCounters::bump(size_t i) {
  // Always on the file at the path now (a revocation is rare): a counter moved in a file that
  // others no longer map would tell them nothing.
  check_file(true);
  Mapping* m = state_->current.load(std::memory_order_acquire);
  std::atomic_ref<uint64_t>(m->words()[i]).fetch_add(1);
}

}  // namespace dither::sqlite
