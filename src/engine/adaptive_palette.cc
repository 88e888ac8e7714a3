// STUB: replaced by median cut + k-means.
#include "engine/palette.h"

namespace dither {

std::vector<Color> adaptive_palette(const Image&, int count) {
  std::vector<Color> out;
  for (int i = 0; i < count; ++i) out.push_back(Color{level_value(i, count), level_value(i, count), level_value(i, count)});
  return out;
}

}  // namespace dither
