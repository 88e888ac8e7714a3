// Ordered dithering: Bayer, clustered-dot, custom, blue-noise and random thresholds, and plain
// threshold.
//
// Arithmetic (docs/ENGINE.md, "Ordered dithering"; the reference implementation in the tests
// repeats it and must give the same bytes). Every pixel gets a rank r out of M (from a threshold
// map tiled over the image, from a hash of (seed, x, y) with M = 256 for random, or r = 0 of
// M = 1 for plain threshold). With a spread S, rank r offsets each working channel value by
//   off(r, S) = lround((2r + 1 - M) * S * strength / (2M)),   i.e. (t - 0.5) * S * strength
// for t = (r + 0.5) / M, and the offset value picks the nearest colour:
//  - levels palettes in sRGB: S = 65535 / (levels - 1), one step of the quantiser's uniform grid;
//    value clamped to 0..65535, then the quantiser's level;
//  - levels palettes in linear light, whose levels are not evenly spaced: S is the gap between
//    the two levels around the value (the interval [l_k, l_k+1] with l_k <= w, k <= levels - 2),
//    and the offset value is clamped to that interval before taking the nearest level;
//  - list palettes: S is the mean, over the palette's colours, of the Chebyshev (largest
//    per-channel) working-space distance to the nearest other colour (0 for one colour); the
//    offset value is clamped to 0..65535 and the quantiser finds the nearest colour.
//
// Speed: for levels palettes the output is a function of (rank, sample) alone, so it comes from a
// 256-entry table per rank. With at most kMaxSimdBoundaries level boundaries (levels 2..4) and a
// tiled map, each row is done 16 bytes at a time with SSE2: per rank, the output is a base plus,
// for each level boundary, a step where the sample reaches that rank's boundary; the per-byte
// boundaries and steps of a row repeat with the map's width and are laid out once per image.
// Rows are independent, so threads take bands of rows and the bytes never depend on the count.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/algorithms.h"
#include "engine/blue_noise.h"
#include "engine/threshold_maps.h"

namespace dither::engine::detail {

namespace {

constexpr int kRandomLevels = 256;
constexpr int kMaxSimdBoundaries = 3;

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// kRandom's rank: the top byte of splitmix64(splitmix64(seed) ^ (y << 32 | x)).
int random_rank(uint64_t seed_key, int x, int y) {
  const uint64_t key = (uint64_t{static_cast<uint32_t>(y)} << 32) | static_cast<uint32_t>(x);
  return static_cast<int>(splitmix64(seed_key ^ key) >> 56);
}

int32_t threshold_offset(int rank, int levels, double spread, double strength) {
  return static_cast<int32_t>(
      std::lround(static_cast<double>(2 * rank + 1 - levels) * spread * strength / (2.0 * levels)));
}

// Where each pixel's rank comes from.
struct RankSource {
  ThresholdMap map;  // unused for random
  bool random = false;
  uint64_t seed_key = 0;
  int levels() const { return random ? kRandomLevels : map.levels; }
};

RankSource rank_source(const DitherOptions& o) {
  RankSource s;
  switch (o.algorithm) {
    case Algorithm::kBayer:
      s.map = bayer_map(o.bayer_size);
      break;
    case Algorithm::kHalftone:
      // validate() has checked the name.
      s.map = halftone_map(o.halftone).value();
      break;
    case Algorithm::kBlueNoise:
      s.map = blue_noise_map();
      break;
    case Algorithm::kCustomMatrix:
      // validate() has checked that the matrix is there.
      s.map = custom_map(*o.matrix);
      break;
    case Algorithm::kRandom:
      s.random = true;
      s.seed_key = splitmix64(o.seed);
      break;
    default:  // kThreshold: one rank, offset 0
      s.map = bayer_map(1);
      break;
  }
  return s;
}

// Levels palettes: the level index for each (rank, sample), rank-major.
std::vector<uint8_t> level_table(const Quantizer& q, int rank_levels, double strength) {
  const auto& tw = q.to_working();
  const int levels = q.levels();
  std::vector<uint8_t> table(static_cast<size_t>(rank_levels) * 256);
  for (int s = 0; s < 256; ++s) {
    const int32_t w = tw[static_cast<size_t>(s)];
    int32_t lo = 0;
    int32_t hi = kWorkingMax;
    double spread = kWorkingMax / static_cast<double>(levels - 1);
    if (q.space() == ColorSpace::kLinear) {
      int k = 0;
      while (k + 1 < levels - 1 && q.level_working(k + 1) <= w) ++k;
      lo = q.level_working(k);
      hi = q.level_working(k + 1);
      spread = static_cast<double>(hi - lo);
    }
    for (int r = 0; r < rank_levels; ++r) {
      const int32_t v = std::clamp(w + threshold_offset(r, rank_levels, spread, strength), lo, hi);
      table[static_cast<size_t>(r) * 256 + static_cast<size_t>(s)] =
          static_cast<uint8_t>(q.level_of(v));
    }
  }
  return table;
}

// Levels palette, tiled map, one table look-up per sample.
template <int kChannels>
void levels_rows_map(const Image& in, Image& out, const ThresholdMap& map,
                     const std::vector<uint8_t>& lut, int y0, int y1) {
  std::array<const uint8_t*, 256> cell{};
  const int w = map.width;
  for (int y = y0; y < y1; ++y) {
    for (int x = 0; x < w; ++x)
      cell[static_cast<size_t>(x)] = lut.data() + size_t{256} * static_cast<size_t>(map.rank(x, y));
    const uint8_t* p = in.row(y);
    uint8_t* o = out.row(y);
    for (int x = 0; x < in.width; x += w) {
      const int n = std::min(w, in.width - x);
      for (int j = 0; j < n; ++j, p += kChannels, o += kChannels) {
        const uint8_t* t = cell[static_cast<size_t>(j)];
        o[0] = t[p[0]];
        o[1] = t[p[1]];
        o[2] = t[p[2]];
      }
    }
  }
}

template <int kChannels>
void levels_rows_random(const Image& in, Image& out, uint64_t seed_key,
                        const std::vector<uint8_t>& lut, int y0, int y1) {
  for (int y = y0; y < y1; ++y) {
    const uint8_t* p = in.row(y);
    uint8_t* o = out.row(y);
    for (int x = 0; x < in.width; ++x, p += kChannels, o += kChannels) {
      const uint8_t* t =
          lut.data() + size_t{256} * static_cast<size_t>(random_rank(seed_key, x, y));
      o[0] = t[p[0]];
      o[1] = t[p[1]];
      o[2] = t[p[2]];
    }
  }
}

// List palette: offset all three channels by the rank's offset, then nearest colour.
void list_rows(const Image& in, Image& out, const Quantizer& q, const RankSource& src,
               const std::vector<int32_t>& offsets, int y0, int y1) {
  const auto& tw = q.to_working();
  const size_t channels = static_cast<size_t>(in.channels);
  for (int y = y0; y < y1; ++y) {
    const uint8_t* p = in.row(y);
    uint8_t* o = out.row(y);
    for (int x = 0; x < in.width; ++x, p += channels, o += channels) {
      const int rank = src.random ? random_rank(src.seed_key, x, y) : src.map.rank(x, y);
      const int32_t off = offsets[static_cast<size_t>(rank)];
      const int r = std::clamp(tw[p[0]] + off, 0, kWorkingMax);
      const int g = std::clamp(tw[p[1]] + off, 0, kWorkingMax);
      const int b = std::clamp(tw[p[2]] + off, 0, kWorkingMax);
      const Color c = q.color(q.nearest(r, g, b));
      o[0] = c.r;
      o[1] = c.g;
      o[2] = c.b;
    }
  }
}

// Per-byte boundary patterns of every row phase of a map, for levels palettes with few levels.
// Output byte = base + sum over boundaries k of (sample >= threshold_k ? step_k : 0). A boundary
// already passed at sample 0 is folded into base; one never reached has step 0.
class BoundaryPatterns {
 public:
  BoundaryPatterns(const ThresholdMap& map, const Quantizer& q, const std::vector<uint8_t>& lut,
                   int channels)
      : boundaries_(q.levels() - 1) {
    const int row_bytes = map.width * channels;
    period_ = row_bytes * ((16 + row_bytes - 1) / row_bytes);
    slot_stride_ = static_cast<size_t>(period_) + 16;
    row_stride_ = slot_stride_ * static_cast<size_t>(1 + 2 * boundaries_);
    data_.assign(row_stride_ * static_cast<size_t>(map.height), 0);
    // first[r][k]: the first sample that reaches level k at rank r (256: none does).
    std::vector<std::array<int, kMaxSimdBoundaries + 1>> first(static_cast<size_t>(map.levels));
    for (size_t r = 0; r < first.size(); ++r) {
      const uint8_t* t = lut.data() + 256 * r;
      first[r].fill(256);
      for (int s = 255; s >= 0; --s) {
        for (int k = 0; k <= t[s]; ++k) first[r][static_cast<size_t>(k)] = s;
      }
    }
    for (int y = 0; y < map.height; ++y) {
      uint8_t* row = data_.data() + row_stride_ * static_cast<size_t>(y);
      for (int i = 0; i < period_ + 16; ++i) {
        const int pixel = (i % period_) / channels;
        if ((i % period_) % channels == 3) continue;  // alpha: the caller copies it
        const int rank = map.rank(pixel, y);
        const int start = lut[size_t{256} * static_cast<size_t>(rank)];  // level at sample 0
        row[i] = q.level_output(start);
        for (int k = 1; k <= boundaries_; ++k) {
          const int s = first[static_cast<size_t>(rank)][static_cast<size_t>(k)];
          const bool active = k > start && s < 256;
          row[slot_stride_ * static_cast<size_t>(2 * k - 1) + static_cast<size_t>(i)] =
              static_cast<uint8_t>(std::min(s, 255));
          row[slot_stride_ * static_cast<size_t>(2 * k) + static_cast<size_t>(i)] =
              active ? static_cast<uint8_t>(q.level_output(k) - q.level_output(k - 1)) : 0;
        }
      }
    }
  }

  int boundaries() const { return boundaries_; }
  int period() const { return period_; }
  size_t slot_stride() const { return slot_stride_; }
  const uint8_t* row(int y, int height) const {
    return data_.data() + row_stride_ * static_cast<size_t>(y % height);
  }

 private:
  int boundaries_;
  int period_ = 16;  // a multiple of the map's row bytes, at least 16
  size_t slot_stride_ = 0;
  size_t row_stride_ = 0;
  std::vector<uint8_t> data_;
};

uint8_t pattern_byte(const uint8_t* pat, size_t slot_stride, int boundaries, size_t pos,
                     uint8_t sample) {
  uint8_t v = pat[pos];
  for (int k = 1; k <= boundaries; ++k) {
    const uint8_t thr = pat[slot_stride * static_cast<size_t>(2 * k - 1) + pos];
    const uint8_t step = pat[slot_stride * static_cast<size_t>(2 * k) + pos];
    if (sample >= thr) v = static_cast<uint8_t>(v + step);
  }
  return v;
}

#if defined(__SSE2__)
template <int kBoundaries>
void simd_chunk(const uint8_t* src, uint8_t* dst, const uint8_t* pat, size_t slot_stride) {
  const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
  __m128i acc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pat));
  for (int k = 1; k <= kBoundaries; ++k) {
    const __m128i thr = _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(pat + slot_stride * static_cast<size_t>(2 * k - 1)));
    const __m128i step = _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(pat + slot_stride * static_cast<size_t>(2 * k)));
    const __m128i reached = _mm_cmpeq_epi8(_mm_max_epu8(s, thr), s);
    acc = _mm_add_epi8(acc, _mm_and_si128(reached, step));
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), acc);
}

template <int kBoundaries>
void simd_rows(const Image& in, Image& out, const BoundaryPatterns& pats, int map_height, int y0,
               int y1) {
  const size_t bytes = in.stride();
  const size_t period = static_cast<size_t>(pats.period());
  const size_t stride = pats.slot_stride();
  for (int y = y0; y < y1; ++y) {
    const uint8_t* pat = pats.row(y, map_height);
    const uint8_t* src = in.row(y);
    uint8_t* dst = out.row(y);
    if (bytes < 16) {
      for (size_t i = 0; i < bytes; ++i) {
        dst[i] = pattern_byte(pat, stride, kBoundaries, i % period, src[i]);
      }
      continue;
    }
    size_t pos = 0;
    size_t i = 0;
    for (; i + 16 <= bytes; i += 16) {
      simd_chunk<kBoundaries>(src + i, dst + i, pat + pos, stride);
      pos += 16;
      if (pos >= period) pos -= period;
    }
    if (i < bytes) {  // a last, overlapping chunk
      const size_t last = bytes - 16;
      simd_chunk<kBoundaries>(src + last, dst + last, pat + last % period, stride);
    }
  }
}
#endif

}  // namespace

double list_spread(const Quantizer& q) {
  const int n = q.size();
  if (n < 2) return 0.0;
  int64_t sum = 0;
  for (int i = 0; i < n; ++i) {
    int64_t best = kWorkingMax;
    for (int j = 0; j < n; ++j) {
      if (j == i) continue;
      int64_t d = 0;
      for (size_t c = 0; c < 3; ++c) {
        d = std::max<int64_t>(d, std::abs(q.working(i)[c] - q.working(j)[c]));
      }
      best = std::min(best, d);
    }
    sum += best;
  }
  return static_cast<double>(sum) / n;
}

void ordered_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const RankSource src = rank_source(o);
  const int rank_levels = src.levels();
  const int threads = resolve_threads(o.threads);

  if (!q.is_levels()) {
    const double spread = list_spread(q);
    std::vector<int32_t> offsets(static_cast<size_t>(rank_levels));
    for (int r = 0; r < rank_levels; ++r) {
      offsets[static_cast<size_t>(r)] = threshold_offset(r, rank_levels, spread, o.strength);
    }
    for_row_bands(in.height, threads,
                  [&](int y0, int y1) { list_rows(in, out, q, src, offsets, y0, y1); });
    return;
  }

  std::vector<uint8_t> lut = level_table(q, rank_levels, o.strength);
#if defined(__SSE2__)
  if (!src.random && q.levels() - 1 <= kMaxSimdBoundaries) {
    const BoundaryPatterns pats(src.map, q, lut, in.channels);
    const int h = src.map.height;
    for_row_bands(in.height, threads, [&](int y0, int y1) {
      switch (pats.boundaries()) {
        case 1:
          simd_rows<1>(in, out, pats, h, y0, y1);
          break;
        case 2:
          simd_rows<2>(in, out, pats, h, y0, y1);
          break;
        default:
          simd_rows<3>(in, out, pats, h, y0, y1);
          break;
      }
    });
    return;
  }
#endif
  for (uint8_t& v : lut) v = q.level_output(v);
  const bool rgba = in.channels == 4;
  for_row_bands(in.height, threads, [&](int y0, int y1) {
    if (src.random) {
      if (rgba) {
        levels_rows_random<4>(in, out, src.seed_key, lut, y0, y1);
      } else {
        levels_rows_random<3>(in, out, src.seed_key, lut, y0, y1);
      }
    } else if (rgba) {
      levels_rows_map<4>(in, out, src.map, lut, y0, y1);
    } else {
      levels_rows_map<3>(in, out, src.map, lut, y0, y1);
    }
  });
}

}  // namespace dither::engine::detail
