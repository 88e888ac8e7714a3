// Variable-coefficient error diffusion: Ostromoukhov (SIGGRAPH 2001) and Zhou-Fang (SIGGRAPH
// 2003, the same with their own coefficients and a threshold modulated by tone).
//
// Each pixel gives its error to three neighbours along a serpentine scan (right, down-left, down,
// relative to the direction of travel) with weights chosen, channel by channel, by the tone of
// the pixel's source value; Zhou-Fang also shifts the value it quantises (not its error) by a
// seeded noise, hashed from the position, scaled by a per-tone strength. docs/ENGINE.md
// ("Variable-coefficient error diffusion") defines the arithmetic; the tables are in
// variable_coefficients.h.
//
// Everything that depends on the tone depends only on the 8-bit source sample (and the palette,
// colour space and strength), so it is tabulated once per image for the 256 samples, one 16-byte
// entry each. The three channels travel together in a 4-lane vector. The scan is serpentine, a
// single chain: one thread, two rows of error. The row being scanned reads what the row above
// left it; what it owes the row below is stored once per cell (the down share of one pixel plus
// the down-left share of the next), so neither row needs clearing.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "engine/algorithms.h"
#include "engine/variable_coefficients.h"

namespace dither::engine::detail {

namespace {

constexpr int kShift = 12;       // diffusion factors are fixed point over 4096
constexpr int kNoiseShift = 16;  // modulation factors are fixed point over 65536

uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// What an 8-bit source sample implies for its channel: its working value, the fixed-point factors
// of its tone's right and down-left weights (down gets the rest), and the amplitude of its
// modulation. One 16-byte entry, loaded whole.
struct alignas(16) SampleFactors {
  int32_t working = 0;
  int32_t right = 0;
  int32_t down_left = 0;
  int32_t modulation = 0;
};
using SampleTable = std::array<SampleFactors, 256>;

SampleTable sample_table(const Quantizer& q, const DitherOptions& o) {
  const bool zhou_fang = o.algorithm == Algorithm::kZhouFang;
  const double spread = q.is_levels() ? 0.0 : list_spread(q);
  SampleTable table{};
  for (size_t s = 0; s < table.size(); ++s) {
    const int32_t w = q.to_working()[s];
    // The tone is the position between the two levels around w (levels), else in the range.
    int32_t lo = 0;
    int32_t hi = kWorkingMax;
    if (q.is_levels()) {
      int k = 0;
      while (k + 2 < q.levels() && q.level_working(k + 1) <= w) ++k;
      lo = q.level_working(k);
      hi = q.level_working(k + 1);
    }
    const int tone = (255 * (w - lo) + (hi - lo) / 2) / (hi - lo);
    const int level = std::min(tone, 255 - tone);
    std::array<double, 3> weights{};
    if (zhou_fang) {
      weights = zhou_fang_weights(level);
    } else {
      const VariableCoefficients& c = kOstromoukhovTable[static_cast<size_t>(level)];
      weights = {c.right / static_cast<double>(c.sum), c.down_left / static_cast<double>(c.sum),
                 c.down / static_cast<double>(c.sum)};
    }
    SampleFactors& f = table[s];
    f.working = w;
    f.right = static_cast<int32_t>(std::lround(4096.0 * o.strength * weights[0]));
    f.down_left = static_cast<int32_t>(std::lround(4096.0 * o.strength * weights[1]));
    if (zhou_fang) {
      const double percent = kZhouFangModulation[static_cast<size_t>(level)];
      const double scale = q.is_levels() ? static_cast<double>(hi - lo) : spread;
      f.modulation =
          static_cast<int32_t>(std::lround(65536.0 * o.strength * percent * scale / 102000.0));
    }
  }
  return table;
}

using V4 = int32_t __attribute__((vector_size(16)));
using V16 = uint8_t __attribute__((vector_size(16)));

inline V4 load(const int32_t* p) {
  V4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store(int32_t* p, V4 v) { std::memcpy(p, &v, sizeof v); }

inline V4 load(const SampleFactors& f) {
  static_assert(sizeof f == sizeof(V4));
  V4 v;
  std::memcpy(&v, &f, sizeof v);
  return v;
}

// The low bytes of lanes 0..2 into dst[0..2].
inline void store_bytes(uint8_t* dst, V4 lanes) {
  const V16 b = reinterpret_cast<V16>(lanes);
  const V16 packed = __builtin_shufflevector(b, b, 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  uint32_t word;
  std::memcpy(&word, &packed, sizeof word);
  std::memcpy(dst, &word, 3);
}

struct Scan {
  const SampleFactors* table;  // 8-bit sample -> its working value and factors
  int32_t total;               // lround(4096 * strength): the share of the error passed on
  uint64_t seed_key;           // splitmix64(seed)
};

// Quantiser policies: choose() writes the three output bytes of the colour for working values u
// (lanes 0..2) and returns the colour's working values. Small copyable values of raw pointers, so
// that a hot loop keeps them in registers where the quantiser's own members would be re-read
// after every output store.

// Two levels: a threshold between them (both the sRGB formula and the nearest level).
struct TwoLevels {
  int32_t threshold;  // the first working value that takes the upper level
  int32_t low, high;  // working values
  int32_t low_byte, high_byte;
  V4 choose(V4 u, uint8_t* dst) const {
    const V4 upper = u >= threshold;  // -1 or 0 per lane
    store_bytes(dst, ((high_byte - low_byte) & upper) + low_byte);
    return ((high - low) & upper) + low;
  }
};

struct ManyLevels {
  const uint8_t* level_of;  // working value -> level
  const int32_t* working;   // level -> working value
  const uint8_t* output;    // level -> output byte
  V4 choose(V4 u, uint8_t* dst) const {
    V4 chosen{};
    for (int c = 0; c < 3; ++c) {
      const uint8_t k = level_of[u[c]];
      dst[c] = output[k];
      chosen[c] = working[k];
    }
    return chosen;
  }
};

struct ListColours {
  const Quantizer* q;
  const Color* colors;
  const V4* working;
  V4 choose(V4 u, uint8_t* dst) const {
    const int i = q->nearest(u[0], u[1], u[2]);
    const Color c = colors[i];
    dst[0] = c.r;
    dst[1] = c.g;
    dst[2] = c.b;
    return working[i];
  }
};

// One row, in its direction. The three channels travel together in the lanes of a vector.
// `above`: the error the row above left this one (read only), `below`: the error for the row
// below, 4 lanes a cell; every cell of `below` is stored once (cells -1 and width are padding
// that take the down-left share of a row's first pixel).
template <class Q, bool kModulate, int kChannels>
void diffuse_row(const Image& in, Image& out, const Q& quantizer, const Scan& scan, int y,
                 const int32_t* above, int32_t* below) {
  const Q q = quantizer;  // a local copy: output stores cannot alias it
  const SampleFactors* table = scan.table;
  const int32_t total = scan.total;
  const int width = in.width;
  const int dir = (y & 1) != 0 ? -1 : 1;
  const uint8_t* src = in.row(y);
  uint8_t* dst = out.row(y);
  V4 right{};    // owed to the next pixel along the row
  V4 pending{};  // the previous pixel's down share, waiting for the next one's down-left
  int x = dir > 0 ? 0 : width - 1;
  for (int i = 0; i < width; ++i, x += dir) {
    const uint8_t* p = src + static_cast<ptrdiff_t>(x) * kChannels;
    // The three samples' entries, transposed: lane c of each vector is channel c's.
    const V4 e0 = load(table[p[0]]);
    const V4 e1 = load(table[p[1]]);
    const V4 e2 = load(table[p[2]]);
    const V4 lo01 = __builtin_shufflevector(e0, e1, 0, 4, 1, 5);
    const V4 hi01 = __builtin_shufflevector(e0, e1, 2, 6, 3, 7);
    const V4 working = __builtin_shufflevector(lo01, e2, 0, 1, 4, 4);
    const V4 f_right = __builtin_shufflevector(lo01, e2, 2, 3, 5, 5);
    const V4 f_down_left = __builtin_shufflevector(hi01, e2, 0, 1, 6, 6);
    V4 v = working + load(above + static_cast<ptrdiff_t>(x) * 4) + right;
    v = v < 0 ? 0 : v;
    v = v > kWorkingMax ? kWorkingMax : v;
    V4 u = v;
    if constexpr (kModulate) {
      const uint64_t key = (uint64_t{static_cast<uint32_t>(y)} << 32) | static_cast<uint32_t>(x);
      const int32_t noise = 2 * static_cast<int32_t>(splitmix64(scan.seed_key ^ key) >> 56) - 255;
      const V4 modulation = __builtin_shufflevector(hi01, e2, 2, 3, 7, 7);
      u = v - ((modulation * noise) >> kNoiseShift);
      u = u < 0 ? 0 : u;
      u = u > kWorkingMax ? kWorkingMax : u;
    }
    V4 e = v - q.choose(u, dst + static_cast<ptrdiff_t>(x) * kChannels);
    if constexpr (kChannels == 4) {
      if (p[3] == 0) e = V4{};  // a transparent pixel passes nothing on
    }
    const V4 r = (e * f_right) >> kShift;
    const V4 dl = (e * f_down_left) >> kShift;
    right = r;
    store(below + static_cast<ptrdiff_t>(x - dir) * 4, pending + dl);
    pending = ((e * total) >> kShift) - r - dl;
  }
  store(below + static_cast<ptrdiff_t>(x - dir) * 4, pending);
}

template <class Q, bool kModulate, int kChannels>
void diffuse(const Image& in, Image& out, const Q& q, const Scan& scan) {
  const size_t cells = static_cast<size_t>(in.width + 2) * 4;  // with a padding cell each side
  std::vector<int32_t> rows(2 * cells, 0);
  int32_t* above = rows.data() + 4;
  int32_t* below = rows.data() + cells + 4;
  for (int y = 0; y < in.height; ++y) {
    diffuse_row<Q, kModulate, kChannels>(in, out, q, scan, y, above, below);
    std::swap(above, below);
  }
}

template <class Q>
void dispatch(const Image& in, Image& out, const Q& q, const Scan& scan, bool modulate) {
  if (modulate) {
    if (in.channels == 4) return diffuse<Q, true, 4>(in, out, q, scan);
    return diffuse<Q, true, 3>(in, out, q, scan);
  }
  if (in.channels == 4) return diffuse<Q, false, 4>(in, out, q, scan);
  return diffuse<Q, false, 3>(in, out, q, scan);
}

}  // namespace

void variable_diffusion(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const SampleTable table = sample_table(q, o);
  const Scan scan{table.data(), static_cast<int32_t>(std::lround(4096.0 * o.strength)),
                  splitmix64(o.seed)};
  const bool modulate = o.algorithm == Algorithm::kZhouFang;
  if (!q.is_levels()) {
    std::vector<V4> working(static_cast<size_t>(q.size()));
    for (int i = 0; i < q.size(); ++i) {
      const auto& w = q.working(i);
      working[static_cast<size_t>(i)] = V4{w[0], w[1], w[2], 0};
    }
    return dispatch(in, out, ListColours{&q, q.colors(), working.data()}, scan, modulate);
  }
  if (q.levels() == 2) {
    int32_t threshold = 0;  // the first working value whose level is 1
    while (threshold < kWorkingMax && q.level_of(threshold) == 0) ++threshold;
    const TwoLevels two{threshold, q.level_working(0), q.level_working(1), q.level_output(0),
                        q.level_output(1)};
    return dispatch(in, out, two, scan, modulate);
  }
  std::vector<uint8_t> level_of(kWorkingMax + 1);
  for (int w = 0; w <= kWorkingMax; ++w) {
    level_of[static_cast<size_t>(w)] = static_cast<uint8_t>(q.level_of(w));
  }
  std::vector<int32_t> working(static_cast<size_t>(q.levels()));
  std::vector<uint8_t> output(static_cast<size_t>(q.levels()));
  for (int k = 0; k < q.levels(); ++k) {
    working[static_cast<size_t>(k)] = q.level_working(k);
    output[static_cast<size_t>(k)] = q.level_output(k);
  }
  dispatch(in, out, ManyLevels{level_of.data(), working.data(), output.data()}, scan, modulate);
}

}  // namespace dither::engine::detail
