// STUB: replaced by the ordered-dithering implementation.
#include "engine/algorithms.h"

namespace dither::detail {


void ordered_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions&) {
  const auto& tw = q.to_working();
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x) {
      const uint8_t* p = in.at(x, y);
      write_nearest(q, tw[p[0]], tw[p[1]], tw[p[2]], out.at(x, y));
    }
}

}  // namespace dither::detail

namespace dither {
const std::vector<std::string_view>& halftone_names() {
  static const std::vector<std::string_view> names = {"h6x6a"};
  return names;
}
}  // namespace dither
