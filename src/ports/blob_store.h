// Port: where originals and dithers are stored.
//
// Adapters: a directory on disk (embedded default; the gateway serves the files) and, in
// distributed mode, S3-compatible storage or Cloudinary. Keys are ObjectKeys; `put` is atomic
// (a reader sees the old object, nothing, or the whole new one, never a part) and durable when it
// returns; `remove` of a missing key succeeds, so both can be retried safely.
//
// Thread-safe: every adapter may be called from any thread at the same time.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "ports/records.h"

namespace dither {

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  virtual Status put(const ObjectKey& key, std::span<const uint8_t> bytes,
                     std::string_view content_type) = 0;
  // kNotFound when the key does not exist.
  virtual Result<std::vector<uint8_t>> get(const ObjectKey& key) = 0;
  virtual Status remove(const ObjectKey& key) = 0;
  // The URL under which clients fetch the object; it ends with "/" + the key. Where the gateway
  // serves the store, the answers sign it (docs/SECURITY.md).
  virtual std::string public_url(const ObjectKey& key) const = 0;
  // Every key that starts with `prefix` (for sweeping orphans); may be slow.
  virtual Result<std::vector<ObjectKey>> list(std::string_view prefix) = 0;
  // "filesystem", "s3", ... for /health and logs.
  virtual std::string_view name() const = 0;
  // Whether the store is usable now (GET /health/ready): the bucket answers, the directory is
  // writable. Cheap enough to call once a second.
  virtual Status ready() { return {}; }
};

}  // namespace dither
