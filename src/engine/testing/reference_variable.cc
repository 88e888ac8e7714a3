// Reference variable-coefficient error diffusion (Ostromoukhov; Zhou-Fang), straight from
// docs/ENGINE.md: a whole-image error buffer, a serpentine scan, brute-force nearest colour, and
// every factor worked out at the pixel from the published tables.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "engine/testing/reference.h"
#include "engine/variable_coefficients.h"

namespace dither::engine::reference {

namespace {

using detail::kOstromoukhovTable;
using detail::kZhouFangKeys;
using detail::kZhouFangModulation;
using detail::VariableCoefficients;

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::array<double, 3> normalised(const VariableCoefficients& c) {
  return {c.right / static_cast<double>(c.sum), c.down_left / static_cast<double>(c.sum),
          c.down / static_cast<double>(c.sum)};
}

// The weights (right, down-left, down) of mirrored level 0..127.
std::array<double, 3> weights_of(Algorithm algorithm, int level) {
  if (algorithm == Algorithm::kOstromoukhov) {
    return normalised(kOstromoukhovTable[static_cast<size_t>(level)]);
  }
  for (size_t k = 0; k < kZhouFangKeys.size(); ++k) {
    if (kZhouFangKeys[k].level == level) return normalised(kZhouFangKeys[k].c);
    if (kZhouFangKeys[k].level < level && level < kZhouFangKeys[k + 1].level) {
      const int k0 = kZhouFangKeys[k].level;
      const int k1 = kZhouFangKeys[k + 1].level;
      const std::array<double, 3> w0 = normalised(kZhouFangKeys[k].c);
      const std::array<double, 3> w1 = normalised(kZhouFangKeys[k + 1].c);
      std::array<double, 3> w{};
      for (size_t i = 0; i < 3; ++i)
        w[i] = ((k1 - level) * w0[i] + (level - k0) * w1[i]) / (k1 - k0);
      return w;
    }
  }
  std::abort();  // every level 0..127 lies between two keys
}

// A channel's factors, from its 8-bit source sample.
struct Factors {
  int32_t right;
  int32_t down_left;
  int32_t modulation;
};

Factors factors_of(uint8_t sample, const RefPalette& p, const DitherOptions& o, double spread) {
  const Palette& pal = *p.palette;
  const int32_t w = to_working(sample, p.space);
  int32_t lo = 0;
  int32_t hi = kWorkingMax;
  if (pal.is_levels()) {  // the last pair of neighbouring levels whose lower one is <= w
    for (int k = 0; k + 1 < pal.levels(); ++k) {
      if (to_working(pal.level_value(k), p.space) <= w) {
        lo = to_working(pal.level_value(k), p.space);
        hi = to_working(pal.level_value(k + 1), p.space);
      }
    }
  }
  const int tone = (255 * (w - lo) + (hi - lo) / 2) / (hi - lo);
  const int level = std::min(tone, 255 - tone);
  const std::array<double, 3> weights = weights_of(o.algorithm, level);
  Factors f{};
  f.right = static_cast<int32_t>(std::lround(4096.0 * o.strength * weights[0]));
  f.down_left = static_cast<int32_t>(std::lround(4096.0 * o.strength * weights[1]));
  if (o.algorithm == Algorithm::kZhouFang) {
    const double percent = kZhouFangModulation[static_cast<size_t>(level)];
    const double scale = pal.is_levels() ? static_cast<double>(hi - lo) : spread;
    f.modulation =
        static_cast<int32_t>(std::lround(65536.0 * o.strength * percent * scale / 102000.0));
  }
  return f;
}

}  // namespace

Image variable_diffusion(const Image& in, const RefPalette& p, const DitherOptions& o) {
  Image out(in.width, in.height, in.channels);
  const double spread = p.palette->is_levels() ? 0.0 : list_spread(p);
  const auto total = static_cast<int32_t>(std::lround(4096.0 * o.strength));
  std::vector<std::vector<std::array<int32_t, 3>>> err(
      static_cast<size_t>(in.height),
      std::vector<std::array<int32_t, 3>>(static_cast<size_t>(in.width), {0, 0, 0}));
  auto give = [&](int x, int y, size_t c, int32_t amount) {
    if (x < 0 || x >= in.width || y >= in.height) return;  // off the image: dropped
    err[static_cast<size_t>(y)][static_cast<size_t>(x)][c] += amount;
  };
  for (int y = 0; y < in.height; ++y) {
    const int dir = y % 2 == 0 ? 1 : -1;  // always serpentine
    for (int i = 0; i < in.width; ++i) {
      const int x = dir == 1 ? i : in.width - 1 - i;
      const uint8_t* s = in.at(x, y);
      // Zhou-Fang's noise: the same for the three channels, scaled per channel.
      const uint64_t key = (uint64_t{static_cast<uint32_t>(y)} << 32) | static_cast<uint32_t>(x);
      const int32_t noise =
          2 * static_cast<int32_t>(splitmix64(splitmix64(o.seed) ^ key) >> 56) - 255;
      std::array<int32_t, 3> v{};
      std::array<int32_t, 3> u{};
      std::array<Factors, 3> f{};
      for (size_t c = 0; c < 3; ++c) {
        f[c] = factors_of(s[c], p, o, spread);
        v[c] = std::clamp(
            to_working(s[c], p.space) + err[static_cast<size_t>(y)][static_cast<size_t>(x)][c], 0,
            kWorkingMax);
        u[c] = std::clamp(v[c] - ((noise * f[c].modulation) >> 16), 0, kWorkingMax);
      }
      std::array<int32_t, 3> chosen{};
      put(out, x, y, nearest(p, u, &chosen));
      if (in.has_alpha() && s[3] == 0) continue;  // a transparent pixel passes nothing on
      for (size_t c = 0; c < 3; ++c) {
        const int32_t e = v[c] - chosen[c];
        const int32_t right = (e * f[c].right) >> 12;
        const int32_t down_left = (e * f[c].down_left) >> 12;
        give(x + dir, y, c, right);
        give(x - dir, y + 1, c, down_left);
        give(x, y + 1, c, ((e * total) >> 12) - right - down_left);
      }
    }
  }
  return out;
}

}  // namespace dither::engine::reference
