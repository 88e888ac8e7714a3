// Port: fetch a file by URL. The dithering service uses it for originals announced only by URL
// (an IMAGE_UPLOADED in the Python prototype's shape: uuid, url, filename; no blob_key).
// Adapter: libcurl (adapters/http_fetch). Thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dither {

class UrlFetcher {
 public:
  virtual ~UrlFetcher() = default;
  // The body of a 200 answer to GET `url` (http or https only). kNotFound for 404/410 and for
  // what waiting will not cure (unknown host, certificate), kTooLarge past `max_bytes`,
  // kUnavailable when the server cannot be reached or answers 5xx/429 (a URL that stays so is
  // given up after bounded attempts: then kNotFound), kInvalidArgument for another scheme, a
  // malformed URL, another status, a redirect without a target or one redirect too many (a
  // loop), kUnsupported when fetching is off or the host (a redirect's too) is not allowed or
  // is at a refused address.
  virtual Result<std::vector<uint8_t>> fetch(std::string_view url, uint64_t max_bytes) = 0;
};

}  // namespace dither
