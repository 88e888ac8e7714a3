#include "adapters/s3/s3_blob_store.h"

#include <stdexcept>
#include <utility>

#include "adapters/s3/s3_xml.h"
#include "adapters/shared/curl_client.h"
#include "adapters/shared/object_keys.h"

namespace dither {
namespace {

constexpr std::string_view kDefaultContentType = "application/octet-stream";

// A 404 that means "no such object". Other 404s are not about the object: NoSuchBucket, or
// versitygw's XAdminUserNotFound for an unknown access key, must never read as a missing object.
bool is_missing_object(const curl::Response& response) {
  if (response.status != 404) return false;
  const std::string code = s3::parse_error(response.text()).code;
  return code == "NoSuchKey" || code.empty();
}

// Error codes that mean the credentials are wrong, whatever the status (AWS says 403, versitygw
// answers an unknown access key with 404 XAdminUserNotFound).
bool is_credentials_error(long status, std::string_view code) {
  return status == 403 || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
         code == "XAdminUserNotFound";
}

}  // namespace

S3BlobStore::S3BlobStore(S3Options options) : options_(std::move(options)) {
  options_.endpoint = curl::without_trailing_slashes(options_.endpoint);
  if (!options_.endpoint.starts_with("http://") && !options_.endpoint.starts_with("https://")) {
    throw std::invalid_argument("S3 endpoint '" + options_.endpoint +
                                "' must start with http:// or https://");
  }
  if (options_.bucket.empty()) throw std::invalid_argument("S3 bucket is empty");
  if (options_.region.empty()) throw std::invalid_argument("S3 region is empty");
  if (options_.list_page_size < 1 || options_.list_page_size > 1000) {
    throw std::invalid_argument("S3 list page size must be 1..1000");
  }
  bucket_url_ = options_.endpoint + "/" + curl::uri_encode(options_.bucket, false);
  public_prefix_ = options_.public_base_url.empty() ? bucket_url_ + "/" : options_.public_base_url;
  if (!public_prefix_.ends_with('/')) public_prefix_ += '/';
  // "aws:amz:<region>:s3": with plain "aws" curl derives region and service from the host name,
  // which fails for 127.0.0.1 and for path-style endpoints.
  sigv4_ = "aws:amz:" + options_.region + ":s3";
  credentials_ = options_.access_key + ":" + options_.secret_key;
  client_ = std::make_unique<curl::Client>(curl::ClientOptions{.timeout = options_.timeout});
}

S3BlobStore::~S3BlobStore() = default;

std::string S3BlobStore::object_url(const ObjectKey& key) const {
  return bucket_url_ + "/" + curl::uri_encode(key.value, /*keep_slash=*/true);
}

Result<curl::Response> S3BlobStore::send(std::string_view method, const std::string& url,
                                         std::span<const uint8_t> body,
                                         std::string_view content_type) {
  curl::Request request;
  request.method = std::string(method);
  request.url = url;
  request.body = body;
  request.aws_sigv4 = sigv4_;
  request.user_password = credentials_;
  // curl 7.88 never adds the payload hash S3 requires, but signs it (and uses it as the signed
  // payload hash) when we send it. No "Expect:" header to switch 100-continue off: curl would
  // sign that empty header, which the server never receives.
  request.headers.push_back("x-amz-content-sha256: " + curl::sha256_hex(body));
  if (!content_type.empty())
    request.headers.push_back("Content-Type: " + std::string(content_type));
  Result<curl::Response> response = client_->perform(request);
  if (!response) {
    Error error = response.error();
    error.message =
        (error.kind == ErrorKind::kUnavailable ? "S3 unreachable: " : "S3 request failed: ") +
        error.message;
    return error;
  }
  return response;
}

Error S3BlobStore::error_of(std::string_view what, const curl::Response& response) const {
  const s3::S3ErrorBody body = s3::parse_error(response.text());
  std::string detail = "HTTP " + std::to_string(response.status);
  if (!body.code.empty()) detail += " " + body.code;
  if (!body.message.empty()) detail += " (" + body.message + ")";
  std::string message = "S3 " + std::string(what) + ": " + detail;
  if (response.status >= 500 || response.status == 429 || body.code == "SlowDown") {
    return make_error(ErrorKind::kUnavailable, message + "; retry later");
  }
  if (is_credentials_error(response.status, body.code)) {
    return make_error(ErrorKind::kInternal, message +
                                                "; check the S3 access key, secret key and region "
                                                "(S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION=" +
                                                options_.region + ")");
  }
  if (body.code == "NoSuchBucket") {
    return make_error(ErrorKind::kInternal,
                      message + "; create bucket '" + options_.bucket + "' first");
  }
  return make_error(ErrorKind::kInternal, std::move(message));
}

Status S3BlobStore::put(const ObjectKey& key, std::span<const uint8_t> bytes,
                        std::string_view content_type) {
  if (!is_valid_object_key(key.value)) return adapters::invalid_key(key.value);
  Result<curl::Response> response = send("PUT", object_url(key), bytes,
                                         content_type.empty() ? kDefaultContentType : content_type);
  if (!response) return response.error();
  if (response->status != 200) return error_of("PUT " + key.value, *response);
  return {};
}

Result<std::vector<uint8_t>> S3BlobStore::get(const ObjectKey& key) {
  if (!is_valid_object_key(key.value)) return adapters::invalid_key(key.value);
  Result<curl::Response> response = send("GET", object_url(key), {}, "");
  if (!response) return response.error();
  if (response->status == 200) return std::move(response->body);
  if (is_missing_object(*response))
    return make_error(ErrorKind::kNotFound, "no object " + key.value);
  return error_of("GET " + key.value, *response);
}

Status S3BlobStore::remove(const ObjectKey& key) {
  if (!is_valid_object_key(key.value)) return adapters::invalid_key(key.value);
  Result<curl::Response> response = send("DELETE", object_url(key), {}, "");
  if (!response) return response.error();
  const long status = response->status;
  if (status == 204 || status == 200) return {};
  // S3 answers 204 for a missing key; some servers say 404 NoSuchKey. Either way it is gone.
  if (is_missing_object(*response)) return {};
  return error_of("DELETE " + key.value, *response);
}

std::string S3BlobStore::public_url(const ObjectKey& key) const {
  return public_prefix_ + curl::uri_encode(key.value, /*keep_slash=*/true);
}

Result<std::vector<ObjectKey>> S3BlobStore::list(std::string_view prefix) {
  std::vector<ObjectKey> keys;
  std::string token;
  for (;;) {
    // curl 7.88 signs the query string as sent, so it is sent canonical: parameters sorted by
    // name, values encoded the SigV4 way.
    std::string query;
    if (!token.empty()) query = "continuation-token=" + curl::uri_encode(token, false) + "&";
    query += "list-type=2&max-keys=" + std::to_string(options_.list_page_size) +
             "&prefix=" + curl::uri_encode(prefix, false);
    Result<curl::Response> response = send("GET", bucket_url_ + "?" + query, {}, "");
    if (!response) return response.error();
    if (response->status != 200) {
      return error_of("LIST " + std::string(prefix.substr(0, 100)), *response);
    }
    Result<s3::ListObjectsPage> page = s3::parse_list_objects(response->text());
    if (!page) return page.error();
    for (std::string& key : page->keys) {
      // Objects written by something else under names that are not ObjectKeys are not ours.
      if (is_valid_object_key(key)) keys.push_back(ObjectKey{std::move(key)});
    }
    if (!page->truncated) break;
    if (page->next_token == token) {
      return make_error(ErrorKind::kInternal, "S3 repeated a continuation token while listing");
    }
    token = std::move(page->next_token);
  }
  return keys;
}

Status S3BlobStore::ensure_bucket() {
  // Outside us-east-1, S3 wants the region in the body.
  std::string body;
  if (options_.region != "us-east-1") {
    body =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" +
        options_.region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  Result<curl::Response> response = send("PUT", bucket_url_, bytes, "application/xml");
  if (!response) return response.error();
  if (response->status == 200) return {};
  // 409: BucketAlreadyOwnedByYou (fine), or BucketAlreadyExists, which is fine when we can use it.
  if (response->status == 409 && ping().ok()) return {};
  return error_of("create bucket " + options_.bucket, *response);
}

Status S3BlobStore::ping() {
  Result<curl::Response> response = send("HEAD", bucket_url_, {}, "");
  if (!response) return response.error();
  if (response->status == 200) return {};
  if (response->status >= 400 && response->status < 500) {
    // A HEAD answer has no body to say why (no bucket? unknown access key?): ask again with a
    // request whose answer does.
    Result<curl::Response> why = send("GET", bucket_url_ + "?list-type=2&max-keys=1", {}, "");
    if (why && why->status != 200) return error_of("HEAD bucket " + options_.bucket, *why);
  }
  return error_of("HEAD bucket " + options_.bucket, *response);
}

}  // namespace dither
