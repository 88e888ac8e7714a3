// Reference ordered dithering: one pixel and one channel at a time, straight from the definition
// in docs/ENGINE.md. Bayer ranks come from the bit-interleave formula, not the engine's
// recursion; the clustered-dot and blue-noise maps are the engine's (they are data to both).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "engine/blue_noise.h"
#include "engine/testing/reference.h"
#include "engine/threshold_maps.h"

namespace dither::engine::reference {

namespace {

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Bayer rank at (x, y) for a power-of-two size: the bits of (x ^ y) and y interleaved, then
// reversed. The 3x3 matrix is the classic table.
int bayer_rank(int size, int x, int y) {
  if (size == 3) {
    static constexpr int kThree[3][3] = {{0, 7, 3}, {6, 5, 2}, {4, 1, 8}};
    return kThree[y % 3][x % 3];
  }
  x %= size;
  y %= size;
  int v = 0;
  for (int bit = 1; bit < size; bit <<= 1) {
    v = (v << 2) | ((x ^ y) & bit ? 2 : 0) | (y & bit ? 1 : 0);
  }
  return v;
}

// The rank of pixel (x, y) and the number of ranks.
struct Rank {
  int rank;
  int levels;
};

Rank rank_at(const DitherOptions& o, const detail::ThresholdMap* map, int x, int y) {
  switch (o.algorithm) {
    case Algorithm::kBayer:
      return {bayer_rank(o.bayer_size, x, y), o.bayer_size * o.bayer_size};
    case Algorithm::kHalftone:
    case Algorithm::kBlueNoise:
      return {map->rank(x, y), map->levels};
    case Algorithm::kCustomMatrix: {
      // The caller's entries are the ranks; M is the largest + 1.
      const CustomMatrix& m = *o.matrix;
      const int largest = *std::max_element(m.ranks.begin(), m.ranks.end());
      return {m.ranks[static_cast<size_t>((y % m.height) * m.width + x % m.width)], largest + 1};
    }
    case Algorithm::kRandom: {
      const uint64_t key = (static_cast<uint64_t>(y) << 32) | static_cast<uint64_t>(x);
      return {static_cast<int>(splitmix64(splitmix64(o.seed) ^ key) >> 56), 256};
    }
    default:
      return {0, 1};
  }
}

int32_t offset(Rank r, double spread, double strength) {
  return static_cast<int32_t>(std::lround(static_cast<double>(2 * r.rank + 1 - r.levels) * spread *
                                          strength / (2.0 * r.levels)));
}

// List palettes: mean over colours of the largest per-channel difference to the nearest other.
// Levels palettes: one channel's value after the offset, kept inside the level interval.
int32_t levels_value(const RefPalette& p, int32_t w, Rank r, double strength) {
  const Palette& pal = *p.palette;
  const int n = pal.levels();
  if (p.space == ColorSpace::kSrgb) {
    return std::clamp(w + offset(r, kWorkingMax / static_cast<double>(n - 1), strength), 0,
                      kWorkingMax);
  }
  int k = 0;
  for (int i = 0; i <= n - 2; ++i) {
    if (to_working(pal.level_value(i), p.space) <= w) k = i;
  }
  const int32_t lo = to_working(pal.level_value(k), p.space);
  const int32_t hi = to_working(pal.level_value(k + 1), p.space);
  return std::clamp(w + offset(r, static_cast<double>(hi - lo), strength), lo, hi);
}

}  // namespace

double list_spread(const RefPalette& p) {
  const auto& colors = p.palette->colors();
  if (colors.size() < 2) return 0.0;
  int64_t sum = 0;
  for (size_t i = 0; i < colors.size(); ++i) {
    int64_t best = kWorkingMax;
    for (size_t j = 0; j < colors.size(); ++j) {
      if (i == j) continue;
      const Color a = colors[i];
      const Color b = colors[j];
      const int64_t d = std::max({std::abs(to_working(a.r, p.space) - to_working(b.r, p.space)),
                                  std::abs(to_working(a.g, p.space) - to_working(b.g, p.space)),
                                  std::abs(to_working(a.b, p.space) - to_working(b.b, p.space))});
      best = std::min(best, d);
    }
    sum += best;
  }
  return static_cast<double>(sum) / static_cast<double>(colors.size());
}

int bayer8_rank(int x, int y) {
  int rank = 0;
  for (int bit = 1; bit < 8; bit <<= 1) {
    rank = (rank << 2) | ((x ^ y) & bit ? 2 : 0) | (y & bit ? 1 : 0);
  }
  return rank;
}

Image ordered(const Image& in, const RefPalette& p, const DitherOptions& o) {
  Image out(in.width, in.height, in.channels);
  std::optional<detail::ThresholdMap> map;
  if (o.algorithm == Algorithm::kHalftone) map = detail::halftone_map(o.halftone);
  if (o.algorithm == Algorithm::kBlueNoise) map = detail::blue_noise_map();
  const bool levels = p.palette->is_levels();
  const double spread = levels ? 0.0 : list_spread(p);
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < in.width; ++x) {
      const Rank r = rank_at(o, map ? &*map : nullptr, x, y);
      const uint8_t* s = in.at(x, y);
      std::array<int32_t, 3> v{};
      for (int c = 0; c < 3; ++c) {
        const int32_t w = to_working(s[c], p.space);
        v[c] = levels ? levels_value(p, w, r, o.strength)
                      : std::clamp(w + offset(r, spread, o.strength), 0, kWorkingMax);
      }
      const Color col = nearest(p, v, nullptr);
      put(out, x, y, col);
    }
  }
  return out;
}

}  // namespace dither::engine::reference
