// Blocking HTTP requests over libcurl for the blob stores that talk to a web API (S3,
// Cloudinary), plus the digests and percent-encoding their request signing needs, and libcurl's
// process-wide initialisation (also for the SMTP sender).
//
//   curl::Client client({.timeout = std::chrono::seconds(30)});
//   Result<curl::Response> r = client.perform({.method = "GET", .url =
//   "http://127.0.0.1:7070/b/k"}); if (!r) return r.error();          // the request did not
//   complete: kUnavailable or kInternal if (r->status == 404) ...          // every HTTP status is
//   a Response
//
// Connections are reused: the client keeps a small pool of curl easy handles (each with its own
// connection cache), so a thread takes an idle handle, and the next request to the same host
// goes over an open connection. Bodies are sent from the caller's memory without a copy. curl and
// OpenSSL types stay in the .cc.
//
// Thread-safe: perform() may be called from any number of threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dither::curl {

struct Request {
  std::string method = "GET";          // GET, HEAD, PUT, POST, DELETE
  std::string url{};                   // already percent-encoded
  std::vector<std::string> headers{};  // "Name: value"
  // Sent with PUT and POST (its Content-Length), and must outlive perform().
  std::span<const uint8_t> body{};
  // AWS Signature V4 (CURLOPT_AWS_SIGV4, e.g. "aws:amz:us-east-1:s3") with "access:secret".
  // curl 7.88 signs every header in `headers` and takes the payload hash from
  // x-amz-content-sha256 when present.
  std::string aws_sigv4{};
  std::string user_password{};
};

struct Response {
  long status = 0;
  std::vector<uint8_t> body{};
  std::string_view text() const {
    return {reinterpret_cast<const char*>(body.data()), body.size()};
  }
};

// curl_global_init, which is not thread-safe: once per process, before the first easy handle.
// Every adapter that uses libcurl calls it first. Throws std::runtime_error when it fails.
void global_init();

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds timeout{30000};  // the whole request, body included
  size_t max_idle_handles = 16;              // handles (and their connections) kept for reuse
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any HTTP status is a Response. A request that did not complete is an Error: kUnavailable
  // when the server could not be reached or did not answer in time (refused, reset, timed out,
  // name not resolved), kInternal for anything else (a malformed URL, out of memory).
  Result<Response> perform(const Request& request);

  // TCP connections opened so far (reused connections are not counted again).
  uint64_t connections_opened() const { return connections_opened_.load(); }

 private:
  struct Pool;
  ClientOptions options_;
  std::unique_ptr<Pool> pool_;
  std::atomic<uint64_t> connections_opened_{0};
};

// Lower-case hex digests (OpenSSL EVP).
std::string sha256_hex(std::span<const uint8_t> bytes);
std::string sha256_hex(std::string_view text);
std::string sha1_hex(std::string_view text);

// `url` without its trailing slashes: a base URL that paths are appended to.
std::string without_trailing_slashes(std::string url);

// RFC 3986 percent-encoding as AWS SigV4 wants it: every byte except A-Z a-z 0-9 - . _ ~ becomes
// %XX (upper-case hex); '/' is kept when `keep_slash` (a path), encoded otherwise (a query value).
std::string uri_encode(std::string_view text, bool keep_slash);

}  // namespace dither::curl
