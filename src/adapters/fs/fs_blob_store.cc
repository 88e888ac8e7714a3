#include "adapters/fs/fs_blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include "adapters/shared/object_keys.h"

namespace dither {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kTempPrefix = ".tmp-";

Error io_error(std::string_view what, const fs::path& path, int err) {
  // A full disk or a quota is worth retrying later; everything else is unexpected.
  const ErrorKind kind = (err == ENOSPC || err == EDQUOT || err == EAGAIN) ? ErrorKind::kUnavailable
                                                                           : ErrorKind::kInternal;
  return make_error(kind, std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

Status write_all(int fd, std::span<const uint8_t> bytes, const fs::path& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Status fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return io_error("cannot sync directory", dir, err);
  return {};
}

std::string temp_name() {
  static std::atomic<uint64_t> counter{0};
  return std::string(kTempPrefix) + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

}  // namespace

FsBlobStore::FsBlobStore(fs::path root, std::string url_prefix)
    : root_(std::move(root)), url_prefix_(std::move(url_prefix)) {
  fs::create_directories(root_);  // start-up: throws when the data directory is unusable
}

Status FsBlobStore::ready() {
  if (::access(root_.c_str(), W_OK | X_OK) != 0) {
    return make_error(ErrorKind::kUnavailable, "blob store: cannot write to " + root_.string() +
                                                   ": " + std::strerror(errno));
  }
  return {};
}

Result<fs::path> FsBlobStore::path_of(std::string_view key) const {
  if (!is_valid_object_key(key)) {
    return adapters::invalid_key(key);
  }
  return root_ / fs::path(std::string(key));
}

Status FsBlobStore::put(const ObjectKey& key, std::span<const uint8_t> bytes,
                        std::string_view /*content_type*/) {
  Result<fs::path> target = path_of(key.value);
  if (!target) return target.error();
  const fs::path dir = target->parent_path();
  const fs::path temp = dir / temp_name();
  int fd = -1;
  // Twice: remove() may delete an emptied per-image directory between our mkdir and open.
  for (int attempt = 0; attempt < 2 && fd < 0; ++attempt) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return io_error("cannot create directory", dir, ec.value());
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != ENOENT) break;
  }
  if (fd < 0) return io_error("cannot create", temp, errno);
  Status written = write_all(fd, bytes, temp);
  if (written.ok() && ::fsync(fd) != 0) written = io_error("cannot sync", temp, errno);
  ::close(fd);
  if (written.ok() && ::rename(temp.c_str(), target->c_str()) != 0) {
    written = io_error("cannot rename onto", *target, errno);
  }
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return written;
  }
  return fsync_directory(dir);
}

Result<std::vector<uint8_t>> FsBlobStore::get(const ObjectKey& key) {
  Result<fs::path> path = path_of(key.value);
  if (!path) return path.error();
  const int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // ENOTDIR: a parent is a file ("a.png/b"), so there is no such object either.
    if (errno == ENOENT || errno == ENOTDIR) {
      return make_error(ErrorKind::kNotFound, "no object " + key.value);
    }
    return io_error("cannot open", *path, errno);
  }
  std::vector<uint8_t> out;
  uint8_t chunk[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      // A directory is only a prefix of other keys, not an object (as in S3).
      if (err == EISDIR) return make_error(ErrorKind::kNotFound, "no object " + key.value);
      return io_error("cannot read", *path, err);
    }
    if (n == 0) break;
    out.insert(out.end(), chunk, chunk + n);
  }
  ::close(fd);
  return out;
}

Status FsBlobStore::remove(const ObjectKey& key) {
  Result<fs::path> path = path_of(key.value);
  if (!path) return path.error();
  // EISDIR: a directory is only a prefix of other keys, not an object; ENOTDIR: a parent is a
  // file. Either way there is no such object to remove (as in S3).
  if (::unlink(path->c_str()) != 0 && errno != ENOENT) {
    if (errno == EISDIR || errno == ENOTDIR) return {};
    return io_error("cannot remove", *path, errno);
  }
  // An emptied per-image directory (dithers/<uuid>/) goes too; rmdir fails when it is not empty.
  const fs::path dir = path->parent_path();
  if (dir.parent_path() != root_ && dir != root_) ::rmdir(dir.c_str());
  return {};
}

std::string FsBlobStore::public_url(const ObjectKey& key) const { return url_prefix_ + key.value; }

Result<std::vector<ObjectKey>> FsBlobStore::list(std::string_view prefix) {
  std::vector<ObjectKey> keys;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string key = fs::relative(it->path(), root_).generic_string();
    if (key.starts_with(prefix) && is_valid_object_key(key) &&
        !it->path().filename().string().starts_with(kTempPrefix)) {
      keys.push_back(ObjectKey{std::move(key)});
    }
  }
  if (ec) return io_error("cannot list", root_, ec.value());
  return keys;
}

int FsBlobStore::remove_temporaries() {
  int removed = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file() && it->path().filename().string().starts_with(kTempPrefix)) {
      std::error_code rm;
      if (fs::remove(it->path(), rm)) ++removed;
    }
  }
  return removed;
}

}  // namespace dither
