// Reading and writing whole files for the command line, shared by the one-file and batch modes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unzeroed.h"

namespace dither::cli {

// Storage that is not zeroed before it is read into: zeroing 16 MB first, page by page, took a
// quarter of the time of reading them.
template <class T>
struct UnzeroedAllocator : UnzeroedConstruct {
  using value_type = T;
  UnzeroedAllocator() = default;
  template <class U>
  UnzeroedAllocator(const UnzeroedAllocator<U>&) {}  // NOLINT(google-explicit-constructor)
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) { std::allocator<T>().deallocate(p, n); }
  friend bool operator==(const UnzeroedAllocator&, const UnzeroedAllocator&) { return true; }
};
using FileBytes = std::vector<uint8_t, UnzeroedAllocator<uint8_t>>;

// The bytes of the regular file at `path`; kNotFound when it cannot be read, kTooLarge over
// `max_bytes`. A large file is read in two halves on two threads (the kernel's copy and the
// page faults of the buffer are most of the time, and nothing else runs yet).
Result<FileBytes> read_file(const std::string& path, size_t max_bytes);

// Writes beside the target and renames, so that a failure never leaves half a file behind;
// "-" writes to `out`. A regular file is written beside the target and renamed over it; a target
// that is not a regular file (a device such as /dev/null, a FIFO) is written in place.
Status write_file(const std::string& path, const std::vector<uint8_t>& bytes, std::ostream& out);

}  // namespace dither::cli
