// BlobStore adapter: Cloudinary (a hosted media service), for the distributed mode.
//
// Writes go through the signed Upload API (POST <api_base>/v1_1/<cloud>/raw/upload, then
// .../raw/destroy to remove); reads and public URLs are signed delivery URLs,
// <delivery_base>/<cloud>/raw/authenticated/s--<signature>--/<public_id>. Files are private
// (docs/SECURITY.md): they are uploaded as `type=authenticated`, which Cloudinary delivers only
// with the URL's signature (the first 8 characters of base64url(SHA-1(public_id + API secret)),
// cloudinary_delivery_signature()); such URLs do not expire (expiring tokens are a paid add-on).
// Requests are signed as Cloudinary documents: the parameters except file, cloud_name,
// resource_type and api_key, sorted by name, joined as k=v with '&', followed by the API secret,
// hashed with SHA-1 (cloudinary_signature()).
//
// Key mapping: the public_id is the ObjectKey itself ("dithers/<uuid>/7.png"; the slashes are
// Cloudinary folders), stored as resource type "raw". Raw keeps the file byte for byte and keeps
// the extension in the public_id, so the delivered bytes and their format are exactly what was
// put (our PNG/GIF/WebP dithers are exact palette images that any re-encoding would spoil), any
// bytes are accepted, and two keys that differ only by extension stay two objects. The "image"
// type would instead validate and may re-encode, and drops the extension from the public_id.
// Overwrites ask Cloudinary to invalidate its CDN copy; until that completes, a delivery URL
// may still serve the previous bytes.
//
// Not offered: list() is kUnsupported, because listing needs the Admin API, limited to 500
// requests an hour (the database is the index); zero-byte objects (Cloudinary rejects empty
// files) are kInvalidArgument.
//
//   CloudinaryBlobStore blobs({.cloud_name = "demo", .api_key = "...", .api_secret = "..."});
//   blobs.put(ObjectKey{"originals/x.png"}, bytes, "image/png");
//   blobs.public_url(ObjectKey{"originals/x.png"});
//       // https://res.cloudinary.com/demo/raw/authenticated/s--<sig>--/originals/x.png
//
// Errors: unreachable, timeouts, 5xx and rate limiting (420/429) are kUnavailable; rejected
// credentials (401/403) and other refusals are kInternal with Cloudinary's message.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ports/blob_store.h"

namespace dither {

namespace curl {
class Client;
struct Response;
}  // namespace curl

struct CloudinaryOptions {
  std::string cloud_name{};  // CLOUDINARY_CLOUD_NAME
  std::string api_key{};     // CLOUDINARY_API_KEY
  std::string api_secret{};  // CLOUDINARY_API_SECRET
  std::string api_base = "https://api.cloudinary.com";
  std::string delivery_base = "https://res.cloudinary.com";
  std::chrono::milliseconds timeout{30000};  // a whole request (connecting: at most 3 s of it)
};

// Cloudinary's signature of a request's parameters (name, value): those named file, cloud_name,
// resource_type, api_key or signature are left out, the rest sorted by name and joined as
// "a=1&b=2", the secret appended, and the whole hashed: lower-case hex SHA-1.
// The delivery URL's signature component of an authenticated asset: "s--" + the first 8
// characters of base64url(SHA-1(public_id + api_secret)) + "--".
std::string cloudinary_delivery_signature(std::string_view public_id, std::string_view api_secret);

std::string cloudinary_signature(std::vector<std::pair<std::string, std::string>> params,
                                 std::string_view api_secret);

class CloudinaryBlobStore final : public BlobStore {
 public:
  // Throws std::invalid_argument when the cloud name, key or secret is empty, or a base URL is
  // not http(s) (start-up). Sends nothing.
  explicit CloudinaryBlobStore(CloudinaryOptions options);
  ~CloudinaryBlobStore() override;

  Status put(const ObjectKey& key, std::span<const uint8_t> bytes,
             std::string_view content_type) override;
  Result<std::vector<uint8_t>> get(const ObjectKey& key) override;
  Status remove(const ObjectKey& key) override;
  std::string public_url(const ObjectKey& key) const override;
  // Always kUnsupported (see above); sends nothing.
  Result<std::vector<ObjectKey>> list(std::string_view prefix) override;
  std::string_view name() const override { return "cloudinary"; }

 private:
  // A signed multipart POST to <api_base>/v1_1/<cloud>/raw/<action>.
  Result<curl::Response> post(std::string_view action,
                              std::vector<std::pair<std::string, std::string>> params,
                              std::span<const uint8_t> file, std::string_view file_name,
                              std::string_view file_type);
  Error error_of(std::string_view what, const curl::Response& response) const;

  CloudinaryOptions options_;
  std::string api_url_;       // <api_base>/v1_1/<cloud>/raw/
  std::string delivery_url_;  // <delivery_base>/<cloud>/raw/upload/
  std::unique_ptr<curl::Client> client_;
};

}  // namespace dither
