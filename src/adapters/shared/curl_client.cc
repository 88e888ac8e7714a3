#include "adapters/shared/curl_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <mutex>
#include <stdexcept>

namespace dither::curl {
namespace {

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct ListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using HeaderList = std::unique_ptr<curl_slist, ListDeleter>;

struct Sink {
  CURL* handle;
  std::vector<uint8_t>* body;
};

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->body->empty()) {
    curl_off_t length = -1;
    // Reserve once from Content-Length (bounded: a lying header must not allocate gigabytes).
    if (curl_easy_getinfo(sink->handle, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
        length > 0 && length < (curl_off_t{1} << 30)) {
      sink->body->reserve(static_cast<size_t>(length));
    }
  }
  sink->body->insert(sink->body->end(), data, data + n);
  return n;
}

bool is_transport_failure(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
      return true;
    default:
      return false;
  }
}

std::string hex_digest(const EVP_MD* md, const void* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data, size, digest, &length, md, nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");  // only on allocation failure
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * length, '0');
  for (unsigned int i = 0; i < length; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xF];
  }
  return out;
}

}  // namespace

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

struct Client::Pool {
  std::mutex mutex;
  std::vector<EasyHandle> idle;
};

Client::Client(ClientOptions options) : options_(options), pool_(std::make_unique<Pool>()) {
  global_init();
}

Client::~Client() = default;

Result<Response> Client::perform(const Request& request) {
  EasyHandle handle;
  {
    std::lock_guard lock(pool_->mutex);
    if (!pool_->idle.empty()) {
      handle = std::move(pool_->idle.back());
      pool_->idle.pop_back();
    }
  }
  if (handle) {
    curl_easy_reset(handle.get());  // options only: open connections and the DNS cache stay
  } else {
    handle.reset(curl_easy_init());
    if (!handle) return make_error(ErrorKind::kInternal, "curl_easy_init failed");
  }
  CURL* h = handle.get();

  HeaderList headers;
  for (const std::string& header : request.headers) {
    curl_slist* grown = curl_slist_append(headers.get(), header.c_str());
    if (grown == nullptr) return make_error(ErrorKind::kInternal, "curl_slist_append failed");
    (void)headers.release();
    headers.reset(grown);
  }

  Response response;
  Sink sink{h, &response.body};
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);    // several threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);  // the signed path is exactly the sent path
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (!request.aws_sigv4.empty()) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
    curl_easy_setopt(h, CURLOPT_USERPWD, request.user_password.c_str());
  }

  static const char kEmpty[] = "";
  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    // A body from memory (curl does not copy it); PUT goes as a POST with another verb, which
    // keeps the body rewindable if curl must resend it on a fresh connection.
    const void* data =
        request.body.empty() ? static_cast<const void*>(kEmpty) : request.body.data();
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    if (request.method == "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  const CURLcode code = curl_easy_perform(h);
  if (code == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  }
  long connects = 0;
  if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0) {
    connections_opened_ += static_cast<uint64_t>(connects);
  }
  // Drop this request's pointers before the handle goes back to the pool.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  {
    std::lock_guard lock(pool_->mutex);
    if (pool_->idle.size() < options_.max_idle_handles) pool_->idle.push_back(std::move(handle));
  }
  handle.reset();  // outside the lock when the pool is full

  if (code != CURLE_OK) {
    std::string message = request.method + " " + request.url + ": " + curl_easy_strerror(code);
    if (error_buffer[0] != '\0') message += std::string(" (") + error_buffer + ")";
    return make_error(is_transport_failure(code) ? ErrorKind::kUnavailable : ErrorKind::kInternal,
                      std::move(message));
  }
  return response;
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  return hex_digest(EVP_sha256(), bytes.data(), bytes.size());
}

std::string sha256_hex(std::string_view text) {
  return hex_digest(EVP_sha256(), text.data(), text.size());
}

std::string sha1_hex(std::string_view text) {
  return hex_digest(EVP_sha1(), text.data(), text.size());
}

std::string uri_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' ||
                            byte == '_' || byte == '~' || (keep_slash && byte == '/');
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
  return out;
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace dither::curl
