// What the blob stores (fs, S3, Cloudinary) answer for a key that is not a valid ObjectKey
// (is_valid_object_key, ports/records.h).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace dither::adapters {

// kInvalidArgument naming the key (at most its first 100 bytes).
inline Error invalid_key(std::string_view key) {
  return make_error(ErrorKind::kInvalidArgument,
                    "invalid object key '" + std::string(key.substr(0, 100)) + "'");
}

}  // namespace dither::adapters
