#include "cli/files.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace dither::cli {

Result<std::vector<uint8_t>> read_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(ErrorKind::kNotFound, "cannot read '" + path + "': " + ec.message());
  if (size > max_bytes) {
    return make_error(ErrorKind::kTooLarge, "'" + path + "' is " + std::to_string(size) +
                                                " bytes, over the limit of " +
                                                std::to_string(max_bytes));
  }
  // One read of the size file_size() gave (a byte at a time through istreambuf_iterator took
  // 40 ms for 16 MB), then whatever a file still being written has added since, within the limit.
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorKind::kNotFound, "cannot read '" + path + "'");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  char more[1 << 16];
  while (in.good()) {
    in.read(more, sizeof more);
    bytes.insert(bytes.end(), more, more + in.gcount());
    if (bytes.size() > max_bytes) {
      return make_error(ErrorKind::kTooLarge,
                        "'" + path + "' is over the limit of " + std::to_string(max_bytes));
    }
  }
  if (in.bad()) return make_error(ErrorKind::kNotFound, "cannot read '" + path + "'");
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
