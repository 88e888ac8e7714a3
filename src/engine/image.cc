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
constexpr size_t kLarge = kMappedPixelBytes;
// The largest buffer kept for reuse after it is freed (a 12 MP RGB image is 36 MB).
constexpr size_t kMaxKept = size_t{64} << 20;

size_t rounded(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

#if defined(__linux__) && !defined(__SANITIZE_ADDRESS__)
// A large buffer is a mapping of its own, aligned to a huge page (which the kernel may use where
// transparent huge pages are always on). No MADV_HUGEPAGE: where they are asked for ("madvise",
// Debian's default), a fault may wait for the kernel to compact memory, and on an AMD EPYC the
// command line's whole job took a median 6% longer with it (12 runs each, interleaved), the page
// faults costing more system time and varying more, not less. A mapping of its own, not malloc's:
// the split JPEG decoder moves pages into it (imaging/jpeg_scans.cc), which must never split the
// heap that malloc manages.
void* map_large(size_t size) {
  const size_t span = size + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  auto* base = static_cast<uint8_t*>(raw);
  const size_t head = (kHugePage - reinterpret_cast<uintptr_t>(base) % kHugePage) % kHugePage;
  if (head > 0) munmap(base, head);
  if (span - head > size) munmap(base + head + size, span - head - size);
  return base + head;
}
void unmap_large(void* p, size_t size) { munmap(p, size); }
// A buffer of `from` bytes cut down to `to` (both multiples of the huge page).
void shrink_large(void* p, size_t from, size_t to) {
  if (from > to) munmap(static_cast<uint8_t*>(p) + to, from - to);
}
#else
// Under AddressSanitizer the allocator's own (with its red zones; it maps large blocks one by
// one too); elsewhere, aligned_alloc.
void* map_large(size_t size) {
  void* p = std::aligned_alloc(kHugePage, size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void unmap_large(void* p, size_t) { std::free(p); }
void shrink_large(void*, size_t, size_t) {}
#endif

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
    shrink_large(p, size_, size);  // freed later as `size` bytes
    return p;
  }
  // Keeps `p` (returns true) or leaves it to the caller to free.
  bool keep(void* p, size_t size) {
    if (size > kMaxKept) return false;
    std::lock_guard lock(mutex_);
    if (buffer_ != nullptr && size_ <= size) {
      unmap_large(buffer_, size_);
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
  return map_large(size);
}

template <>
void PixelAllocator<uint8_t>::free_pixels(void* p, size_t bytes) {
  if (bytes < kLarge) {
    ::operator delete(p);
  } else if (!kept().keep(p, rounded(bytes))) {
    unmap_large(p, rounded(bytes));
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
