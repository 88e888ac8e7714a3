#include "auth/secrets.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "common/crypto.h"

namespace dither {
namespace {

Result<std::string> read_secret_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorKind::kNotFound, "cannot read " + file.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.size() < 32) {
    return make_error(ErrorKind::kInvalidArgument,
                      file.string() + " holds no secret of at least 32 characters");
  }
  return text;
}

}  // namespace

Result<Secret> load_secret(std::string_view configured, const std::filesystem::path& file) {
  if (!configured.empty()) return Secret{std::string(configured), false};
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) {
    return make_error(ErrorKind::kUnavailable,
                      "cannot create " + file.parent_path().string() + ": " + ec.message());
  }
  ::chmod(file.parent_path().c_str(), 0700);
  if (Result<std::string> existing = read_secret_file(file)) return Secret{*existing, true};
  // Written to a temporary file, then linked into place: link() fails when another process won
  // the race, and then its secret is the one read.
  const std::string value = random_token(32);
  const std::filesystem::path temporary =
      file.parent_path() / ("." + file.filename().string() + "." + random_hex(8));
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(ErrorKind::kUnavailable,
                      "cannot write " + temporary.string() + ": " + std::strerror(errno));
  }
  const std::string line = value + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  const bool linked = written && ::link(temporary.c_str(), file.c_str()) == 0;
  ::unlink(temporary.c_str());
  if (!written) return make_error(ErrorKind::kUnavailable, "cannot write " + file.string());
  (void)linked;  // either ours or the winner's is in place now
  Result<std::string> now = read_secret_file(file);
  if (!now) return now.error();
  return Secret{*now, true};
}

}  // namespace dither
