#include "cli/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>

namespace dither::cli {

namespace {

// Reads up to `size` bytes at `offset`; how many it read (fewer at the end of the file). On an
// error, sets `error` to its errno.
size_t read_at(int fd, uint8_t* to, size_t size, off_t offset, int& error) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, to + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = errno;
      break;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// Files from this size on are read on two threads.
constexpr size_t kTwoThreads = size_t{4} << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<FileBytes> read_file(const std::string& path, size_t max_bytes) {
  const auto cannot = [&path](int error) {
    return make_error(ErrorKind::kNotFound,
                      "cannot read '" + path + "': " + std::generic_category().message(error));
  };
  // O_NONBLOCK: a FIFO with no writer would block the open itself; it is refused below.
  const Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) return cannot(errno);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return cannot(errno);
  if (S_ISDIR(st.st_mode)) return cannot(EISDIR);
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorKind::kNotFound, "cannot read '" + path + "': not a regular file");
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size > max_bytes) {
    return make_error(ErrorKind::kTooLarge, "'" + path + "' is " + std::to_string(size) +
                                                " bytes, over the limit of " +
                                                std::to_string(max_bytes));
  }
  // The size fstat() gave, the second half on a thread of its own for a large file.
  FileBytes bytes(size);
  const size_t half = size >= kTwoThreads ? size / 2 : size;
  int first_error = 0, second_error = 0;
  size_t first = 0, second = 0;
  {
    const auto read_second = [&] {
      second = read_at(fd.get(), bytes.data() + half, size - half, static_cast<off_t>(half),
                       second_error);
    };
    std::jthread other;
    if (half < size) {
      try {
        other = std::jthread(read_second);
      } catch (const std::exception&) {
        read_second();  // no thread to be had: one after the other
      }
    }
    first = read_at(fd.get(), bytes.data(), half, 0, first_error);
  }  // joined
  if (first_error != 0) return cannot(first_error);
  if (second_error != 0) return cannot(second_error);
  // A file that shrank meanwhile: its bytes up to the first gap, and no more.
  if (first < half || half + second < size) {
    bytes.resize(first < half ? first : half + second);
    return bytes;
  }
  // A file still being written may have grown since: the rest, within the limit.
  uint8_t more[1 << 16];
  while (true) {
    int error = 0;
    const size_t n = read_at(fd.get(), more, sizeof more, static_cast<off_t>(bytes.size()), error);
    if (error != 0) return cannot(error);
    if (n == 0) break;
    if (bytes.size() + n > max_bytes) {
      return make_error(ErrorKind::kTooLarge,
                        "'" + path + "' is over the limit of " + std::to_string(max_bytes));
    }
    bytes.insert(bytes.end(), more, more + n);
  }
  return bytes;
}

Status write_file(const std::string& path, const std::vector<uint8_t>& bytes, std::ostream& out) {
  if (path == "-") {
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.flush();
    return {};
  }
  // A target that exists and is not a regular file (/dev/null, a FIFO, a terminal) is written in
  // place: renaming over it would replace the device with a file (as root, /dev/null itself).
  std::error_code kind_ec;
  const auto kind = std::filesystem::status(path, kind_ec).type();
  if (!kind_ec && kind != std::filesystem::file_type::regular &&
      kind != std::filesystem::file_type::not_found) {
    if (kind == std::filesystem::file_type::directory) {
      return make_error(ErrorKind::kInvalidArgument, "'" + path + "' is a folder");
    }
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f.good()) return make_error(ErrorKind::kInternal, "cannot write '" + path + "'");
    return {};
  }
  // Write beside the target and rename, so a failure never leaves half a file behind.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    if (!f.good()) {
      std::remove(tmp.c_str());
      return make_error(ErrorKind::kInternal, "cannot write '" + path + "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return make_error(ErrorKind::kInternal, "cannot write '" + path + "': " + ec.message());
  }
  return {};
}

}  // namespace dither::cli
