#include "engine/image.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace dither::engine {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kLarge = size_t{4} << 20;
// The largest buffer kept for reuse after it is freed (a 12 MP RGB image is 36 MB).
constexpr size_t kMaxKept = size_t{64} << 20;

size_t rounded(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

// One freed large buffer, kept for the next allocation of a similar size. Processing one image
// after another otherwise maps, faults in (the kernel zeroing every page) and unmaps tens of
// megabytes each time: 10% of a Floyd-Steinberg dither. At most kMaxKept bytes are held.
class KeptBuffer {
 public:
  void* take(size_t size) {
    std::lock_guard lock(mutex_);
    if (buffer_ == nullptr || size_ < size || size_ > 2 * size) return nullptr;
    void* p = buffer_;
    buffer_ = nullptr;
    return p;
  }
  // Keeps `p` (returns true) or leaves it to the caller to free.
  bool keep(void* p, size_t size) {
    if (size > kMaxKept) return false;
    std::lock_guard lock(mutex_);
    if (buffer_ != nullptr && size_ <= size) {
      std::free(buffer_);
      buffer_ = nullptr;
    }
    if (buffer_ != nullptr) return false;
    buffer_ = p;
    size_ = size;
    return true;
  }

 private:
  std::mutex mutex_;
  void* buffer_ = nullptr;
  size_t size_ = 0;
};

KeptBuffer& kept() {
  static KeptBuffer* k = new KeptBuffer;  // never destroyed: outlives every Image
  return *k;
}

}  // namespace

template <>
void* PixelAllocator<uint8_t>::allocate_pixels(size_t bytes) {
  if (bytes < kLarge) return ::operator new(bytes);
  const size_t size = rounded(bytes);
  if (void* p = kept().take(size)) return p;
  // Aligned to a huge page, which the kernel may use where transparent huge pages are always on;
  // no MADV_HUGEPAGE: where they are asked for ("madvise", Debian's default), a fault may wait
  // for the kernel to compact memory, and on an AMD EPYC the command line's whole job took a
  // median 6% longer with it (12 runs each, interleaved), the page faults costing more system
  // time and varying more, not less.
  void* p = std::aligned_alloc(kHugePage, size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

template <>
void PixelAllocator<uint8_t>::free_pixels(void* p, size_t bytes) {
  if (bytes < kLarge) {
    ::operator delete(p);
  } else if (!kept().keep(p, rounded(bytes))) {
    std::free(p);
  }
}

void release_rows(Image& img, int begin, int end) {
#if defined(__linux__)
  begin = std::max(begin, 0);
  end = std::min(end, img.height);
  if (begin >= end) return;
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  uint8_t* first = img.row(begin);
  const size_t bytes = static_cast<size_t>(end - begin) * img.stride();
  // The first page boundary at or after `first`, and the whole pages from there within `bytes`.
  const size_t head = (page - reinterpret_cast<uintptr_t>(first) % page) % page;
  if (bytes <= head) return;
  const size_t whole = (bytes - head) / page * page;
  // Advice only: when it fails the pages stay resident, nothing else changes.
  if (whole > 0) madvise(first + head, whole, MADV_DONTNEED);
#else
  (void)img;
  (void)begin;
  (void)end;
#endif
}

}  // namespace dither::engine
