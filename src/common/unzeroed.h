// What makes an allocator leave new elements unzeroed: `std::vector<uint8_t, A>(n)` or a resize
// value-initialises (zeroes) every byte unless the allocator's construct() says otherwise. For
// buffers that are written whole before they are read (pixels, a file's bytes), that zeroing is
// a pass over memory for nothing. An allocator derives from this to get that construct().
#pragma once

#include <new>
#include <utility>

namespace dither {

struct UnzeroedConstruct {
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0) {
      ::new (static_cast<void*>(p)) U;  // default-initialise: no zeroing
    } else {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  }
};

}  // namespace dither
