#include "engine/quantizer.h"

#include <algorithm>
#include <limits>

namespace dither::engine {

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
    : space_(space), metric_(metric), to_working_(&to_working_table(space)) {
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
  build_cells();
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

void Quantizer::build_cells() {
  constexpr int kCells = 1 << kCellBits;
  constexpr int kCellSize = 1 << kCellShift;
  const size_t n = colors_.size();
  cells_.assign(static_cast<size_t>(kCells) * kCells * kCells, 0);
  candidates_.clear();
  std::vector<uint8_t> list;
  std::vector<int64_t> dmin(n);
  size_t cell = 0;
  for (int cr = 0; cr < kCells; ++cr) {
    const int64_t rlo = int64_t{cr} * kCellSize;
    const int64_t rhi = rlo + kCellSize - 1;
    for (int cg = 0; cg < kCells; ++cg) {
      const int64_t glo = int64_t{cg} * kCellSize;
      const int64_t ghi = glo + kCellSize - 1;
      for (int cb = 0; cb < kCells; ++cb, ++cell) {
        const int64_t blo = int64_t{cb} * kCellSize;
        const int64_t bhi = blo + kCellSize - 1;
        int64_t bound = std::numeric_limits<int64_t>::max();
        for (size_t i = 0; i < n; ++i) {
          const auto& p = working_[i];
          dmin[i] = weights_[0] * axis_min(p[0], rlo, rhi) +
                    weights_[1] * axis_min(p[1], glo, ghi) + weights_[2] * axis_min(p[2], blo, bhi);
          const int64_t dmax = weights_[0] * axis_max(p[0], rlo, rhi) +
                               weights_[1] * axis_max(p[1], glo, ghi) +
                               weights_[2] * axis_max(p[2], blo, bhi);
          bound = std::min(bound, dmax);
        }
        list.clear();
        for (size_t i = 0; i < n; ++i) {
          if (dmin[i] <= bound) list.push_back(static_cast<uint8_t>(i));
        }
        if (list.size() == 1) {
          cells_[cell] = kSingle | list[0];
          continue;
        }
        while (list.size() % 4 != 0) list.push_back(list.back());
        cells_[cell] = static_cast<uint32_t>((list.size() / 4 - 1) << kGroupShift) |
                       static_cast<uint32_t>(candidates_.size());
        candidates_.insert(candidates_.end(), list.begin(), list.end());
      }
    }
  }
}

}  // namespace dither::engine
