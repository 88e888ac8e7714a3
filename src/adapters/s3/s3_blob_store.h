// BlobStore adapter: an S3-compatible object store (AWS S3, versitygw, MinIO, ...), for the
// distributed mode.
//
// Requests are path-style (<endpoint>/<bucket>/<key>) and signed with AWS Signature V4 by libcurl;
// each carries x-amz-content-sha256, the hex SHA-256 of its body. An ObjectKey maps to the S3 key
// of the same name. put() is one PutObject (S3 makes it atomic: a reader sees the old object or
// the whole new one), get() a GetObject, remove() a DeleteObject (a missing key succeeds), list()
// pages through ListObjectsV2. Connections are kept open and reused (curl_client.h).
//
//   S3BlobStore blobs({.endpoint = "http://127.0.0.1:7070", .bucket = "dither",
//                      .access_key = "...", .secret_key = "...",
//                      .public_base_url = "https://cdn.example.com/"});
//   if (Status s = blobs.ensure_bucket(); !s) ...;
//   blobs.put(ObjectKey{"originals/x.png"}, bytes, "image/png");
//
// Errors: the server unreachable, a timeout, 5xx or 429/SlowDown are kUnavailable (retry later);
// 403 (wrong credentials or no permission) and a missing bucket are kInternal, with the HTTP
// status and S3's error code in the message; an invalid ObjectKey is kInvalidArgument.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "ports/blob_store.h"

namespace dither {

namespace curl {
class Client;
struct Response;
}  // namespace curl

struct S3Options {
  std::string endpoint{};  // http://127.0.0.1:7070 (scheme, host, port; no path)
  std::string region = "us-east-1";
  std::string bucket{};
  std::string access_key{};
  std::string secret_key{};
  // Prefixed to the key for public_url() ('/' added when missing); empty: <endpoint>/<bucket>/.
  std::string public_base_url{};
  std::chrono::milliseconds timeout{30000};  // a whole request (connecting: at most 3 s of it)
  int list_page_size = 1000;                 // ListObjectsV2 max-keys (1..1000)
};

class S3BlobStore final : public BlobStore {
 public:
  // Throws std::invalid_argument when the endpoint is not http(s)://host[:port] or the bucket is
  // empty (start-up). Sends nothing.
  explicit S3BlobStore(S3Options options);
  ~S3BlobStore() override;

  Status put(const ObjectKey& key, std::span<const uint8_t> bytes,
             std::string_view content_type) override;
  Result<std::vector<uint8_t>> get(const ObjectKey& key) override;
  Status remove(const ObjectKey& key) override;
  std::string public_url(const ObjectKey& key) const override;
  Result<std::vector<ObjectKey>> list(std::string_view prefix) override;
  std::string_view name() const override { return "s3"; }

  // Creates the bucket; a bucket that already exists and is ours is fine.
  Status ensure_bucket();
  // HeadBucket: OK when the server answers and the bucket exists.
  Status ping();
  Status ready() override { return ping(); }

  const S3Options& options() const { return options_; }

 private:
  Result<curl::Response> send(std::string_view method, const std::string& url,
                              std::span<const uint8_t> body, std::string_view content_type);
  std::string object_url(const ObjectKey& key) const;
  Error error_of(std::string_view what, const curl::Response& response) const;

  S3Options options_;
  std::string bucket_url_;     // <endpoint>/<bucket>
  std::string public_prefix_;  // public_url() = public_prefix_ + key
  std::string sigv4_;          // "aws:amz:<region>:s3"
  std::string credentials_;    // "<access>:<secret>"
  std::unique_ptr<curl::Client> client_;
};

}  // namespace dither
