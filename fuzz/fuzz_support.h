// Helpers shared by the fuzz targets: an invariant check that aborts (libFuzzer then saves the
// input as a crash), and the splitting of one input into fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// Checked in every build (not assert(): NDEBUG must not turn the invariants off).
#define FUZZ_CHECK(condition)                                                                \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)

namespace dither::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Cuts the next field off `rest`: everything before the first `separator` (all of `rest` when
// there is none); `rest` keeps what follows the separator.
inline std::string_view next_field(std::string_view& rest, char separator) {
  const size_t at = rest.find(separator);
  const std::string_view field = rest.substr(0, at);
  rest = at == std::string_view::npos ? std::string_view{} : rest.substr(at + 1);
  return field;
}

// Fields of a structured input are separated by this byte: it is never valid UTF-8, so no
// field a target cares about needs it, and a seed stays readable.
inline constexpr char kFieldSeparator = '\xff';

}  // namespace dither::fuzz
