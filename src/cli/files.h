// Reading and writing whole files for the command line, shared by the one-file and batch modes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "common/result.h"

namespace dither::cli {

// The file's bytes; kNotFound when it cannot be read, kTooLarge over `max_bytes`.
Result<std::vector<uint8_t>> read_file(const std::string& path, size_t max_bytes);

// Writes beside the target and renames, so that a failure never leaves half a file behind;
// "-" writes to `out`. A regular file is written beside the target and renamed over it; a target
// that is not a regular file (a device such as /dev/null, a FIFO) is written in place.
Status write_file(const std::string& path, const std::vector<uint8_t>& bytes, std::ostream& out);

}  // namespace dither::cli
