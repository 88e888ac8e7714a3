// Raw interleaved 8-bit RGB files (no header), as `convert photo.jpg -depth 8 rgb:photo.rgb`
// writes them. For the benchmark tools only: the engine itself never touches files.
#pragma once

#include <string>

#include "common/result.h"
#include "engine/image.h"

namespace dither::bench {

// Reads `width * height * 3` bytes; the file must be exactly that long.
Result<engine::Image> read_raw_rgb(const std::string& path, int width, int height);
// Writes the pixels of an RGB image as they are.
Status write_raw_rgb(const std::string& path, const engine::Image& image);

}  // namespace dither::bench
