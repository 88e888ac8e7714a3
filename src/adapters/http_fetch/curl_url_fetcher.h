// UrlFetcher over libcurl: GET with bounded time and size, at most 3 redirects, http(s) only.
#pragma once

#include <chrono>

#include "ports/url_fetcher.h"

namespace dither {

class CurlUrlFetcher : public UrlFetcher {
 public:
  explicit CurlUrlFetcher(std::chrono::milliseconds timeout = std::chrono::seconds{30});
  Result<std::vector<uint8_t>> fetch(std::string_view url, uint64_t max_bytes) override;

 private:
  std::chrono::milliseconds timeout_;
};

}  // namespace dither
