// STUB
#include "engine/testing/reference.h"

namespace dither::reference {

Image ordered(const Image& in, const RefPalette& p, const DitherOptions&) {
  Image out(in.width, in.height, in.channels);
  for (int y = 0; y < in.height; ++y)
    for (int x = 0; x < in.width; ++x) {
      const uint8_t* s = in.at(x, y);
      const Color c = nearest(p, {to_working(s[0], p.space), to_working(s[1], p.space), to_working(s[2], p.space)}, nullptr);
      uint8_t* d = out.at(x, y);
      d[0] = c.r; d[1] = c.g; d[2] = c.b;
    }
  return out;
}
Image riemersma(const Image& in, const RefPalette& p, const DitherOptions& o) { return ordered(in, p, o); }
Image yliluoma(const Image& in, const RefPalette& p, const DitherOptions& o) { return ordered(in, p, o); }

}  // namespace dither::reference
