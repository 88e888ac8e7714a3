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

namespace {

// 16-bit linear light of a working value (docs/ENGINE-DISTANCE.md).
int64_t linear16(int32_t w, ColorSpace space) {
  if (space == ColorSpace::kLinear) return w;
  return std::lround(srgb_to_linear(w / 65535.0) * 65535.0);
}

// Oklab times 65535, from the definition: LMS rows, cube roots, Lab rows.
std::array<int64_t, 3> oklab(const std::array<int32_t, 3>& w, ColorSpace space) {
  const int64_t r = linear16(w[0], space);
  const int64_t g = linear16(w[1], space);
  const int64_t b = linear16(w[2], space);
  std::array<int64_t, 3> root{};
  for (size_t row = 0; row < 3; ++row) {
    const int32_t* k = kOklabLms[row];
    const int64_t lms = (k[0] * r + k[1] * g + k[2] * b + 32768) >> 16;
    root[row] = std::lround(std::cbrt(lms / 65535.0) * 65535.0);
  }
  std::array<int64_t, 3> lab{};
  for (size_t row = 0; row < 3; ++row) {
    const int32_t* k = kOklabLab[row];
    lab[row] = (k[0] * root[0] + k[1] * root[1] + k[2] * root[2] + 32768) >> 16;
  }
  return lab;
}

// CIELAB (D65) from the definition: sRGB matrix to XYZ, divided by the matrix's white, f, Lab.
Lab cielab(const std::array<int32_t, 3>& w, ColorSpace space) {
  const double r = static_cast<double>(linear16(w[0], space)) / 65535.0;
  const double g = static_cast<double>(linear16(w[1], space)) / 65535.0;
  const double b = static_cast<double>(linear16(w[2], space)) / 65535.0;
  const double x = 0.4124564 * r + 0.3575761 * g + 0.1804375 * b;
  const double y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
  const double z = 0.0193339 * r + 0.1191920 * g + 0.9503041 * b;
  auto f = [](double t) {
    return t > 216.0 / 24389.0 ? std::cbrt(t) : (24389.0 / 27.0 * t + 16.0) / 116.0;
  };
  const double fx = f(x / (0.4124564 * 1.0 + 0.3575761 * 1.0 + 0.1804375 * 1.0));
  const double fy = f(y / (0.2126729 * 1.0 + 0.7151522 * 1.0 + 0.0721750 * 1.0));
  const double fz = f(z / (0.0193339 * 1.0 + 0.1191920 * 1.0 + 0.9503041 * 1.0));
  return {116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)};
}

// The metric's distance from working point w to palette colour c: an integer for rgb, luma and
// oklab, Delta E 2000 for ciede2000 (both exact in a double: integers stay below 2^53).
double distance(const RefPalette& p, const std::array<int32_t, 3>& w, Color c) {
  const std::array<int32_t, 3> q{to_working(c.r, p.space), to_working(c.g, p.space),
                                 to_working(c.b, p.space)};
  switch (p.metric) {
    case Metric::kOklab: {
      const auto a = oklab(w, p.space);
      const auto b = oklab(q, p.space);
      int64_t d = 0;
      for (size_t i = 0; i < 3; ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
      return static_cast<double>(d);
    }
    case Metric::kCiede2000:
      return ciede2000(cielab(w, p.space), cielab(q, p.space));
    case Metric::kEuclidean:
    case Metric::kPerceptual:
      break;
  }
  const bool luma = p.metric == Metric::kPerceptual;
  const std::array<int64_t, 3> k =
      luma ? std::array<int64_t, 3>{2126, 7152, 722} : std::array<int64_t, 3>{1, 1, 1};
  int64_t d = 0;
  for (size_t i = 0; i < 3; ++i) d += k[i] * (w[i] - q[i]) * (w[i] - q[i]);
  return static_cast<double>(d);
}

}  // namespace

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
  double best = std::numeric_limits<double>::infinity();
  Color best_color;
  for (const Color& c : pal.colors()) {
    const double d = distance(p, w, c);
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

namespace {

// A named kernel, or the custom kernel's non-zero weights straight from its rows: dx is the column
// less the origin, dy the row.
Kernel kernel_of(const DitherOptions& o) {
  if (const Kernel* named = kernel_for(o.algorithm)) return *named;
  const CustomKernel& c = *o.kernel;
  Kernel k{o.algorithm, c.divisor, 0, {}};
  for (int row = 0; row < c.height; ++row) {
    for (int column = 0; column < c.width; ++column) {
      const int w = c.weights[static_cast<size_t>(row * c.width + column)];
      if (w > 0) k.taps[static_cast<size_t>(k.tap_count++)] = {column - c.origin, row, w};
    }
  }
  return k;
}

}  // namespace

Image error_diffusion(const Image& in, const RefPalette& p, const DitherOptions& o) {
  const Kernel k = kernel_of(o);
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
      if (in.has_alpha() && s[3] == 0) continue;  // transparent: its error is dropped
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

namespace {

// The alpha modes from their definitions (docs/TRANSPARENCY.md): the image the algorithms see,
// whose alpha is the final one (none for flatten).
Image with_final_alpha(const Image& in, const DitherOptions& o) {
  if (!in.has_alpha() || o.alpha == AlphaMode::kKeep) return in;
  const size_t n = in.pixel_count();
  if (o.alpha == AlphaMode::kFlatten) {
    const uint8_t bg[3] = {o.background.r, o.background.g, o.background.b};
    Image flat(in.width, in.height, 3);
    for (size_t i = 0; i < n; ++i) {
      const int32_t a = in.pixels[i * 4 + 3];
      for (size_t c = 0; c < 3; ++c) {
        const int32_t mix = (a * to_working(in.pixels[i * 4 + c], ColorSpace::kLinear) +
                             (255 - a) * to_working(bg[c], ColorSpace::kLinear) + 127) /
                            255;
        int s = 0;  // the nearest sample in linear light, by midpoints, ties up
        while (s < 255 &&
               2 * mix >= to_working(static_cast<uint8_t>(s), ColorSpace::kLinear) +
                              to_working(static_cast<uint8_t>(s + 1), ColorSpace::kLinear)) {
          ++s;
        }
        flat.pixels[i * 3 + c] = static_cast<uint8_t>(s);
      }
    }
    return flat;
  }
  Image work = in;
  if (o.alpha == AlphaMode::kThreshold) {
    for (size_t i = 0; i < n; ++i) work.pixels[i * 4 + 3] = in.pixels[i * 4 + 3] >= 128 ? 255 : 0;
    return work;
  }
  // Dither: the alpha as a grey image, black and white, same algorithm, 257 * alpha working values.
  Image grey(in.width, in.height, 3);
  for (size_t i = 0; i < n; ++i) {
    for (size_t c = 0; c < 3; ++c) grey.pixels[i * 3 + c] = in.pixels[i * 4 + 3];
  }
  DitherOptions g = o;
  g.alpha = AlphaMode::kKeep;
  g.color_space = ColorSpace::kSrgb;
  g.metric = Metric::kEuclidean;
  const Image bw = dither(grey, Palette::uniform_levels(2), g);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t a = in.pixels[i * 4 + 3];
    work.pixels[i * 4 + 3] = a == 0 || a == 255 ? a : bw.pixels[i * 3];  // 0 and 255 stay
  }
  return work;
}

}  // namespace

Image dither(const Image& original, const Palette& palette, const DitherOptions& options) {
  const Image in = with_final_alpha(original, options);
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
  } else if (options.algorithm == Algorithm::kOstromoukhov ||
             options.algorithm == Algorithm::kZhouFang) {
    out = variable_diffusion(in, p, options);
  } else if (options.algorithm == Algorithm::kPattern) {
    out = pattern(in, p, options);
  } else if (options.algorithm == Algorithm::kDbs) {
    out = dbs(in, p, options);
  } else {
    out = ordered(in, p, options);
  }
  if (in.has_alpha()) {
    for (size_t i = 0; i < in.pixel_count(); ++i) out.pixels[i * 4 + 3] = in.pixels[i * 4 + 3];
  }
  return out;
}

}  // namespace dither::engine::reference
