#include "engine/testing/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels.h"

namespace dither::engine::reference {

int32_t to_working(uint8_t sample, ColorSpace space) {
  if (space == ColorSpace::kSrgb) return sample * 257;
  return static_cast<int32_t>(std::lround(srgb_to_linear(sample / 255.0) * kWorkingMax));
}

Color nearest(const RefPalette& p, const std::array<int32_t, 3>& w,
              std::array<int32_t, 3>* chosen) {
  const Palette& pal = *p.palette;
  if (pal.is_levels()) {
    const int64_t c1 = pal.levels() - 1;
    uint8_t out[3];
    for (int c = 0; c < 3; ++c) {
      int level = 0;
      if (p.space == ColorSpace::kSrgb) {
        level = static_cast<int>((2 * w[c] * c1 + kWorkingMax) / (2 * kWorkingMax));
      } else {
        int64_t best = std::numeric_limits<int64_t>::max();
        for (int i = 0; i < pal.levels(); ++i) {
          const int64_t d = std::abs(int64_t{w[c]} - to_working(pal.level_value(i), p.space));
          if (d < best) {
            best = d;
            level = i;
          }
        }
      }
      out[c] = pal.level_value(level);
      if (chosen) (*chosen)[c] = to_working(out[c], p.space);
    }
    return Color{out[0], out[1], out[2]};
  }
  const int64_t wr = p.metric == Metric::kPerceptual ? 2126 : 1;
  const int64_t wg = p.metric == Metric::kPerceptual ? 7152 : 1;
  const int64_t wb = p.metric == Metric::kPerceptual ? 722 : 1;
  int64_t best = std::numeric_limits<int64_t>::max();
  Color best_color;
  for (const Color& c : pal.colors()) {
    const int64_t dr = w[0] - to_working(c.r, p.space);
    const int64_t dg = w[1] - to_working(c.g, p.space);
    const int64_t db = w[2] - to_working(c.b, p.space);
    const int64_t d = wr * dr * dr + wg * dg * dg + wb * db * db;
    if (d < best) {
      best = d;
      best_color = c;
    }
  }
  if (chosen) {
    *chosen = {to_working(best_color.r, p.space), to_working(best_color.g, p.space),
               to_working(best_color.b, p.space)};
  }
  return best_color;
}

void put(Image& out, int x, int y, Color c) {
  uint8_t* d = out.at(x, y);
  d[0] = c.r;
  d[1] = c.g;
  d[2] = c.b;
}

Color cell_nearest(const RefPalette& p, const std::array<int32_t, 3>& w,
                   std::array<int32_t, 3>* chosen) {
  if (p.palette->is_levels()) return nearest(p, w, chosen);
  std::array<int32_t, 3> middle{};
  for (int c = 0; c < 3; ++c) {
    int s = 0;  // the nearest sample, by working-space midpoints, ties up
    while (s < 255 && 2 * w[c] >= to_working(static_cast<uint8_t>(s), p.space) +
                                      to_working(static_cast<uint8_t>(s + 1), p.space)) {
      ++s;
    }
    const int cell = s / 4;
    middle[c] = (to_working(static_cast<uint8_t>(4 * cell + 1), p.space) +
                 to_working(static_cast<uint8_t>(4 * cell + 2), p.space)) /
                2;
  }
  return nearest(p, middle, chosen);
}

Image error_diffusion(const Image& in, const RefPalette& p, const DitherOptions& o) {
  const Kernel& k = *kernel_for(o.algorithm);
  const auto factors = fixed_point_weights(k, o.strength);
  Image out(in.width, in.height, in.channels);
  // Whole-image error buffer, with room for taps that fall outside the image.
  const int pad = 3;
  const int bw = in.width + 2 * pad;
  std::vector<std::array<int32_t, 3>> err(static_cast<size_t>(bw) *
                                          static_cast<size_t>(in.height + 4));
  auto cell = [&](int x, int y) -> std::array<int32_t, 3>& {
    return err[static_cast<size_t>(y) * static_cast<size_t>(bw) + static_cast<size_t>(x + pad)];
  };
  for (int y = 0; y < in.height; ++y) {
    const bool reverse = o.serpentine && (y % 2 == 1);
    for (int i = 0; i < in.width; ++i) {
      const int x = reverse ? in.width - 1 - i : i;
      const uint8_t* s = in.at(x, y);
      std::array<int32_t, 3> v{};
      for (int c = 0; c < 3; ++c) {
        v[c] = std::clamp(to_working(s[c], p.space) + cell(x, y)[c], 0, kWorkingMax);
      }
      std::array<int32_t, 3> chosen{};
      const Color col = cell_nearest(p, v, &chosen);
      put(out, x, y, col);
      for (int t = 0; t < k.tap_count; ++t) {
        const KernelTap& tap = k.taps[static_cast<size_t>(t)];
        const int tx = x + (reverse ? -tap.dx : tap.dx);
        for (int c = 0; c < 3; ++c) {
          // Arithmetic shift: floor division by 4096, as documented.
          cell(tx, y + tap.dy)[c] +=
              ((v[c] - chosen[c]) * factors[static_cast<size_t>(t)]) >> kWeightShift;
        }
      }
    }
  }
  return out;
}

Image dither(const Image& in, const Palette& palette, const DitherOptions& options) {
  const RefPalette p{&palette, options.color_space, options.metric};
  Image out;
  if (is_error_diffusion(options.algorithm)) {
    out = error_diffusion(in, p, options);
  } else if (options.algorithm == Algorithm::kRiemersma) {
    out = riemersma(in, p, options);
  } else if (options.algorithm == Algorithm::kYliluoma) {
    out = yliluoma(in, p, options);
  } else if (options.algorithm == Algorithm::kDotDiffusion) {
    out = dot_diffusion(in, p, options);
  } else {
    out = ordered(in, p, options);
  }
  if (in.has_alpha()) {
    for (size_t i = 0; i < in.pixel_count(); ++i) out.pixels[i * 4 + 3] = in.pixels[i * 4 + 3];
  }
  return out;
}

}  // namespace dither::engine::reference
