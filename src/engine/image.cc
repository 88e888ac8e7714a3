#include "engine/image.h"

#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace dither {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kLarge = size_t{4} << 20;

size_t rounded(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

}  // namespace

template <>
void* PixelAllocator<uint8_t>::allocate_pixels(size_t bytes) {
  if (bytes < kLarge) return ::operator new(bytes);
  void* p = std::aligned_alloc(kHugePage, rounded(bytes));
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, rounded(bytes), MADV_HUGEPAGE);  // a hint; failure is harmless
#endif
  return p;
}

template <>
void PixelAllocator<uint8_t>::free_pixels(void* p, size_t bytes) {
  if (bytes < kLarge) {
    ::operator delete(p);
  } else {
    std::free(p);
  }
}

}  // namespace dither
