#include "adapters/http_fetch/curl_url_fetcher.h"

#include <curl/curl.h>

#include <memory>
#include <string>

namespace dither {
namespace {

struct Sink {
  std::vector<uint8_t> bytes;
  uint64_t max_bytes = 0;
  bool too_large = false;
};

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->bytes.size() + n > sink->max_bytes) {
    sink->too_large = true;
    return 0;  // aborts the transfer
  }
  sink->bytes.insert(sink->bytes.end(), data, data + n);
  return n;
}

// Failures that waiting will not cure: no such host, a certificate that does not verify, a
// redirect loop or to another scheme, a malformed URL.
bool permanent(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_REMOTE_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

}  // namespace

CurlUrlFetcher::CurlUrlFetcher(std::chrono::milliseconds timeout) : timeout_(timeout) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

Result<std::vector<uint8_t>> CurlUrlFetcher::fetch(std::string_view url, uint64_t max_bytes) {
  const std::string target(url);
  if (!target.starts_with("http://") && !target.starts_with("https://")) {
    return make_error(ErrorKind::kInvalidArgument, "not an http(s) URL: " + target.substr(0, 200));
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return make_error(ErrorKind::kInternal, "curl_easy_init failed");
  Sink sink;
  sink.max_bytes = max_bytes;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, target.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "dither-fetch/1");
  const CURLcode rc = curl_easy_perform(c);
  if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    return make_error(ErrorKind::kTooLarge, "the file at " + target.substr(0, 200) + " is over " +
                                                std::to_string(max_bytes) + " bytes");
  }
  if (rc != CURLE_OK && permanent(rc)) {
    return make_error(ErrorKind::kNotFound,
                      "fetching " + target.substr(0, 200) + ": " + curl_easy_strerror(rc));
  }
  if (rc != CURLE_OK) {
    return make_error(ErrorKind::kUnavailable,
                      "fetching " + target.substr(0, 200) + ": " + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status == 404 || status == 410) {
    return make_error(ErrorKind::kNotFound, "no file at " + target.substr(0, 200));
  }
  if (status >= 500 || status == 429) {
    return make_error(ErrorKind::kUnavailable,
                      "fetching " + target.substr(0, 200) + ": HTTP " + std::to_string(status));
  }
  if (status != 200) {
    return make_error(ErrorKind::kInvalidArgument,
                      "fetching " + target.substr(0, 200) + ": HTTP " + std::to_string(status));
  }
  return std::move(sink.bytes);
}

}  // namespace dither
