// Adaptive palettes: clustered colours, then moved to where error diffusion's mixes of them
// look most like the image (docs/ENGINE-PALETTES.md).
//
//  1. Sample every k-th pixel in raster order, k = ceil(pixels / 2^20). If the sample holds at
//     most `count` distinct colours, those are the palette.
//  2. The points to cluster: the sample's distinct colours with their counts when there are at
//     most kMaxPoints, else the means of a 64x64x64 grid of bins (coarser while too many).
//  3. Median cut in sRGB: split the box of largest weighted squared error along its channel of
//     largest spread at the weighted median, until `count` boxes; then a few k-means iterations.
//  4. Refinement for error diffusion. Dithering shows a colour as a mix of palette colours and
//     the eye sees the mix's local average, so what counts is how well those averages match the
//     image. On the image shrunk to at most kRefinePixels (means of blocks, in the working space
//     the image will be dithered in): Floyd-Steinberg with the current colours; then the colours
//     that minimise |h * (sample - dithered)|^2 for that assignment of colours to pixels, h the
//     eye filter of the dbs algorithm (a Gaussian of sigma ~1.5 px). That is linear least
//     squares: the normal equations a x = b, a[j][n] the sum of (h~h)(p - q) over pixels p of
//     colour j and q of colour n, solved by Cholesky. Repeated; the colours that scored best win.
//  5. Round to 8 bits (a colour taken already moves to the nearest free one), sort by luma.
// Single-threaded and free of unordered iteration, so the same image, count and space always
// give the same palette.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "engine/palette.h"

namespace dither::engine {

namespace {

using Vec3 = std::array<double, 3>;

constexpr size_t kMaxSamples = size_t{1} << 20;
constexpr size_t kMaxPoints = size_t{1} << 14;
constexpr int kKMeansIterations = 4;
constexpr size_t kRefinePixels = size_t{1} << 17;
constexpr int kRefineIterations = 5;  // rounds of error diffusion, each but the last refitted
// The autocorrelation of the dbs eye filter g = (1 2 4 5 4 2 1) (dbs.cc): a[|d|], d = -6..6.
constexpr int kReach = 6;
constexpr std::array<uint32_t, kReach + 1> kEyeAutocorrelation = {67, 60, 44, 26, 12, 4, 1};
double autocorrelation(ptrdiff_t d) {
  return kEyeAutocorrelation[static_cast<size_t>(d < 0 ? -d : d)];
}

struct Point {
  Vec3 c;  // sRGB, 0..255
  double weight;
};

Color unpack(uint32_t c) {
  return Color{static_cast<uint8_t>(c >> 16), static_cast<uint8_t>(c >> 8),
               static_cast<uint8_t>(c)};
}

std::vector<Color> sorted_unique(std::vector<Color> colors) {
  auto luma = [](Color c) { return 299 * c.r + 587 * c.g + 114 * c.b; };
  std::sort(colors.begin(), colors.end(), [&](Color a, Color b) {
    return luma(a) != luma(b) ? luma(a) < luma(b) : a.packed() < b.packed();
  });
  colors.erase(std::unique(colors.begin(), colors.end()), colors.end());
  return colors;
}

// ---- 1-2. Sampling ------------------------------------------------------------------------------

// Distinct colours and their counts, in order of first sight, while there are at most `limit`.
class ColorCounter {
 public:
  explicit ColorCounter(size_t limit) : limit_(limit) {
    size_t cap = 16;
    while (cap < 4 * limit) cap *= 2;
    slots_.assign(cap, kEmpty);
  }
  bool overflowed() const { return overflowed_; }
  const std::vector<uint32_t>& colors() const { return colors_; }
  const std::vector<double>& counts() const { return counts_; }

  void add(uint32_t c) {
    if (overflowed_) return;
    size_t i = (c * 0x9e3779b1U) & (slots_.size() - 1);
    while (slots_[i] != kEmpty) {
      if (colors_[slots_[i]] == c) {
        counts_[slots_[i]] += 1;
        return;
      }
      i = (i + 1) & (slots_.size() - 1);
    }
    if (colors_.size() == limit_) {
      overflowed_ = true;
      return;
    }
    slots_[i] = static_cast<uint32_t>(colors_.size());
    colors_.push_back(c);
    counts_.push_back(1);
  }

 private:
  static constexpr uint32_t kEmpty = 0xffffffffU;
  size_t limit_;
  bool overflowed_ = false;
  std::vector<uint32_t> slots_;  // index into colors_
  std::vector<uint32_t> colors_;
  std::vector<double> counts_;
};

// Bins of `bits` per channel holding sums of colours and counts; merge() halves the resolution.
class Bins {
 public:
  Bins() : bits_(6), sums_(size_t{1} << 18) {}
  void add(const uint8_t* p) {
    auto& s = sums_[key(p[0], p[1], p[2])];
    s[0] += p[0];
    s[1] += p[1];
    s[2] += p[2];
    s[3] += 1;
  }
  size_t occupied() const {
    return static_cast<size_t>(
        std::count_if(sums_.begin(), sums_.end(), [](const auto& s) { return s[3] != 0; }));
  }
  void merge() {
    std::vector<std::array<uint32_t, 4>> coarse(sums_.size() / 8);
    --bits_;
    for (const auto& s : sums_) {
      if (s[3] == 0) continue;
      // The old bin lies inside one new bin: the one of its mean.
      auto& t = coarse[key(static_cast<uint8_t>(s[0] / s[3]), static_cast<uint8_t>(s[1] / s[3]),
                           static_cast<uint8_t>(s[2] / s[3]))];
      for (size_t c = 0; c < 4; ++c) t[c] += s[c];
    }
    sums_ = std::move(coarse);
  }
  std::vector<Point> points() const {
    std::vector<Point> pts;
    for (const auto& s : sums_) {
      if (s[3] == 0) continue;
      const double w = static_cast<double>(s[3]);
      pts.push_back(Point{{s[0] / w, s[1] / w, s[2] / w}, w});
    }
    return pts;
  }

 private:
  size_t key(uint8_t r, uint8_t g, uint8_t b) const {
    const int shift = 8 - bits_;
    return (size_t{r} >> shift << (2 * bits_)) | (size_t{g} >> shift << bits_) |
           (size_t{b} >> shift);
  }
  int bits_;
  std::vector<std::array<uint32_t, 4>> sums_;
};

// ---- 3. Clustering ------------------------------------------------------------------------------

struct Box {
  size_t begin;
  size_t end;
  double error;  // weighted squared error around the mean
  Vec3 mean;
  Vec3 spread;  // weighted squared error per channel
};

Box make_box(const std::vector<Point>& pts, size_t begin, size_t end) {
  Box b{begin, end, 0.0, {}, {}};
  double w = 0.0;
  for (size_t i = begin; i < end; ++i) {
    w += pts[i].weight;
    for (size_t c = 0; c < 3; ++c) b.mean[c] += pts[i].weight * pts[i].c[c];
  }
  for (size_t c = 0; c < 3; ++c) b.mean[c] /= w;
  for (size_t i = begin; i < end; ++i) {
    for (size_t c = 0; c < 3; ++c) {
      const double d = pts[i].c[c] - b.mean[c];
      b.spread[c] += pts[i].weight * d * d;
    }
  }
  b.error = b.spread[0] + b.spread[1] + b.spread[2];
  return b;
}

// The weighted median of box b along its widest channel (pts sorted there); b holds >= 2 points.
size_t split_box(std::vector<Point>& pts, const Box& b) {
  const size_t axis =
      static_cast<size_t>(std::max_element(b.spread.begin(), b.spread.end()) - b.spread.begin());
  std::stable_sort(pts.begin() + static_cast<std::ptrdiff_t>(b.begin),
                   pts.begin() + static_cast<std::ptrdiff_t>(b.end),
                   [axis](const Point& p, const Point& q) { return p.c[axis] < q.c[axis]; });
  double total = 0.0;
  for (size_t i = b.begin; i < b.end; ++i) total += pts[i].weight;
  double cum = 0.0;
  size_t split = b.begin + 1;
  for (size_t i = b.begin; i < b.end; ++i) {
    cum += pts[i].weight;
    if (2.0 * cum >= total) {
      split = i + 1;
      break;
    }
  }
  return std::clamp(split, b.begin + 1, b.end - 1);
}

std::vector<Vec3> median_cut(std::vector<Point>& pts, int count) {
  std::vector<Box> boxes{make_box(pts, 0, pts.size())};
  while (static_cast<int>(boxes.size()) < count) {
    size_t pick = boxes.size();
    for (size_t i = 0; i < boxes.size(); ++i) {
      if (boxes[i].end - boxes[i].begin < 2) continue;
      if (pick == boxes.size() || boxes[i].error > boxes[pick].error) pick = i;
    }
    if (pick == boxes.size()) break;
    const Box b = boxes[pick];
    const size_t split = split_box(pts, b);
    boxes[pick] = make_box(pts, b.begin, split);
    boxes.push_back(make_box(pts, split, b.end));
  }
  std::vector<Vec3> centres;
  for (const Box& b : boxes) centres.push_back(b.mean);
  return centres;
}

size_t nearest(const Vec3& p, const std::vector<Vec3>& centres) {
  size_t best = 0;
  double best_d = 0.0;
  for (size_t j = 0; j < centres.size(); ++j) {
    const double dr = p[0] - centres[j][0];
    const double dg = p[1] - centres[j][1];
    const double db = p[2] - centres[j][2];
    const double d = dr * dr + dg * dg + db * db;
    if (j == 0 || d < best_d) {
      best_d = d;
      best = j;
    }
  }
  return best;
}

// Lloyd's iterations; an emptied cluster keeps its centre.
void kmeans(const std::vector<Point>& pts, std::vector<Vec3>& centres) {
  std::vector<std::array<double, 4>> acc(centres.size());
  for (int it = 0; it < kKMeansIterations; ++it) {
    std::fill(acc.begin(), acc.end(), std::array<double, 4>{});
    for (const Point& p : pts) {
      const size_t best = nearest(p.c, centres);
      for (size_t c = 0; c < 3; ++c) acc[best][c] += p.weight * p.c[c];
      acc[best][3] += p.weight;
    }
    for (size_t j = 0; j < centres.size(); ++j) {
      if (acc[j][3] <= 0.0) continue;
      for (size_t c = 0; c < 3; ++c) centres[j][c] = acc[j][c] / acc[j][3];
    }
  }
}

// ---- 4. Refinement ------------------------------------------------------------------------------

// 8-bit samples <-> working values in [0, 1] (the engine's working values / 65535).
class WorkingSpace {
 public:
  explicit WorkingSpace(ColorSpace space) {
    const auto& table = to_working_table(space);
    for (size_t s = 0; s < 256; ++s) value_[s] = table[s] / double{kWorkingMax};
    // sample_[w]: the sample nearest w / 65535 (by midpoints; the engine's rule).
    sample_.resize(kWorkingMax + 1);
    size_t s = 0;
    for (size_t w = 0; w <= kWorkingMax; ++w) {
      while (s < 255 && 2 * w >= size_t{table[s]} + table[s + 1]) ++s;
      sample_[w] = static_cast<uint8_t>(s);
    }
  }
  double value(uint8_t s) const { return value_[s]; }
  uint8_t sample(double v) const {
    return sample_[static_cast<size_t>(std::clamp(v, 0.0, 1.0) * kWorkingMax + 0.5)];
  }

 private:
  std::array<double, 256> value_{};
  std::vector<uint8_t> sample_;
};

// What the refinement dithers: the image, or the means of blocks of it, in working values;
// `filtered` is it filtered by the eye filter's autocorrelation (zero outside), from which the
// right-hand side of the normal equations is summed.
struct Sample {
  int width = 0;
  int height = 0;
  std::vector<float> values;  // 3 per pixel
  std::vector<float> filtered;
};

void filter_sample(Sample& t) {
  const size_t w = static_cast<size_t>(t.width);
  const size_t h = static_cast<size_t>(t.height);
  const size_t reach = kReach;
  // Along rows: each row copied into a zero-padded line first.
  std::vector<double> rows(t.values.size());
  std::vector<double> line((w + 2 * reach) * 3, 0.0);
  for (size_t y = 0; y < h; ++y) {
    std::copy(t.values.begin() + static_cast<ptrdiff_t>(y * w * 3),
              t.values.begin() + static_cast<ptrdiff_t>((y + 1) * w * 3),
              line.begin() + static_cast<ptrdiff_t>(reach * 3));
    double* out = rows.data() + y * w * 3;
    for (size_t i = 0; i < w * 3; ++i) {
      double s = 0.0;
      for (size_t d = 0; d <= 2 * reach; ++d) {
        s += autocorrelation(static_cast<ptrdiff_t>(d) - kReach) * line[i + d * 3];
      }
      out[i] = s;
    }
  }
  // Along columns: whole rows at a time.
  t.filtered.assign(t.values.size(), 0.0F);
  std::vector<double> acc(w * 3);
  for (size_t y = 0; y < h; ++y) {
    std::fill(acc.begin(), acc.end(), 0.0);
    const size_t first = y >= reach ? y - reach : 0;
    const size_t last = std::min(h - 1, y + reach);
    for (size_t v = first; v <= last; ++v) {
      const double k = autocorrelation(static_cast<ptrdiff_t>(v) - static_cast<ptrdiff_t>(y));
      const double* in = rows.data() + v * w * 3;
      for (size_t i = 0; i < w * 3; ++i) acc[i] += k * in[i];
    }
    for (size_t i = 0; i < w * 3; ++i) t.filtered[y * w * 3 + i] = static_cast<float>(acc[i]);
  }
}

// The image when it has at most kRefinePixels pixels, else the means of fx x fy blocks (whole
// blocks only), the smallest square blocks that fit (oblong along a side too short for them).
Sample make_sample(const Image& image, const WorkingSpace& ws) {
  int f = 1;
  while (image.pixel_count() / (static_cast<size_t>(f) * static_cast<size_t>(f)) > kRefinePixels) {
    ++f;
  }
  int fx = std::min(f, image.width);
  const int fy = std::min(image.height, (f * f + fx - 1) / fx);
  fx = std::min(image.width, (f * f + fy - 1) / fy);
  Sample t;
  t.width = image.width / fx;
  t.height = image.height / fy;
  t.values.reserve(static_cast<size_t>(t.width) * static_cast<size_t>(t.height) * 3);
  const double scale = 1.0 / (fx * fy);
  for (int y = 0; y < t.height; ++y) {
    for (int x = 0; x < t.width; ++x) {
      Vec3 sum{};
      for (int v = 0; v < fy; ++v) {
        const uint8_t* p = image.at(x * fx, y * fy + v);
        for (int u = 0; u < fx; ++u, p += image.channels) {
          for (size_t c = 0; c < 3; ++c) sum[c] += ws.value(p[c]);
        }
      }
      for (double v : sum) t.values.push_back(static_cast<float>(v * scale));
    }
  }
  filter_sample(t);
  return t;
}

// The palette colour error diffusion picks for a point, by the engine's rule for lists: the
// colour nearest to the middle of the point's sample cell (4 samples wide per channel), filled
// in on first use.
class CellNearest {
 public:
  CellNearest(const WorkingSpace& ws, const std::vector<Vec3>& palette)
      : ws_(ws), table_(size_t{1} << 18, -1), distance_(palette.size()) {
    for (size_t c = 0; c < 64; ++c) {
      const auto s = static_cast<uint8_t>(4 * c);
      middle_[c] = fixed((ws.value(s + 1) + ws.value(s + 2)) / 2);
    }
    for (size_t c = 0; c < 3; ++c) {
      for (const Vec3& p : palette) channel_[c].push_back(fixed(p[c]));
    }
  }
  size_t index(const float* v) {
    const size_t r = ws_.sample(v[0]) >> 2;
    const size_t g = ws_.sample(v[1]) >> 2;
    const size_t b = ws_.sample(v[2]) >> 2;
    int16_t& slot = table_[(r << 12) | (g << 6) | b];
    if (slot < 0) slot = static_cast<int16_t>(nearest(middle_[r], middle_[g], middle_[b]));
    return static_cast<size_t>(slot);
  }

 private:
  // Working values in 14 bits: a squared distance fits 32 bits, and the loops below vectorise.
  static int32_t fixed(double v) {
    return static_cast<int32_t>(std::clamp(v, 0.0, 1.0) * 16383 + 0.5);
  }

  size_t nearest(int32_t r, int32_t g, int32_t b) {
    const size_t k = distance_.size();
    for (size_t j = 0; j < k; ++j) {
      const int32_t dr = r - channel_[0][j];
      const int32_t dg = g - channel_[1][j];
      const int32_t db = b - channel_[2][j];
      distance_[j] = dr * dr + dg * dg + db * db;
    }
    int32_t least = distance_[0];
    for (size_t j = 1; j < k; ++j) least = std::min(least, distance_[j]);
    return static_cast<size_t>(std::find(distance_.begin(), distance_.end(), least) -
                               distance_.begin());
  }

  const WorkingSpace& ws_;
  std::array<int32_t, 64> middle_{};
  std::array<std::vector<int32_t>, 3> channel_;
  std::vector<int16_t> table_;
  std::vector<int32_t> distance_;
};

// The palette index of every pixel of the sample, with a margin of kReach on the left, the right
// and at the bottom holding `outside` (an index past the palette), so the neighbour loops need no
// bounds checks.
struct IndexMap {
  size_t width = 0;  // the padded width
  std::vector<uint16_t> index;
  uint16_t* row(size_t y) { return index.data() + y * width + kReach; }
  const uint16_t* row(size_t y) const { return index.data() + y * width + kReach; }
};

// Floyd-Steinberg (raster order, the default) over the sample, into `map`.
void diffuse(const Sample& t, const std::vector<Vec3>& palette, CellNearest& pick, IndexMap& map) {
  const size_t w = static_cast<size_t>(t.width);
  const size_t h = static_cast<size_t>(t.height);
  map.width = w + 2 * kReach;
  map.index.assign(map.width * (h + kReach), static_cast<uint16_t>(palette.size()));
  std::vector<float> cur((w + 2) * 3, 0.0F);
  std::vector<float> next((w + 2) * 3, 0.0F);
  for (size_t y = 0; y < h; ++y) {
    std::fill(next.begin(), next.end(), 0.0F);
    uint16_t* out = map.row(y);
    for (size_t x = 0; x < w; ++x) {
      const size_t i = y * w + x;
      float v[3];
      for (size_t c = 0; c < 3; ++c) {
        v[c] = std::clamp(t.values[i * 3 + c] + cur[(x + 1) * 3 + c], 0.0F, 1.0F);
      }
      const size_t k = pick.index(v);
      out[x] = static_cast<uint16_t>(k);
      for (size_t c = 0; c < 3; ++c) {
        const float e = v[c] - static_cast<float>(palette[k][c]);
        cur[(x + 2) * 3 + c] += e * (7.0F / 16);
        next[x * 3 + c] += e * (3.0F / 16);
        next[(x + 1) * 3 + c] += e * (5.0F / 16);
        next[(x + 2) * 3 + c] += e * (1.0F / 16);
      }
    }
    std::swap(cur, next);
  }
}

// The eye filter's autocorrelation over the half-plane after a pixel (raster order), as index
// steps in a map of the given padded width: each pair of pixels is met once.
struct Offset {
  ptrdiff_t step;
  uint32_t weight;
};
std::vector<Offset> half_plane(size_t width) {
  std::vector<Offset> out;
  for (int dy = 0; dy <= kReach; ++dy) {
    for (int dx = dy == 0 ? 1 : -kReach; dx <= kReach; ++dx) {
      out.push_back(Offset{dy * static_cast<ptrdiff_t>(width) + dx,
                           kEyeAutocorrelation[static_cast<size_t>(dy)] *
                               kEyeAutocorrelation[static_cast<size_t>(std::abs(dx))]});
    }
  }
  return out;
}

// The normal equations a x = b for the colours, given the colour error diffusion put on each
// pixel: a[j][n] sums the autocorrelation (h~h)(p - q) over ordered pairs of pixels, p of colour
// j and q of colour n; b[j] sums the filtered sample over the pixels of colour j. The objective
// |h * (sample - dithered)|^2 is then x'ax - 2 x'b per channel, plus a constant.
struct Normal {
  std::vector<double> a;
  std::vector<Vec3> b;
};

Normal normal_equations(const Sample& t, const IndexMap& map, size_t k) {
  const std::vector<Offset> offsets = half_plane(map.width);
  // Each unordered pair of distinct pixels once, from the earlier; column k for the margin.
  // Integer weights: the sums are exact, whatever the order.
  std::vector<uint64_t> pairs((k + 1) * (k + 1), 0);
  std::vector<uint64_t> pixels(k, 0);
  Normal eq{std::vector<double>(k * k), std::vector<Vec3>(k, Vec3{})};
  for (size_t y = 0; y < static_cast<size_t>(t.height); ++y) {
    const uint16_t* row = map.row(y);
    for (size_t x = 0; x < static_cast<size_t>(t.width); ++x) {
      const size_t j = row[x];
      ++pixels[j];
      const size_t i = y * static_cast<size_t>(t.width) + x;
      for (size_t c = 0; c < 3; ++c) eq.b[j][c] += t.filtered[i * 3 + c];
      uint64_t* sums = pairs.data() + j * (k + 1);
      const uint16_t* here = row + x;
      for (const Offset& o : offsets) sums[here[o.step]] += o.weight;
    }
  }
  const double centre = kEyeAutocorrelation[0] * kEyeAutocorrelation[0];
  for (size_t j = 0; j < k; ++j) {
    for (size_t n = 0; n < k; ++n) {
      eq.a[j * k + n] = static_cast<double>(pairs[j * (k + 1) + n] + pairs[n * (k + 1) + j]);
    }
    eq.a[j * k + j] += centre * static_cast<double>(pixels[j]);
  }
  return eq;
}

// Solves (a + lambda I) x = b + lambda x0 by Cholesky (a is a Gram matrix: symmetric, positive
// semi-definite; lambda keeps unused colours where they are and the rest from wild values).
std::vector<Vec3> solve(std::vector<double> a, std::vector<Vec3> b, const std::vector<Vec3>& x0) {
  const size_t k = x0.size();
  double trace = 0.0;
  for (size_t j = 0; j < k; ++j) trace += a[j * k + j];
  const double lambda = 1e-3 * trace / static_cast<double>(k) + 1e-12;
  for (size_t j = 0; j < k; ++j) {
    a[j * k + j] += lambda;
    for (size_t c = 0; c < 3; ++c) b[j][c] += lambda * x0[j][c];
  }
  for (size_t j = 0; j < k; ++j) {  // a = L L^T, L in the lower triangle
    for (size_t i = 0; i < j; ++i) a[j * k + j] -= a[j * k + i] * a[j * k + i];
    a[j * k + j] = std::sqrt(a[j * k + j]);
    for (size_t r = j + 1; r < k; ++r) {
      double s = a[r * k + j];
      for (size_t i = 0; i < j; ++i) s -= a[r * k + i] * a[j * k + i];
      a[r * k + j] = s / a[j * k + j];
    }
  }
  for (size_t j = 0; j < k; ++j) {  // forward: L y = b
    for (size_t i = 0; i < j; ++i) {
      for (size_t c = 0; c < 3; ++c) b[j][c] -= a[j * k + i] * b[i][c];
    }
    for (size_t c = 0; c < 3; ++c) b[j][c] /= a[j * k + j];
  }
  for (size_t j = k; j-- > 0;) {  // back: L^T x = y
    for (size_t i = j + 1; i < k; ++i) {
      for (size_t c = 0; c < 3; ++c) b[j][c] -= a[i * k + j] * b[i][c];
    }
    for (size_t c = 0; c < 3; ++c) b[j][c] /= a[j * k + j];
  }
  return b;
}

// Working values rounded to the nearest 8-bit colours (what the dither will really use).
void snap(std::vector<Vec3>& palette, const WorkingSpace& ws) {
  for (Vec3& p : palette) {
    for (double& v : p) v = ws.value(ws.sample(v));
  }
}

double objective(const Normal& eq, const std::vector<Vec3>& x) {
  const size_t k = x.size();
  double e = 0.0;
  for (size_t j = 0; j < k; ++j) {
    for (size_t c = 0; c < 3; ++c) {
      double ax = 0.0;
      for (size_t n = 0; n < k; ++n) ax += eq.a[j * k + n] * x[n][c];
      e += x[j][c] * (ax - 2.0 * eq.b[j][c]);
    }
  }
  return e;
}

// Alternates error diffusion and the least-squares fit; keeps the colours that scored best (a
// fit is optimal for the previous choice of colours per pixel, which it changes).
void refine(const Image& image, const WorkingSpace& ws, std::vector<Vec3>& palette) {
  const Sample sample = make_sample(image, ws);
  IndexMap map;
  std::vector<Vec3> best;
  double best_score = 0.0;
  for (int it = 0; it < kRefineIterations; ++it) {
    snap(palette, ws);
    CellNearest pick(ws, palette);
    diffuse(sample, palette, pick, map);
    Normal eq = normal_equations(sample, map, palette.size());
    const double score = objective(eq, palette);
    if (best.empty() || score < best_score) {
      best = palette;
      best_score = score;
    }
    if (it + 1 == kRefineIterations) break;
    palette = solve(std::move(eq.a), std::move(eq.b), palette);
  }
  palette = std::move(best);
}

// ---- 5. Output ----------------------------------------------------------------------------------

// The free 8-bit colour nearest (working-space distance) to p, searched in growing cubes around
// `from`; ties go to the first in scan order.
Color nearest_free(const Vec3& p, Color from, const std::vector<uint32_t>& taken,
                   const WorkingSpace& ws) {
  auto free = [&taken](Color c) {
    return std::find(taken.begin(), taken.end(), c.packed()) == taken.end();
  };
  if (free(from)) return from;
  const std::array<int, 3> centre = {from.r, from.g, from.b};
  for (int r = 1; r < 256; ++r) {
    Color best = from;
    double best_d = -1.0;
    std::array<int, 3> d{};
    for (d[0] = -r; d[0] <= r; ++d[0]) {
      for (d[1] = -r; d[1] <= r; ++d[1]) {
        for (d[2] = -r; d[2] <= r; ++d[2]) {
          if (std::max({std::abs(d[0]), std::abs(d[1]), std::abs(d[2])}) != r) continue;
          std::array<uint8_t, 3> s{};
          double dist = 0.0;
          bool inside = true;
          for (size_t c = 0; c < 3; ++c) {
            const int v = centre[c] + d[c];
            inside = inside && v >= 0 && v <= 255;
            s[c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
            dist += (ws.value(s[c]) - p[c]) * (ws.value(s[c]) - p[c]);
          }
          const Color c{s[0], s[1], s[2]};
          if (inside && free(c) && (best_d < 0.0 || dist < best_d)) {
            best = c;
            best_d = dist;
          }
        }
      }
    }
    if (best_d >= 0.0) return best;
  }
  return from;  // unreachable: at most 256 colours are taken
}

// The 8-bit colours nearest the working values, all distinct: a colour already taken moves to
// the nearest free one.
std::vector<Color> distinct_colors(const std::vector<Vec3>& palette, const WorkingSpace& ws) {
  std::vector<uint32_t> taken;
  std::vector<Color> out;
  for (const Vec3& p : palette) {
    const Color c =
        nearest_free(p, Color{ws.sample(p[0]), ws.sample(p[1]), ws.sample(p[2])}, taken, ws);
    taken.push_back(c.packed());
    out.push_back(c);
  }
  return out;
}

// The points to cluster, or (empty, with `exact` filled) the sample's colours when it has at most
// `count` of them.
std::vector<Point> sample_points(const Image& image, int count, std::vector<Color>& exact) {
  const size_t n = image.pixel_count();
  const size_t step = std::max<size_t>(1, (n + kMaxSamples - 1) / kMaxSamples);
  const size_t channels = static_cast<size_t>(image.channels);
  ColorCounter distinct(kMaxPoints);
  Bins bins;
  for (size_t i = 0; i < n; i += step) {
    const uint8_t* p = image.pixels.data() + i * channels;
    distinct.add((uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]);
    bins.add(p);
  }
  std::vector<Point> pts;
  if (distinct.overflowed()) {
    while (bins.occupied() > kMaxPoints) bins.merge();
    return bins.points();
  }
  if (distinct.colors().size() <= static_cast<size_t>(count)) {
    for (uint32_t c : distinct.colors()) exact.push_back(unpack(c));
    return pts;
  }
  for (size_t i = 0; i < distinct.colors().size(); ++i) {
    const Color c = unpack(distinct.colors()[i]);
    pts.push_back(
        Point{{static_cast<double>(c.r), static_cast<double>(c.g), static_cast<double>(c.b)},
              distinct.counts()[i]});
  }
  return pts;
}

}  // namespace

std::vector<Color> adaptive_palette(const Image& image, int count, ColorSpace space) {
  count = std::clamp(count, 1, kMaxPaletteColors);
  if (image.pixel_count() == 0) return {};
  std::vector<Color> exact;
  std::vector<Point> pts = sample_points(image, count, exact);
  if (pts.empty()) return sorted_unique(std::move(exact));

  std::vector<Vec3> centres = median_cut(pts, count);
  kmeans(pts, centres);
  const WorkingSpace ws(space);
  for (Vec3& c : centres) {
    for (double& v : c) v = ws.value(static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)));
  }
  refine(image, ws, centres);
  return sorted_unique(distinct_colors(centres, ws));
}

}  // namespace dither::engine
