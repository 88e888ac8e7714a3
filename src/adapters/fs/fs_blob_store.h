// BlobStore adapter: a directory on disk (the embedded default).
//
// A key maps to the file <root>/<key>. put() writes a temporary file in the target directory,
// fsyncs it, renames it over the target and fsyncs the directory, so a reader (the gateway serving
// /files/...) sees the old file, no file, or the whole new one, and a put that returned survives a
// crash. Leftover temporary files (".tmp-*", from a crash in the middle of a put) are removed by
// remove_temporaries() at start-up.
//
//   FsBlobStore blobs("/var/lib/dither/files", "http://127.0.0.1:8080/files/");
//   blobs.put(ObjectKey{"originals/x.png"}, bytes, "image/png");
//
// Thread-safe.
#pragma once

#include <filesystem>
#include <string>

#include "ports/blob_store.h"

namespace dither {

class FsBlobStore final : public BlobStore {
 public:
  // `root` is created if missing. `url_prefix` is prepended to keys for public_url().
  FsBlobStore(std::filesystem::path root, std::string url_prefix);

  Status put(const ObjectKey& key, std::span<const uint8_t> bytes,
             std::string_view content_type) override;
  Result<std::vector<uint8_t>> get(const ObjectKey& key) override;
  Status remove(const ObjectKey& key) override;
  std::string public_url(const ObjectKey& key) const override;
  Result<std::vector<ObjectKey>> list(std::string_view prefix) override;
  std::string_view name() const override { return "filesystem"; }
  // The root is a directory we may write to (a full disk shows in the uploads' errors instead).
  Status ready() override;

  // The file a key is stored in (for serving); kInvalidArgument for an invalid key.
  Result<std::filesystem::path> path_of(std::string_view key) const;
  const std::filesystem::path& root() const { return root_; }
  // Deletes temporary files left by a crash; returns how many.
  int remove_temporaries();

 private:
  std::filesystem::path root_;
  std::string url_prefix_;
};

}  // namespace dither
