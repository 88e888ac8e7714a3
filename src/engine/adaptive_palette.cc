// Adaptive palettes: median cut refined by k-means, on a deterministic sample of the image.
//
//  1. Sample every k-th pixel in raster order, k = ceil(pixels / 2^20), so at most about a
//     million samples. If the sample holds at most `count` distinct colours, those are the
//     palette (an image with five colours gets exactly those five).
//  2. Otherwise bin the samples on a 32x32x32 grid (5 bits per sRGB channel); each non-empty bin
//     is a point at its samples' mean colour, weighted by their number.
//  3. Median cut: repeatedly split the box with the largest weighted squared error, along its
//     channel of largest weighted variance, at the weighted median, until there are `count`
//     boxes or none can be split. Box means are the first centres.
//  4. Lloyd's k-means on the points, a fixed few iterations (an emptied cluster keeps its centre).
//  5. Round to 8 bits, drop duplicates, sort by luma (then by packed value).
// Distances are plain squared sRGB differences. Single-threaded and free of unordered
// containers, so the same image and count always give the same palette.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/palette.h"

namespace dither::engine {

namespace {

constexpr size_t kMaxSamples = size_t{1} << 20;
constexpr int kBinBits = 5;
constexpr int kKMeansIterations = 4;

struct Point {
  std::array<double, 3> c;
  double weight;
};

// Distinct colours seen, as long as there are at most `limit` of them.
class SmallColorSet {
 public:
  explicit SmallColorSet(int limit) : limit_(limit) {
    size_t cap = 16;
    while (cap < 4 * static_cast<size_t>(limit)) cap *= 2;
    slots_.assign(cap, kEmpty);
  }
  bool overflowed() const { return overflowed_; }
  const std::vector<uint32_t>& colors() const { return colors_; }

  void add(uint32_t c) {
    if (overflowed_) return;
    size_t i = (c * 0x9e3779b1U) & (slots_.size() - 1);
    while (slots_[i] != kEmpty) {
      if (slots_[i] == c) return;
      i = (i + 1) & (slots_.size() - 1);
    }
    if (static_cast<int>(colors_.size()) == limit_) {
      overflowed_ = true;
      return;
    }
    slots_[i] = c;
    colors_.push_back(c);
  }

 private:
  static constexpr uint32_t kEmpty = 0xffffffffU;
  int limit_;
  bool overflowed_ = false;
  std::vector<uint32_t> slots_;
  std::vector<uint32_t> colors_;
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

struct Box {
  size_t begin;
  size_t end;
  double error;  // weighted squared error around the mean
  std::array<double, 3> mean;
  std::array<double, 3> spread;  // weighted squared error per channel
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

std::vector<std::array<double, 3>> median_cut(std::vector<Point>& pts, int count) {
  std::vector<Box> boxes{make_box(pts, 0, pts.size())};
  while (static_cast<int>(boxes.size()) < count) {
    size_t pick = boxes.size();
    for (size_t i = 0; i < boxes.size(); ++i) {
      if (boxes[i].end - boxes[i].begin < 2) continue;
      if (pick == boxes.size() || boxes[i].error > boxes[pick].error) pick = i;
    }
    if (pick == boxes.size()) break;
    const Box b = boxes[pick];
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
    split = std::clamp(split, b.begin + 1, b.end - 1);
    boxes[pick] = make_box(pts, b.begin, split);
    boxes.push_back(make_box(pts, split, b.end));
  }
  std::vector<std::array<double, 3>> centres;
  for (const Box& b : boxes) centres.push_back(b.mean);
  return centres;
}

void kmeans(const std::vector<Point>& pts, std::vector<std::array<double, 3>>& centres) {
  const size_t k = centres.size();
  std::vector<std::array<double, 4>> acc(k);
  for (int it = 0; it < kKMeansIterations; ++it) {
    std::fill(acc.begin(), acc.end(), std::array<double, 4>{});
    for (const Point& p : pts) {
      size_t best = 0;
      double best_d = 0.0;
      for (size_t j = 0; j < k; ++j) {
        const double dr = p.c[0] - centres[j][0];
        const double dg = p.c[1] - centres[j][1];
        const double db = p.c[2] - centres[j][2];
        const double d = dr * dr + dg * dg + db * db;
        if (j == 0 || d < best_d) {
          best_d = d;
          best = j;
        }
      }
      for (size_t c = 0; c < 3; ++c) acc[best][c] += p.weight * p.c[c];
      acc[best][3] += p.weight;
    }
    for (size_t j = 0; j < k; ++j) {
      if (acc[j][3] <= 0.0) continue;
      for (size_t c = 0; c < 3; ++c) centres[j][c] = acc[j][c] / acc[j][3];
    }
  }
}

}  // namespace

std::vector<Color> adaptive_palette(const Image& image, int count) {
  count = std::clamp(count, 1, kMaxPaletteColors);
  const size_t n = image.pixel_count();
  if (n == 0) return {};
  const size_t step = std::max<size_t>(1, (n + kMaxSamples - 1) / kMaxSamples);
  const size_t channels = static_cast<size_t>(image.channels);

  constexpr int kBins = 1 << (3 * kBinBits);
  constexpr int kShift = 8 - kBinBits;
  std::vector<std::array<uint32_t, 4>> bins(kBins);  // r, g, b sums and count
  SmallColorSet distinct(count);
  for (size_t i = 0; i < n; i += step) {
    const uint8_t* p = image.pixels.data() + i * channels;
    distinct.add((uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2]);
    const size_t bin = (size_t{p[0]} >> kShift << (2 * kBinBits)) |
                       (size_t{p[1]} >> kShift << kBinBits) | (size_t{p[2]} >> kShift);
    bins[bin][0] += p[0];
    bins[bin][1] += p[1];
    bins[bin][2] += p[2];
    bins[bin][3] += 1;
  }
  if (!distinct.overflowed()) {
    std::vector<Color> colors;
    for (uint32_t c : distinct.colors()) colors.push_back(unpack(c));
    return sorted_unique(std::move(colors));
  }

  std::vector<Point> pts;
  for (const auto& b : bins) {
    if (b[3] == 0) continue;
    const double w = b[3];
    pts.push_back(Point{{b[0] / w, b[1] / w, b[2] / w}, w});
  }
  std::vector<std::array<double, 3>> centres = median_cut(pts, count);
  kmeans(pts, centres);
  std::vector<Color> colors;
  for (const auto& c : centres) {
    auto to8 = [](double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); };
    colors.push_back(Color{to8(c[0]), to8(c[1]), to8(c[2])});
  }
  return sorted_unique(std::move(colors));
}

}  // namespace dither::engine
