#include "engine/quantizer.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <string>

namespace dither::engine {

const std::vector<MetricInfo>& metrics() {
  static const std::vector<MetricInfo> list = {
      {Metric::kEuclidean, "rgb", "plain RGB distance in the working space (sRGB or linear light)"},
      {Metric::kPerceptual, "luma",
       "RGB distance weighted by luma (0.2126, 0.7152, 0.0722): green matters most"},
      {Metric::kOklab, "oklab",
       "distance in Oklab, a perceptually uniform space: hue and lightness as the eye sees them"},
      {Metric::kCiede2000, "ciede2000",
       "CIE Delta E 2000 between CIELAB colours: the colour scientists' measure (slowest)"},
  };
  return list;
}

std::string_view metric_name(Metric m) {
  for (const MetricInfo& info : metrics()) {
    if (info.metric == m) return info.name;
  }
  return "unknown";
}

Result<Metric> parse_metric(std::string_view name) {
  std::string n(name);
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const MetricInfo& info : metrics()) {
    if (info.name == n) return info.metric;
  }
  if (n == "perceptual") return Metric::kPerceptual;
  return make_error(ErrorKind::kInvalidArgument,
                    "unknown distance '" + std::string(name) + "' (rgb, luma, oklab, ciede2000)");
}

namespace {

// A squared distance along one axis from value v to the interval [lo, hi].
int64_t axis_min(int64_t v, int64_t lo, int64_t hi) {
  if (v < lo) return (lo - v) * (lo - v);
  if (v > hi) return (v - hi) * (v - hi);
  return 0;
}

int64_t axis_max(int64_t v, int64_t lo, int64_t hi) {
  const int64_t d = std::max(std::abs(v - lo), std::abs(v - hi));
  return d * d;
}

}  // namespace

Quantizer::Quantizer(const Palette& palette, ColorSpace space, Metric metric)
    : space_(space),
      metric_(metric),
      to_working_(&to_working_table(space)),
      to_linear_(&to_linear_table(space)) {
  weights_ = metric == Metric::kPerceptual ? std::array<int64_t, 3>{2126, 7152, 722}
                                           : std::array<int64_t, 3>{1, 1, 1};
  const auto& tw = *to_working_;
  if (palette.is_levels()) {
    levels_ = palette.levels();
    level_working_.resize(static_cast<size_t>(levels_));
    level_output_.resize(static_cast<size_t>(levels_));
    for (int i = 0; i < levels_; ++i) {
      level_output_[static_cast<size_t>(i)] = palette.level_value(i);
      level_working_[static_cast<size_t>(i)] = tw[palette.level_value(i)];
    }
    level_of_.resize(kWorkingMax + 1);
    const int64_t c1 = levels_ - 1;
    int level = 0;
    for (int w = 0; w <= kWorkingMax; ++w) {
      if (space == ColorSpace::kSrgb) {
        // The prototype's round(v * (c - 1)) with v = w / 65535, rounding half up.
        level = static_cast<int>((2 * w * c1 + kWorkingMax) / (2 * kWorkingMax));
      } else {
        // Nearest level in linear light; ties go to the lower level.
        while (level + 1 < levels_ && (level_working_[static_cast<size_t>(level + 1)] - w) <
                                          (w - level_working_[static_cast<size_t>(level)])) {
          ++level;
        }
      }
      level_of_[static_cast<size_t>(w)] = static_cast<uint8_t>(level);
    }
    return;
  }
  colors_ = palette.colors();
  working_.reserve(colors_.size());
  for (const Color& c : colors_) {
    working_.push_back({tw[c.r], tw[c.g], tw[c.b]});
    working4_.push_back({tw[c.r], tw[c.g], tw[c.b], 0});
    const int64_t pr = tw[c.r], pg = tw[c.g], pb = tw[c.b];
    ranked_.push_back({weights_[0] * pr, weights_[1] * pg, weights_[2] * pb,
                       weights_[0] * pr * pr + weights_[1] * pg * pg + weights_[2] * pb * pb});
  }
  build_metric_cells();
  // Nearest 8-bit sample by working-space midpoints (ties up), then four samples per cell.
  sample_cell_.resize(kWorkingMax + 1);
  int sample = 0;
  for (int w = 0; w <= kWorkingMax; ++w) {
    while (sample < 255 &&
           2 * w >= tw[static_cast<size_t>(sample)] + tw[static_cast<size_t>(sample) + 1]) {
      ++sample;
    }
    sample_cell_[static_cast<size_t>(w)] = static_cast<uint8_t>(sample >> 2);
  }
  if (small_cells()) {
    cell_colour8_.assign(size_t{1} << 18, CellTableOf<uint8_t>::kUnknown);
  } else {
    cell_colour16_.assign(size_t{1} << 18, CellTableOf<uint16_t>::kUnknown);
  }
}

int Quantizer::fill_cell(size_t cell) const {
  const auto& tw = *to_working_;
  auto middle = [&](size_t c) {  // between samples 4c+1 and 4c+2
    return (tw[4 * c + 1] + tw[4 * c + 2]) / 2;
  };
  const int index = nearest(middle(cell >> 12), middle((cell >> 6) & 63), middle(cell & 63));
  if (small_cells()) {
    std::atomic_ref<uint8_t>(cell_colour8_[cell])
        .store(static_cast<uint8_t>(index), std::memory_order_relaxed);
  } else {
    std::atomic_ref<uint16_t>(cell_colour16_[cell])
        .store(static_cast<uint16_t>(index), std::memory_order_relaxed);
  }
  return index;
}

// The candidate grid of the metric, with the colours converted where it needs them.
void Quantizer::build_metric_cells() {
  const auto& lin = *to_linear_;
  auto linear = [&](const std::array<int32_t, 3>& w, size_t c) {
    return lin[static_cast<size_t>(w[c])];
  };
  if (metric_ == Metric::kOklab) {
    for (const auto& w : working_) {
      oklab_.push_back(oklab_from_linear(linear(w, 0), linear(w, 1), linear(w, 2)));
    }
    build_oklab_cells();
  } else if (metric_ == Metric::kCiede2000) {
    for (const auto& w : working_) {
      lab_.push_back(cielab_from_linear(linear(w, 0), linear(w, 1), linear(w, 2)));
    }
    for (size_t i = 0; i < lab_.size(); ++i) by_lightness_.push_back(static_cast<uint8_t>(i));
    std::stable_sort(by_lightness_.begin(), by_lightness_.end(),
                     [&](uint8_t x, uint8_t y) { return lab_[x].l < lab_[y].l; });
    // No box bound exists for Delta E 2000: every cell searches the colours by lightness.
    cells_.assign(size_t{1} << (3 * kCellBits), kConverted);
  } else {
    build_rgb_cells();
  }
}

template <class Distances>
void Quantizer::build_cells(size_t n, uint32_t flag, Distances distances) {
  constexpr int kCells = 1 << kCellBits;
  cells_.assign(static_cast<size_t>(kCells) * kCells * kCells, 0);
  candidates_.clear();
  std::vector<uint8_t> list;
  std::vector<int64_t> dmin(n);
  std::vector<int64_t> dmax(n);
  size_t cell = 0;
  for (int cr = 0; cr < kCells; ++cr) {
    for (int cg = 0; cg < kCells; ++cg) {
      for (int cb = 0; cb < kCells; ++cb, ++cell) {
        distances(cr, cg, cb, dmin.data(), dmax.data());
        // No point of the cell is farther than `bound` from its nearest colour, so a colour
        // whose nearest point of the cell lies beyond it can never be the nearest.
        const int64_t bound = *std::min_element(dmax.begin(), dmax.end());
        list.clear();
        for (size_t i = 0; i < n; ++i) {
          if (dmin[i] <= bound) list.push_back(static_cast<uint8_t>(i));
        }
        if (list.size() == 1) {
          cells_[cell] = kSingle | list[0];
          continue;
        }
        while (list.size() % 4 != 0) list.push_back(list.back());
        cells_[cell] = flag | static_cast<uint32_t>((list.size() / 4 - 1) << kGroupShift) |
                       static_cast<uint32_t>(candidates_.size());
        candidates_.insert(candidates_.end(), list.begin(), list.end());
      }
    }
  }
}

// A cell of the working cube is a box whose sides are the same 32 intervals on every axis, and
// the weighted squared distance is a sum over the axes: each colour's nearest and farthest
// distance to a cell is the sum of three per-axis figures, tabulated once per axis position
// (3 x 32 x colours) instead of computed again for each of the 32^3 cells.
void Quantizer::build_rgb_cells() {
  constexpr int kCells = 1 << kCellBits;
  constexpr int64_t kCellSize = int64_t{1} << kCellShift;
  const size_t n = working_.size();  // at least 1: palettes are never empty
  // [axis][position * n + colour]
  std::array<std::vector<int64_t>, 3> near;
  std::array<std::vector<int64_t>, 3> far;
  for (size_t a = 0; a < 3; ++a) {
    near[a].resize(kCells * n);
    far[a].resize(kCells * n);
    for (int pos = 0; pos < kCells; ++pos) {
      const int64_t lo = pos * kCellSize;
      const int64_t hi = lo + kCellSize - 1;
      for (size_t i = 0; i < n; ++i) {
        const size_t at = static_cast<size_t>(pos) * n + i;
        near[a][at] = weights_[a] * axis_min(working_[i][a], lo, hi);
        far[a][at] = weights_[a] * axis_max(working_[i][a], lo, hi);
      }
    }
  }
  build_cells(n, 0, [&](int cr, int cg, int cb, int64_t* dmin, int64_t* dmax) {
    const int64_t* nr = near[0].data() + static_cast<size_t>(cr) * n;
    const int64_t* ng = near[1].data() + static_cast<size_t>(cg) * n;
    const int64_t* nb = near[2].data() + static_cast<size_t>(cb) * n;
    const int64_t* fr = far[0].data() + static_cast<size_t>(cr) * n;
    const int64_t* fg = far[1].data() + static_cast<size_t>(cg) * n;
    const int64_t* fb = far[2].data() + static_cast<size_t>(cb) * n;
    for (size_t i = 0; i < n; ++i) {
      dmin[i] = nr[i] + ng[i] + nb[i];
      dmax[i] = fr[i] + fg[i] + fb[i];
    }
  });
}

// Every step from a working value to Oklab is monotone per input except the final matrix: the
// linear and cube-root tables never decrease (distance_test checks them whole) and the LMS rows
// have no negative coefficient. So the cube roots of any point of a cell lie between those of
// its lowest and highest corner, and each Oklab coordinate between the sums of the smaller and
// of the larger products row by row: an integer box holding the Oklab value of every point of
// the cell, which makes the candidate lists exact.
void Quantizer::build_oklab_cells() {
  std::vector<std::array<int64_t, 3>> points;
  for (const Oklab& o : oklab_) points.push_back({o[0], o[1], o[2]});
  const auto& lin = *to_linear_;
  const auto& cube_root = cube_root_table();
  auto roots = [&](int64_t r, int64_t g, int64_t b) {
    const int64_t lr = lin[static_cast<size_t>(r)];
    const int64_t lg = lin[static_cast<size_t>(g)];
    const int64_t lb = lin[static_cast<size_t>(b)];
    std::array<int64_t, 3> out{};
    for (size_t c = 0; c < 3; ++c) {
      out[c] = cube_root[static_cast<size_t>(oklab_lms(kOklabLms[c], lr, lg, lb))];
    }
    return out;
  };
  build_cells(points.size(), kConverted, [&](int cr, int cg, int cb, int64_t* dmin, int64_t* dmax) {
    constexpr int64_t kCellSize = int64_t{1} << kCellShift;
    const auto low = roots(cr * kCellSize, cg * kCellSize, cb * kCellSize);
    const auto high =
        roots((cr + 1) * kCellSize - 1, (cg + 1) * kCellSize - 1, (cb + 1) * kCellSize - 1);
    Box box;
    for (size_t row = 0; row < 3; ++row) {
      int64_t least = 0;
      int64_t most = 0;
      for (size_t c = 0; c < 3; ++c) {
        const int64_t a = kOklabLab[row][c] * low[c];
        const int64_t b = kOklabLab[row][c] * high[c];
        least += std::min(a, b);
        most += std::max(a, b);
      }
      box.lo[row] = (least + 32768) >> 16;
      box.hi[row] = (most + 32768) >> 16;
    }
    for (size_t i = 0; i < points.size(); ++i) {
      dmin[i] = 0;
      dmax[i] = 0;
      for (size_t c = 0; c < 3; ++c) {
        dmin[i] += axis_min(points[i][c], box.lo[c], box.hi[c]);
        dmax[i] += axis_max(points[i][c], box.lo[c], box.hi[c]);
      }
    }
  });
}

int Quantizer::nearest_converted(int r, int g, int b, uint32_t entry) const {
  const auto& lin = *to_linear_;
  const int32_t lr = lin[static_cast<size_t>(r)];
  const int32_t lg = lin[static_cast<size_t>(g)];
  const int32_t lb = lin[static_cast<size_t>(b)];
  if (metric_ == Metric::kCiede2000) return nearest_ciede2000(cielab_from_linear(lr, lg, lb));
  int best = 0;
  const Oklab point = oklab_from_linear(lr, lg, lb);
  const uint8_t* group = candidates_.data() + (entry & kOffsetMask);
  const int count = 4 * ((static_cast<int>(entry >> kGroupShift) & 0x3f) + 1);
  int64_t least = std::numeric_limits<int64_t>::max();
  for (int k = 0; k < count; ++k) {  // in index order: only a strictly smaller distance wins
    const Oklab& p = oklab_[group[k]];
    const int64_t dl = point[0] - p[0];
    const int64_t da = point[1] - p[1];
    const int64_t db = point[2] - p[2];
    const int64_t d = dl * dl + da * da + db * db;
    if (d < least) {
      least = d;
      best = group[k];
    }
  }
  return best;
}

// Delta E 2000 is at least |L1 - L2| / S_L, and S_L = 1 + 0.015 (L - 50)^2 / sqrt(20 + (L - 50)^2)
// is at most 1.7471 for lightness in 0..100 (the cross term R_T of the chroma and hue terms never
// makes their sum negative, |R_T| < 2). So colours are tried outward from the point's lightness,
// the nearer in L first, until even the nearer one is more than 1.75 times the best distance in
// L away: every colour left is then strictly farther. The result is the brute-force search's,
// ties included (lowest index).
int Quantizer::nearest_ciede2000(const Lab& point) const {
  constexpr double kMaxSl = 1.75;
  constexpr double kNone = std::numeric_limits<double>::infinity();
  const std::vector<uint8_t>& order = by_lightness_;
  const ptrdiff_t n = static_cast<ptrdiff_t>(order.size());
  auto lightness = [&](ptrdiff_t k) { return lab_[order[static_cast<size_t>(k)]].l; };
  ptrdiff_t up = std::partition_point(order.begin(), order.end(),
                                      [&](uint8_t i) { return lab_[i].l < point.l; }) -
                 order.begin();
  ptrdiff_t down = up - 1;
  int best = 0;
  double least = kNone;
  while (down >= 0 || up < n) {
    const double below = down >= 0 ? point.l - lightness(down) : kNone;
    const double over = up < n ? lightness(up) - point.l : kNone;
    if (std::min(below, over) > kMaxSl * least) break;
    const int i = order[static_cast<size_t>(below <= over ? down-- : up++)];
    const double d = ciede2000(point, lab_[static_cast<size_t>(i)]);
    if (d < least || (d == least && i < best)) {
      least = d;
      best = i;
    }
  }
  return best;
}

}  // namespace dither::engine
