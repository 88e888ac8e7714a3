#include "common/result.h"

namespace dither {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid_argument";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kTooLarge:
      return "too_large";
    case ErrorKind::kTooManyPixels:
      return "too_many_pixels";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kUndecodable:
      return "undecodable";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

}  // namespace dither
