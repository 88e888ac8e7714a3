// Server-side secrets (docs/SECURITY.md, "Secrets"): from the environment, or generated once into
// a file of the data directory (256 bits from the CSPRNG, mode 0600, created atomically so that
// processes starting together on one directory agree).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace dither {

struct Secret {
  std::string value;
  bool generated = false;  // from the file (or made now), not from the environment
};

// `configured` when not empty; otherwise the content of `file`, creating it first if missing.
Result<Secret> load_secret(std::string_view configured, const std::filesystem::path& file);

}  // namespace dither
