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
// Plans depend only on the input colour; each thread keeps a cache of them, so the output never
// depends on the thread count. The search for a plan is pruned and estimated (see Planner) but
// makes exactly the definition's choices; src/engine/testing/reference_others.cc is the plain
// version.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <tuple>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/algorithms.h"
#include "engine/threshold_maps.h"

namespace dither::engine::detail {

namespace {

constexpr int kPlanSize = 64;
constexpr int kCandidates = 16;
constexpr size_t kPairs = kCandidates / 2;
constexpr int kCacheBits = 14;

using Plan = std::array<uint8_t, kPlanSize>;
using V2 = double __attribute__((vector_size(16)));
using M2 = int64_t __attribute__((vector_size(16)));  // a comparison of two V2: 0 or -1 per lane

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// One value per candidate, stored as SSE2 pairs so the per-step loops are explicit vector code.
struct Lanes {
  std::array<V2, kPairs> pair{};
  double operator[](size_t k) const { return pair[k / 2][k % 2]; }
  void set(size_t k, double v) { pair[k / 2][k % 2] = v; }
};

V2 min2(V2 x, V2 y) { return y < x ? y : x; }

// Bit i set when lane i of v is at most bound.
unsigned at_most(V2 v, V2 bound) {
#if defined(__SSE2__)
  return static_cast<unsigned>(_mm_movemask_pd(std::bit_cast<__m128d>(v <= bound)));
#else
  return (v[0] <= bound[0] ? 1u : 0u) | (v[1] <= bound[1] ? 2u : 0u);
#endif
}

// Builds mixing plans; one per thread. The greedy search is the documented one, made fast
// without changing a single choice. With e = N T - S (the integer error so far), u = T - c and
// the metric's inner product:
//  - The penalty of adding p copies of candidate c is |e + p u|^2 / (N + p)^2, which expands to
//    (a + 2p b + p^2 g) / (N + p)^2 with a = |e|^2, b = <e, u> and g = |u|^2. b and g are exact
//    integers in doubles (below 2^53 for the working range and the weights supports() allows),
//    so for p = 1 the candidates compare exactly by q = 2b + g; and since e is a sum of chosen
//    u, b is kept up to date by adding rows of the candidates' Gram matrix <u_i, u_j>, computed
//    on first use. The other penalties are estimated from a, b and g in a few operations.
//  - p >= 2 only pays for candidates near T: by the triangle inequality its penalty is at least
//    ((2 |u| - |e|) / (N + 2))^2, so with the candidates' lanes in increasing |u| order the
//    others are cut off at once. And the derivative of the penalty in p has the sign of
//    L(p) = b N - a + p (g N - b), linear in p: when L(2) > 0 and g N - b >= 0 the penalty only
//    grows from p = 2 on, and p = 2 stands for all of them.
//  - The estimates and the definition's doubles both lie within a few rounding errors of the
//    exact penalty, whose terms are bounded by the working range; `margin_` is far wider. So
//    every choice whose estimate exceeds the least by more than the margin has a strictly larger
//    penalty as the definition computes it than the definition's winner. The choices left
//    (almost always one) are evaluated exactly as the definition does and picked by its rule:
//    the smallest penalty, then the earliest candidate, then the smallest p.
class Planner {
 public:
  explicit Planner(const Quantizer& q) : q_(q) {
    for (size_t c = 0; c < 3; ++c) weights_[c] = static_cast<double>(q.weights()[c]);
    // Both the estimates and the definition's doubles are within 2^-47 of the exact penalty,
    // relative to the largest possible penalty (the weights' sum times 65535^2).
    margin_ = (weights_[0] + weights_[1] + weights_[2]) * 65535.0 * 65535.0 * 0x1p-40;
    std::vector<int> order(static_cast<size_t>(q.size()));
    for (int i = 0; i < q.size(); ++i) order[static_cast<size_t>(i)] = i;
    auto luma = [&q](int i) {
      const Color col = q.color(i);
      return 299 * col.r + 587 * col.g + 114 * col.b;
    };
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return luma(a) < luma(b); });
    luma_rank_.resize(order.size());
    for (size_t r = 0; r < order.size(); ++r) luma_rank_[static_cast<size_t>(order[r])] = r;
    for (int i = 0; i < q.size(); ++i) {
      for (size_t c = 0; c < 3; ++c) palette_[c].push_back(q.working(i)[c]);
    }
    distance_.resize(palette_[0].size());
    near_.resize(palette_[0].size());
    for (size_t t = 1; t < inverse_.size(); ++t) {
      const auto square = static_cast<double>(t * t);
      inverse_[t] = 1.0 / static_cast<double>(t);
      inverse_square_[t] = 1.0 / square;
      scaled_margin_[t] = margin_ * square;
    }
  }

  // Whether the metric's weights keep b, g and q exact (see the class comment): |q| is at most
  // the weights' sum times (2 * 63 + 1) * 65535^2, which must stay below 2^53.
  static bool supports(const Quantizer& q) {
    const auto& w = q.weights();
    return w[0] > 0 && w[1] > 0 && w[2] > 0 && w[0] + w[1] + w[2] <= 16000;
  }

  void devise(const std::array<int32_t, 3>& target, Plan& plan) {
    choose_candidates(target);
    prepare(target);
    int total = 0;
    int filled = 0;
    while (total < kPlanSize) {
      const Choice pick = choose(total);
      add(pick);
      const int copies = std::min(pick.p, kPlanSize - filled);
      counts_[static_cast<size_t>(pick.k)] += copies;
      filled += copies;
      total += pick.p;
    }
    emit(plan);
  }

 private:
  struct Choice {
    int k = 0;  // lane
    int p = 1;  // copies
  };

  // fn(i) for the pairs of lanes in use: a loop of constant length (unrolled) for 16 candidates.
  template <class Fn>
  void for_pairs(const Fn& fn) const {
    if (pairs_ == kPairs) {
      for (size_t i = 0; i < kPairs; ++i) fn(i);
    } else {
      for (size_t i = 0; i < pairs_; ++i) fn(i);
    }
  }

  // One greedy step with `total` entries so far.
  Choice choose(int total) {
    const auto [q_least, close, first] = singles(total);
    a_ = weights_[0] * e_[0] * e_[0] + weights_[1] * e_[1] * e_[1] + weights_[2] * e_[2] * e_[2];
    const double least_single = (a_ + q_least) * inverse_square_[static_cast<size_t>(total + 1)];
    const double least_multiple = total >= 2 ? least_multiples(total, least_single) : kInfinity;
    // One p = 1 choice within the margin of the least, and every p >= 2 estimate (or what stands
    // for it) more than two margins beyond: that one is the definition's pick.
    if (close == 1 && least_multiple > least_single + 2.0 * margin_) {
      return {static_cast<int>(first), 1};
    }
    return settle(total, std::min(least_single, least_multiple) + margin_);
  }

  // For p = 1 (q = 2b + g, kept by add()): the least q, how many lanes are within the margin of
  // it, and the first of them. Loops of the same length all plan long and no other branches:
  // nothing to mispredict on this step's critical path. (Unused lanes have q = infinity.)
  std::tuple<double, int, int> singles(int total) const {
    const auto& q = twice_b_plus_g_.pair;
    V2 least = q[0];
    if (pairs_ == kPairs) {  // a tree: a running minimum would be a long dependency chain
      std::array<V2, kPairs / 2> m;
      for (size_t i = 0; i < kPairs / 2; ++i) m[i] = min2(q[i], q[i + kPairs / 2]);
      least = min2(min2(m[0], m[2]), min2(m[1], m[3]));
    } else {
      for (size_t i = 1; i < pairs_; ++i) least = min2(least, q[i]);
    }
    const double q_least = std::min(least[0], least[1]);
    const V2 slack = V2{} + (q_least + scaled_margin_[static_cast<size_t>(total + 1)]);
    unsigned close = 0;  // bit k: lane k within the margin
    for_pairs([&](size_t i) { close |= at_most(q[i], slack) << (2 * i); });
    return {q_least, std::popcount(close), std::countr_zero(close)};
  }

  // The pairs of lanes [0, near_pairs()) hold every candidate that may win with p >= 2: the
  // others have 2 |u| - |e| > (N + 2) sqrt(least_single + margin) (lanes are in increasing |u|
  // order; the slack factor covers the square roots' rounding).
  size_t near_pairs(int total, double least_single) const {
    if (pairs_ <= 2) return pairs_;  // not worth two square roots
    const double reach =
        ((total + 2) * std::sqrt(least_single + margin_) + std::sqrt(a_)) * (1.0 + 0x1p-30);
    size_t i = 0;
    while (i < pairs_ && 2.0 * norm_[2 * i] <= reach) ++i;
    return i;
  }

  // The least p >= 2 estimate in the pairs near_pairs() keeps, where a lane whose penalty grows
  // with p from p = 2 on counts only its p = 2 estimate (the least up to rounding). g N - b is
  // exact, and L(2) is within 2^-40 (a + g) (3 N + 3) of its computed value.
  double least_multiples(int total, double least_single) const {
    const size_t pairs = near_pairs(total, least_single);
    const double a = a_;
    const double n = total;
    const double rounding_factor = (3.0 * n + 3.0) * 0x1p-40;
    const V2 infinity = V2{} + kInfinity;
    V2 least = infinity;
    for (size_t i = 0; i < pairs; ++i) {
      const V2 b = b_.pair[i];
      const V2 g = g_.pair[i];
      const V2 slope = g * n - b;
      // (Unused lanes, g = infinity, count as rising: their estimates are infinite anyway.)
      const M2 rising = ((slope >= 0.0) & ((b * n - a) + 2.0 * slope > (a + g) * rounding_factor)) |
                        (g == infinity);
      V2 best = estimates(b, g, 2, total);
      if (!(rising[0] && rising[1])) {
        V2 more = infinity;
        for (int p = 4; p <= total; p *= 2) more = min2(more, estimates(b, g, p, total));
        best = min2(best, rising ? infinity : more);
      }
      least = min2(least, best);
    }
    return std::min(least[0], least[1]);
  }

  // The estimates of the penalty for p copies: (a + 2p b + p^2 g) / (N + p)^2.
  V2 estimates(V2 b, V2 g, int p, int total) const {
    const double dp = p;
    return (a_ + dp * (2.0 * b + dp * g)) * inverse_square_[static_cast<size_t>(total + p)];
  }

  // The definition's pick among all choices whose estimate is at most `bound`: the smallest
  // penalty as the definition computes it, then the earliest candidate, then the smallest p.
  Choice settle(int total, double bound) {
    size_t close = 0;
    const double inv = inverse_square_[static_cast<size_t>(total + 1)];
    for (size_t k = 0; k < n_; ++k) {
      if ((a_ + twice_b_plus_g_[k]) * inv <= bound) close_[close++] = {static_cast<int>(k), 1};
    }
    const size_t near = total >= 2 ? 2 * near_pairs(total, bound - margin_) : 0;
    for (size_t k = 0; k < std::min(near, n_); ++k) {
      const V2 b = V2{} + b_[k];
      const V2 g = V2{} + g_[k];
      for (int p = 2; p <= total; p *= 2) {
        if (estimates(b, g, p, total)[0] <= bound) close_[close++] = {static_cast<int>(k), p};
      }
    }
    Choice best = close_[0];
    double least = kInfinity;
    for (size_t i = 0; i < close; ++i) {
      const Choice& c = close_[i];
      const double penalty = exact_penalty(c, total);
      const int index = candidates_[static_cast<size_t>(c.k)];
      const int best_index = candidates_[static_cast<size_t>(best.k)];
      if (penalty < least ||
          (penalty == least && (index < best_index || (index == best_index && c.p < best.p)))) {
        least = penalty;
        best = c;
      }
    }
    return best;
  }

  // The penalty exactly as the definition computes it (sums of exact integers in doubles).
  double exact_penalty(Choice c, int total) const {
    const auto k = static_cast<size_t>(c.k);
    const double inv = inverse_[static_cast<size_t>(total + c.p)];
    const double dp = c.p;
    // S = N T - e: exact integers, as in the definition's running sums.
    const double n = total;
    const double dr = target_[0] - ((n * target_[0] - e_[0]) + dp * cand_[0][k]) * inv;
    const double dg = target_[1] - ((n * target_[1] - e_[1]) + dp * cand_[1][k]) * inv;
    const double db = target_[2] - ((n * target_[2] - e_[2]) + dp * cand_[2][k]) * inv;
    double penalty = weights_[0] * dr * dr;
    penalty += weights_[1] * dg * dg;
    penalty += weights_[2] * db * db;
    return penalty;
  }

  // Adds p copies of lane k: e += p u, b += p <u, u_j> for every lane j (exact), and q = 2b + g
  // for the next step.
  void add(Choice pick) {
    const auto k = static_cast<size_t>(pick.k);
    if ((gram_done_ & (1u << k)) == 0) gram_row(k);
    const double dp = pick.p;
    for_pairs([&](size_t i) {  // unused pairs keep b = 0 and q = infinity
      const V2 b = b_.pair[i] + dp * gram_[k].pair[i];
      b_.pair[i] = b;
      twice_b_plus_g_.pair[i] = 2.0 * b + g_.pair[i];
    });
    for (size_t c = 0; c < 3; ++c) e_[c] += dp * u_[c][k];
  }

  // Row k of the Gram matrix, <u_k, u_j> for every lane j (exact: below 2^53).
  void gram_row(size_t k) {
    const double x0 = weights_[0] * u_[0][k];
    const double x1 = weights_[1] * u_[1][k];
    const double x2 = weights_[2] * u_[2][k];
    for_pairs([&](size_t i) {
      gram_[k].pair[i] = x0 * u_[0].pair[i] + x1 * u_[1].pair[i] + x2 * u_[2].pair[i];
    });
    gram_done_ |= 1u << k;
  }

  // The 16 colours nearest the target (ties to the lower index) in index order; all colours of
  // smaller palettes. Distances are exact integers in doubles (below 2^53). Only the colours
  // within a reach are ranked: any reach that holds 16 colours holds the 16 nearest. The 16
  // nearest to the previous plan's target T' lie within r16' + |T - T'| of T (r16': the root
  // of their largest distance), which is usually a few more than 16.
  void choose_candidates(const std::array<int32_t, 3>& target) {
    const size_t n = palette_[0].size();
    candidates_.clear();
    if (n <= kCandidates) {
      for (size_t i = 0; i < n; ++i) candidates_.push_back(static_cast<int>(i));
      return;
    }
    const std::array<double, 3> t = {static_cast<double>(target[0]), static_cast<double>(target[1]),
                                     static_cast<double>(target[2])};
    for (size_t i = 0; i < n; ++i) {
      const double d0 = t[0] - palette_[0][i];
      const double d1 = t[1] - palette_[1][i];
      const double d2 = t[2] - palette_[2][i];
      distance_[i] = weights_[0] * d0 * d0 + weights_[1] * d1 * d1 + weights_[2] * d2 * d2;
    }
    double reach = kInfinity;
    if (previous_16th_ >= 0.0) {
      double moved = 0.0;
      for (size_t c = 0; c < 3; ++c) {
        moved += weights_[c] * (t[c] - previous_target_[c]) * (t[c] - previous_target_[c]);
      }
      reach = (std::sqrt(previous_16th_) + std::sqrt(moved)) * (1.0 + 0x1p-30);
      reach = reach * reach;
    }
    size_t near = 0;
    for (size_t i = 0; i < n; ++i) {
      near_[near] = static_cast<int>(i);
      near += distance_[i] <= reach ? 1 : 0;
    }
    if (near < kCandidates) {  // not with the reach above, but then rank them all
      for (size_t i = 0; i < n; ++i) near_[i] = static_cast<int>(i);
      near = n;
    }
    ranked_.assign(near_.begin(), near_.begin() + static_cast<std::ptrdiff_t>(near));
    auto closer = [this](int a, int b) {
      const double da = distance_[static_cast<size_t>(a)];
      const double db = distance_[static_cast<size_t>(b)];
      return da != db ? da < db : a < b;
    };
    std::nth_element(ranked_.begin(), ranked_.begin() + (kCandidates - 1), ranked_.end(), closer);
    const int last = ranked_[kCandidates - 1];
    for (size_t j = 0; j < near; ++j) {
      if (!closer(last, near_[j])) candidates_.push_back(near_[j]);
    }
    previous_target_ = t;
    previous_16th_ = distance_[static_cast<size_t>(last)];
  }

  // The per-plan values of the candidates, one lane each in increasing |u| order: palette index,
  // working values, u = T - c, g = |u|^2 and |u|; and the plan's starting state.
  void prepare(const std::array<int32_t, 3>& target) {
    n_ = candidates_.size();
    pairs_ = (n_ + 1) / 2;
    for (size_t c = 0; c < 3; ++c) target_[c] = target[c];
    std::array<int, kCandidates> index{};
    Lanes g_by_index;
    for (size_t k = 0; k < kCandidates; ++k) {
      double g = kInfinity;  // unused lanes: u = 0 and g = infinity, so they never win
      if (k < n_) {
        index[k] = candidates_[k];
        g = 0.0;
        for (size_t c = 0; c < 3; ++c) {
          const double u = target_[c] - q_.working(index[k])[c];
          g += weights_[c] * u * u;  // exact: below 2^53
        }
      }
      g_by_index.set(k, g);
    }
    for (size_t k = 0; k < kCandidates; ++k) {
      // Unused lanes (g = infinity, after all others) keep their place.
      const size_t lane = k < n_ ? lane_by_norm(g_by_index, k) : k;
      const double g = g_by_index[k];
      g_.set(lane, g);
      norm_[lane] = std::sqrt(g);
      for (size_t c = 0; c < 3; ++c) u_[c].set(lane, 0.0);
      if (k < n_) {
        candidates_[lane] = index[k];
        for (size_t c = 0; c < 3; ++c) {
          cand_[c][lane] = q_.working(index[k])[c];
          u_[c].set(lane, target_[c] - cand_[c][lane]);
        }
      }
    }
    b_ = Lanes{};
    twice_b_plus_g_ = g_;
    e_ = {0.0, 0.0, 0.0};
    counts_.fill(0);
    gram_done_ = 0;
  }

  // Lane k's place when the lanes are ordered by g, ties by lane: the number of lanes before it,
  // counted without branches (a sort mispredicts about every other comparison).
  size_t lane_by_norm(const Lanes& g, size_t k) const {
    const V2 gk = V2{} + g[k];
    const auto kk = static_cast<int64_t>(k);
    M2 before{};
    for (size_t i = 0; i < pairs_; ++i) {
      const auto lane = static_cast<int64_t>(2 * i);
      const M2 lanes{lane, lane + 1};
      before -= (g.pair[i] < gk) | ((g.pair[i] == gk) & (lanes < kk));
    }
    return static_cast<size_t>(before[0] + before[1]);
  }

  // The plan from counts_, sorted by luma (ties by index).
  void emit(Plan& plan) const {
    std::array<std::pair<size_t, size_t>, kCandidates> used{};  // (luma rank, lane)
    size_t n = 0;
    for (size_t k = 0; k < n_; ++k) {
      if (counts_[k] > 0) used[n++] = {luma_rank_[static_cast<size_t>(candidates_[k])], k};
    }
    std::sort(used.begin(), used.begin() + static_cast<std::ptrdiff_t>(n));
    auto out = plan.begin();
    for (size_t i = 0; i < n; ++i) {
      const size_t k = used[i].second;
      out = std::fill_n(out, counts_[k], static_cast<uint8_t>(candidates_[k]));
    }
  }

  const Quantizer& q_;
  std::array<double, 3> weights_{};
  double margin_ = 0.0;
  std::vector<size_t> luma_rank_;  // palette index -> position in (luma, index) order
  // Indexed by N + p < 2 * kPlanSize: 1 / (N + p), 1 / (N + p)^2, margin * (N + p)^2.
  std::array<double, 2 * kPlanSize> inverse_{};
  std::array<double, 2 * kPlanSize> inverse_square_{};
  std::array<double, 2 * kPlanSize> scaled_margin_{};
  std::vector<int> candidates_;  // palette indices: by index, then by lane once prepared
  // Candidate search in palettes of more than 16 colours: working values by channel, distances
  // to the target, the colours within reach (in index order, then ranked), and the previous
  // target and 16th distance (negative: none yet).
  std::array<std::vector<double>, 3> palette_;
  std::vector<double> distance_;
  std::vector<int> near_;
  std::vector<int> ranked_;
  std::array<double, 3> previous_target_{};
  double previous_16th_ = -1.0;
  size_t n_ = 0;
  size_t pairs_ = 0;  // pairs of lanes in use
  // Per plan, by lane: the target, the candidates' working values, u = T - c, g = |u|^2, |u|, and
  // the rows of the Gram matrix computed so far.
  std::array<double, 3> target_{};
  std::array<std::array<double, kCandidates>, 3> cand_{};
  std::array<Lanes, 3> u_{};
  Lanes g_{};
  std::array<double, kCandidates> norm_{};
  std::array<Lanes, kCandidates> gram_{};
  uint32_t gram_done_ = 0;
  // The state: e = N T - S, a = |e|^2 (set by choose()), b = <e, u>, q = 2b + g for this step,
  // the counts of each lane in the plan; and the choices left to settle.
  std::array<double, 3> e_{};
  double a_ = 0.0;
  Lanes b_{};
  Lanes twice_b_plus_g_{};
  std::array<int, kCandidates> counts_{};
  std::array<Choice, kCandidates * 7> close_{};
};

// Plans keyed by the packed sRGB input colour; one per thread. Four-way set-associative with
// least-recently-used replacement: on a photo nearly as few plans are devised as there are
// colours (direct-mapped, a third more).
class PlanCache {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffU;  // no 24-bit key has it

  PlanCache()
      : keys_(size_t{1} << kCacheBits, kEmpty),
        order_(size_t{1} << (kCacheBits - kWayBits), kFirstOrder),
        plans_(size_t{1} << kCacheBits) {}

  static uint32_t key_of(const uint8_t* rgb) {
    return (uint32_t{rgb[0]} << 16) | (uint32_t{rgb[1]} << 8) | rgb[2];
  }

  const Plan& get(uint32_t key, const std::array<uint16_t, 256>& tw, Planner& planner) {
    const size_t set = (key * 0x9e3779b1U) >> (32 - (kCacheBits - kWayBits));
    uint32_t* keys = &keys_[set << kWayBits];
    unsigned way = 0;
    while (way < kWays && keys[way] != key) ++way;
    uint8_t& order = order_[set];
    if (way == kWays) {
      way = order >> 6;  // the least recently used
      keys[way] = key;
      planner.devise({tw[key >> 16], tw[(key >> 8) & 0xff], tw[key & 0xff]},
                     plans_[(set << kWayBits) + way]);
    }
    order = touched(order, way);
    return plans_[(set << kWayBits) + way];
  }

 private:
  static constexpr int kWayBits = 2;
  static constexpr unsigned kWays = 1u << kWayBits;
  // A set's ways from most to least recently used, two bits each from the low end.
  static constexpr uint8_t kFirstOrder = 0 | 1 << 2 | 2 << 4 | 3 << 6;

  // `order` with `way` moved to the front.
  static uint8_t touched(uint8_t order, unsigned way) {
    unsigned out = way;
    unsigned shift = 2;
    for (unsigned i = 0; i < kWays; ++i) {
      const unsigned w = (order >> (2 * i)) & 3;
      if (w != way) {
        out |= w << shift;
        shift += 2;
      }
    }
    return static_cast<uint8_t>(out);
  }

  std::vector<uint32_t> keys_;  // by set, then way
  std::vector<uint8_t> order_;  // by set
  std::vector<Plan> plans_;     // by set, then way
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
  if (!Planner::supports(q)) throw std::logic_error("yliluoma: metric weights out of range");
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
      std::array<uint8_t, 8> slot{};  // plan entry by x mod 8 (the map is 8 wide)
      for (int x = 0; x < 8; ++x) {
        slot[static_cast<size_t>(x)] = slot_of_rank[static_cast<size_t>(map.rank(x, y))];
      }
      const Plan* plan = nullptr;
      uint32_t key = PlanCache::kEmpty;
      for (int x = 0; x < in.width; ++x, p += channels, d += channels) {
        // Neighbours often share a colour: the previous plan needs no look-up.
        const uint32_t next = PlanCache::key_of(p);
        if (next != key) {
          key = next;
          plan = &cache.get(key, tw, planner);
        }
        const Color c = q.color((*plan)[slot[static_cast<size_t>(x & 7)]]);
        d[0] = c.r;
        d[1] = c.g;
        d[2] = c.b;
      }
    }
  });
}

}  // namespace dither::engine::detail
