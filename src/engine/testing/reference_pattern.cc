// Reference Knoll pattern dithering, straight from docs/ENGINE-ORDERED.md ("Pattern dithering
// (Knoll)"): the 64 candidates of every pixel devised afresh with the brute-force nearest colour,
// sorted by luma with a plain comparator (levels palettes: each channel's values sorted on their
// own), and the Bayer 8x8 rank from the bit-interleave formula.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/testing/reference.h"

namespace dither::engine::reference {

namespace {

struct Candidate {
  Color color;
  int64_t luma;
  int64_t index;
};

std::vector<Candidate> candidates(const RefPalette& p, const std::array<int32_t, 3>& target,
                                  double strength) {
  const int64_t f = std::lround(4096.0 * strength);
  std::array<int64_t, 3> error{};
  std::vector<Candidate> list;
  for (int k = 0; k < 64; ++k) {
    std::array<int32_t, 3> v{};
    for (size_t c = 0; c < 3; ++c) {
      // error * f >> 12 is the floor of error * f / 4096.
      const int64_t scaled = error[c] * f;
      const int64_t shift = scaled >= 0 ? scaled / 4096 : -((-scaled + 4095) / 4096);
      v[c] = static_cast<int32_t>(std::clamp<int64_t>(target[c] + shift, 0, kWorkingMax));
    }
    std::array<int32_t, 3> chosen{};
    const Color col = nearest(p, v, &chosen);
    for (size_t c = 0; c < 3; ++c) error[c] += target[c] - chosen[c];
    const auto& colors = p.palette->colors();
    list.push_back({col, 299 * col.r + 587 * col.g + 114 * col.b,
                    std::find(colors.begin(), colors.end(), col) - colors.begin()});
  }
  if (p.palette->is_levels()) {
    std::vector<uint8_t> r, g, b;
    for (const Candidate& c : list) {
      r.push_back(c.color.r);
      g.push_back(c.color.g);
      b.push_back(c.color.b);
    }
    std::sort(r.begin(), r.end());
    std::sort(g.begin(), g.end());
    std::sort(b.begin(), b.end());
    for (size_t k = 0; k < list.size(); ++k) list[k].color = Color{r[k], g[k], b[k]};
    return list;
  }
  std::sort(list.begin(), list.end(), [](const Candidate& a, const Candidate& b) {
    return a.luma != b.luma ? a.luma < b.luma : a.index < b.index;
  });
  return list;
}

}  // namespace

Image pattern(const Image& in, const RefPalette& p, const DitherOptions& o) {
  Image out(in.width, in.height, in.channels);
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < in.width; ++x) {
      const int rank = bayer8_rank(x, y);
      const uint8_t* s = in.at(x, y);
      const auto list = candidates(
          p, {to_working(s[0], p.space), to_working(s[1], p.space), to_working(s[2], p.space)},
          o.strength);
      put(out, x, y, list[static_cast<size_t>(rank)].color);
    }
  }
  return out;
}

}  // namespace dither::engine::reference
