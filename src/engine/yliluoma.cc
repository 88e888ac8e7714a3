// Yliluoma's positional dithering for arbitrary palettes: his "algorithm 2" (from "Joel
// Yliluoma's arbitrary-palette positional dithering algorithm") with an 8x8 Bayer matrix.
//
// For each input colour a mixing plan of 64 palette entries is built greedily in the working
// space: starting from an empty mix, each step tries adding p copies (p = 1, 2, 4, ... up to the
// number already in the plan, at least 1) of each candidate colour and keeps the single choice
// whose mix mean is nearest the input (penalty = metric-weighted squared distance, in doubles; the
// first strictly smaller penalty wins, so ties go to the lower palette index, then the smaller p),
// until the plan holds 64 entries. The candidates are the 16 palette colours nearest the input
// (all of them for smaller palettes), which bounds the cost for big palettes. The plan is sorted
// by luma (299 R + 587 G + 114 B of the sRGB colour; ties by index), and pixel (x, y) takes entry
// rank', where rank is the Bayer 8x8 rank and strength s narrows the choice around the median:
// rank' = ((2 rank - 63) * lround(1024 s) + 65536) / 2048 (rank itself at s = 1, 32 at s = 0).
//
// Levels palettes are separable: mixing levels of one channel is what ordered dithering does, so
// they get Bayer 8x8 ordered dithering at the same strength.
//
// Plans depend only on the input colour; each thread keeps a direct-mapped cache of them, so the
// output never depends on the thread count.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/algorithms.h"
#include "engine/threshold_maps.h"

namespace dither::engine::detail {

namespace {

constexpr int kPlanSize = 64;
constexpr int kCandidates = 16;
constexpr int kCacheBits = 14;

using Plan = std::array<uint8_t, kPlanSize>;

class Planner {
 public:
  explicit Planner(const Quantizer& q) : q_(q) {
    for (size_t c = 0; c < 3; ++c) weights_[c] = static_cast<double>(q.weights()[c]);
    for (int i = 0; i < q.size(); ++i) {
      const Color col = q.color(i);
      luma_.push_back(299 * col.r + 587 * col.g + 114 * col.b);
    }
    for (size_t t = 1; t < inverse_.size(); ++t) inverse_[t] = 1.0 / static_cast<double>(t);
  }

  // The loops run p-major over candidate arrays so the penalties vectorise; each penalty is
  // computed with exactly the operations of the definition (sums of exact integers in doubles),
  // and the pick is the smallest penalty, then the earliest candidate, then the smallest p: the
  // same as trying candidates in index order and p in increasing order with a strict "<".
  void devise(const std::array<int32_t, 3>& target, Plan& plan) {
    choose_candidates(target);
    const size_t n = candidates_.size();
    for (size_t k = 0; k < n; ++k) {
      for (size_t c = 0; c < 3; ++c) cand_[c][k] = q_.working(candidates_[k])[c];
    }
    const double tr = target[0];
    const double tg = target[1];
    const double tb = target[2];
    std::array<double, 3> so_far{};
    int total = 0;
    int filled = 0;
    while (total < kPlanSize) {
      double least = std::numeric_limits<double>::infinity();
      size_t chosen = 0;
      int amount = 1;
      const int max_test = std::max(1, total);
      for (int p = 1; p <= max_test; p *= 2) {
        const double inv = inverse_[static_cast<size_t>(total + p)];
        const double dp = p;
        for (size_t k = 0; k < n; ++k) {
          const double dr = tr - (so_far[0] + dp * cand_[0][k]) * inv;
          const double dg = tg - (so_far[1] + dp * cand_[1][k]) * inv;
          const double db = tb - (so_far[2] + dp * cand_[2][k]) * inv;
          double penalty = weights_[0] * dr * dr;
          penalty += weights_[1] * dg * dg;
          penalty += weights_[2] * db * db;
          penalty_[k] = penalty;
        }
        for (size_t k = 0; k < n; ++k) {
          if (penalty_[k] < least || (penalty_[k] == least && k < chosen)) {
            least = penalty_[k];
            chosen = k;
            amount = p;
          }
        }
      }
      const int idx = candidates_[chosen];
      for (int k = 0; k < amount && filled < kPlanSize; ++k) {
        plan[static_cast<size_t>(filled++)] = static_cast<uint8_t>(idx);
      }
      for (size_t c = 0; c < 3; ++c) so_far[c] += amount * cand_[c][chosen];
      total += amount;
    }
    std::sort(plan.begin(), plan.end(), [this](uint8_t a, uint8_t b) {
      const int la = luma_[a];
      const int lb = luma_[b];
      return la != lb ? la < lb : a < b;
    });
  }

 private:
  void choose_candidates(const std::array<int32_t, 3>& target) {
    const int n = q_.size();
    candidates_.clear();
    if (n <= kCandidates) {
      for (int i = 0; i < n; ++i) candidates_.push_back(i);
      return;
    }
    by_distance_.clear();
    for (int i = 0; i < n; ++i) {
      by_distance_.emplace_back(q_.distance(target[0], target[1], target[2], i), i);
    }
    std::partial_sort(by_distance_.begin(), by_distance_.begin() + kCandidates, by_distance_.end());
    for (int k = 0; k < kCandidates; ++k)
      candidates_.push_back(by_distance_[static_cast<size_t>(k)].second);
    std::sort(candidates_.begin(), candidates_.end());
  }

  const Quantizer& q_;
  std::array<double, 3> weights_{};
  std::vector<int> luma_;
  std::array<double, 2 * kPlanSize + 1> inverse_{};  // total + p < 2 * kPlanSize
  std::vector<int> candidates_;
  std::array<std::array<double, kCandidates>, 3> cand_{};  // candidates' working values
  std::array<double, kCandidates> penalty_{};
  std::vector<std::pair<int64_t, int>> by_distance_;
};

// Plans keyed by the packed sRGB input colour, direct-mapped; one per thread.
class PlanCache {
 public:
  PlanCache() : keys_(size_t{1} << kCacheBits, kEmpty), plans_(size_t{1} << kCacheBits) {}

  const Plan& get(const uint8_t* rgb, const std::array<uint16_t, 256>& tw, Planner& planner) {
    const uint32_t key = (uint32_t{rgb[0]} << 16) | (uint32_t{rgb[1]} << 8) | rgb[2];
    const size_t slot = (key * 0x9e3779b1U) >> (32 - kCacheBits);
    if (keys_[slot] != key) {
      keys_[slot] = key;
      planner.devise({tw[rgb[0]], tw[rgb[1]], tw[rgb[2]]}, plans_[slot]);
    }
    return plans_[slot];
  }

 private:
  static constexpr uint32_t kEmpty = 0xffffffffU;  // no 24-bit key has it
  std::vector<uint32_t> keys_;
  std::vector<Plan> plans_;
};

}  // namespace

void yliluoma_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  if (q.is_levels()) {
    DitherOptions bayer = o;
    bayer.algorithm = Algorithm::kBayer;
    bayer.bayer_size = 8;
    ordered_dither(in, out, q, bayer);
    return;
  }
  const ThresholdMap map = bayer_map(8);
  const int s = static_cast<int>(std::lround(o.strength * 1024.0));
  std::array<uint8_t, kPlanSize> slot_of_rank{};
  for (int r = 0; r < kPlanSize; ++r) {
    slot_of_rank[static_cast<size_t>(r)] = static_cast<uint8_t>(((2 * r - 63) * s + 65536) / 2048);
  }
  const auto& tw = q.to_working();
  const size_t channels = static_cast<size_t>(in.channels);
  for_row_bands(in.height, resolve_threads(o.threads), [&](int y0, int y1) {
    Planner planner(q);
    PlanCache cache;
    for (int y = y0; y < y1; ++y) {
      const uint8_t* p = in.row(y);
      uint8_t* d = out.row(y);
      for (int x = 0; x < in.width; ++x, p += channels, d += channels) {
        const Plan& plan = cache.get(p, tw, planner);
        const Color c = q.color(plan[slot_of_rank[static_cast<size_t>(map.rank(x, y))]]);
        d[0] = c.r;
        d[1] = c.g;
        d[2] = c.b;
      }
    }
  });
}

}  // namespace dither::engine::detail
