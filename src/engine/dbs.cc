// Direct binary search (M. Analoui and J. P. Allebach, "Model-based halftoning using direct binary
// search", Proc. SPIE 1666, 1992), for any palette, with toggles (another palette colour) and
// swaps (with a neighbour).
//
// The perceived error of an output is E = sum_c w_c sum_m e_c(m)^2 + lambda sum_c w_c sum_p
// d_c(p)^2, where d = output - source per channel (working values >> 2, and 0 where alpha is 0),
// e = h * d (h the 7x7 filter g x g, g = 1 2 4 5 4 2 1, a Gaussian of sigma ~1.5 px; over the
// whole plane, d being 0 outside the image), w_c the metric's weights and lambda the pull towards
// the plain nearest colour that `strength` < 1 adds. Starting from Floyd-Steinberg, pixels are
// visited in raster order and each makes the one change that lowers E most, if any does: take
// another palette colour, or swap colours with one of its 8 neighbours (swaps keep the local
// mean, so they refine texture where every toggle would upset the tone). Passes repeat until one
// changes nothing, at most kMaxPasses. Levels palettes separate by channel, so each channel makes
// its own choice.
//
// The update trick of D. J. Lieberman and J. P. Allebach ("Efficient model based halftoning using
// direct binary search", Proc. ICIP 1997): with c the autocorrelation of h and A_c(p) = sum_n c(n -
// p) d_c(n) kept for every pixel, changing d_c(p) by D changes E by w_c D (2 (A_c(p) + lambda
// d_c(p)) + D (c(0) + lambda)) (a swap adds the two pixels' terms and -2 D^2 c(q - p)): a handful
// of multiplications per tried change, and an accepted one adds c * D to A in the 13x13 window
// around each changed pixel. All integers, so the plain reference (which filters the window
// directly) makes the same decisions. docs/ENGINE-ORDERED.md, "Direct binary
// search", has the exact rules and the overflow bounds.
//
// Exact shortcut: a pixel with no change within 7 pixels since it was last tried (and kept its
// colour) would keep it again, so it is skipped (changes tracked per 8x8 block).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "engine/algorithms.h"

namespace dither::engine::detail {

namespace {

constexpr int kMaxPasses = 8;
constexpr int kShift = 2;  // working values >> 2: 0..16383
constexpr int kReach = 6;  // the autocorrelation of a 7x7 filter is 13x13
constexpr int kSpan = 2 * kReach + 1;
constexpr std::array<int32_t, 7> kTaps = {1, 2, 4, 5, 4, 2, 1};
constexpr int kBlockBits = 3;  // change tracking in 8x8 blocks

// The 1-D autocorrelation of kTaps, offsets -6..6; the 2-D one is r[dx] * r[dy].
constexpr std::array<int32_t, kSpan> autocorrelation() {
  std::array<int32_t, kSpan> r{};
  for (int k = -kReach; k <= kReach; ++k) {
    for (int i = 0; i < 7; ++i) {
      if (i + k >= 0 && i + k < 7) r[size_t(k + kReach)] += kTaps[size_t(i)] * kTaps[size_t(i + k)];
    }
  }
  return r;
}
constexpr std::array<int32_t, kSpan> kAuto = autocorrelation();
constexpr int64_t kCentre = int64_t{kAuto[kReach]} * kAuto[kReach];  // sum of h^2 = 4489

// Swap partners, in the order they are tried, and c at their offsets.
constexpr std::array<std::array<int, 2>, 8> kNeighbours = {
    {{-1, -1}, {0, -1}, {1, -1}, {-1, 0}, {1, 0}, {-1, 1}, {0, 1}, {1, 1}}};
constexpr std::array<int64_t, 8> neighbour_autocorrelation() {
  std::array<int64_t, 8> c{};
  for (size_t n = 0; n < 8; ++n) {
    c[n] = int64_t{kAuto[size_t(kReach + kNeighbours[n][0])]} *
           kAuto[size_t(kReach + kNeighbours[n][1])];
  }
  return c;
}
constexpr std::array<int64_t, 8> kNeighbourAuto = neighbour_autocorrelation();

// Overflow bounds (docs/ENGINE-ORDERED.md): values and |d| are at most V = 16383 and sum c =
// (sum g)^4 = 130321, so |A| <= 2,135,048,943 < 2^31: A fits int32. lambda <= 64 * 4489, so
// k <= 291,785 and |b| = 2 |A + lambda d| <= 1.37e10; one channel of one pixel changes E by at
// most V (1.37e10 + V k) = 3.03e14 times its weight, and the weights sum to at most 10000: a
// toggle stays within 3.03e18, a swap within 6.08e18, the expanded toggle terms (norm_ + sum p g
// <= 4.6e18, base <= 3.03e18) too, all below 2^63 = 9.22e18.
static_assert(int64_t{16383} * 361 * 361 < (int64_t{1} << 31));

int64_t lambda_for(double strength) {
  if (strength >= 1.0) return 0;
  const double l = static_cast<double>(kCentre) * (1.0 - strength) / strength;
  return std::min<int64_t>(std::lround(l), 64 * kCentre);
}

class Search {
 public:
  Search(const Image& in, Image& out, const Quantizer& q, double strength)
      : in_(in),
        out_(out),
        q_(q),
        w_(in.width),
        h_(in.height),
        stride_(in.width + 2 * kReach),
        lambda_(lambda_for(strength)),
        k_(kCentre + lambda_),
        weights_(q.weights()) {
    const auto& tw = q.to_working();
    if (q.is_levels()) {
      for (int i = 0; i < q.levels(); ++i) level_u_.push_back(tw[q.level_output(i)] >> kShift);
    } else {
      for (int i = 0; i < q.size(); ++i) {
        const Color c = q.color(i);
        colour_u_.push_back({tw[c.r] >> kShift, tw[c.g] >> kShift, tw[c.b] >> kShift});
        int64_t norm = 0;
        for (size_t ch = 0; ch < 3; ++ch) {
          norm += weights_[ch] * k_ * colour_u_.back()[ch] * colour_u_.back()[ch];
        }
        norm_.push_back(norm);
      }
    }
    for (int dy = 0; dy < kSpan; ++dy) {
      for (int i = 0; i < 3 * kSpan; ++i) {
        auto_rows_[size_t(dy)][size_t(i)] = kAuto[size_t(dy)] * kAuto[size_t(i / 3)];
      }
    }
    start();
  }

  // Runs passes until one changes nothing or kMaxPasses are done.
  void run() {
    for (int pass = 0; pass < kMaxPasses; ++pass) {
      if (run_pass() == 0) break;
    }
  }

 private:
  size_t pixel(int x, int y) const { return size_t(y) * size_t(w_) + size_t(x); }
  int32_t* a_at(int x, int y) {
    return a_.data() + 3 * (size_t(y + kReach) * size_t(stride_) + size_t(x + kReach));
  }
  bool counts(int x, int y) const { return in_.channels != 4 || in_.at(x, y)[3] != 0; }

  // Values and d from the initial halftone, then A = (r x r) correlated with d, separably.
  void start() {
    const auto& tw = q_.to_working();
    d_.assign(3 * pixel(0, h_), 0);
    value_.resize(d_.size());
    for (int y = 0; y < h_; ++y) {
      for (int x = 0; x < w_; ++x) {
        const uint8_t* s = in_.at(x, y);
        const uint8_t* o = out_.at(x, y);
        for (size_t c = 0; c < 3; ++c) {
          const size_t i = 3 * pixel(x, y) + c;
          value_[i] = int16_t(tw[o[c]] >> kShift);
          if (counts(x, y)) d_[i] = int16_t(value_[i] - (tw[s[c]] >> kShift));
        }
      }
    }
    // Rows of d correlated with r across, |value| <= 361 * 16383, in a ring of the kSpan rows
    // the vertical pass needs.
    std::vector<int32_t> across(size_t(kSpan) * 3 * size_t(w_));
    auto across_row = [&](int y) { return across.data() + size_t(y % kSpan) * 3 * size_t(w_); };
    a_.assign(3 * size_t(stride_) * size_t(h_ + 2 * kReach), 0);
    for (int y = -kReach; y < h_; ++y) {
      if (y + kReach < h_) fill_across(y + kReach, across_row(y + kReach));
      if (y < 0) continue;
      for (int k = -kReach; k <= kReach; ++k) {
        if (y + k < 0 || y + k >= h_) continue;
        const int32_t r = kAuto[size_t(k + kReach)];
        const int32_t* src = across_row(y + k);
        int32_t* dst = a_at(0, y);
        for (size_t i = 0; i < 3 * size_t(w_); ++i) dst[i] += r * src[i];
      }
    }
    blocks_w_ = ((w_ - 1) >> kBlockBits) + 1;
    restart_clock();
  }

  void fill_across(int y, int32_t* row) const {
    std::fill_n(row, 3 * size_t(w_), 0);
    for (int x = 0; x < w_; ++x) {
      for (int k = std::max(-kReach, -x); k <= kReach && x + k < w_; ++k) {
        for (size_t c = 0; c < 3; ++c) {
          row[3 * size_t(x) + c] += kAuto[size_t(k + kReach)] * d_[3 * pixel(x + k, y) + c];
        }
      }
    }
  }

  // Everything counts as changed: every pixel is tried again.
  void restart_clock() {
    clock_ = 1;
    tried_.assign(pixel(0, h_), 0);
    changed_.assign(size_t(blocks_w_) * size_t(((h_ - 1) >> kBlockBits) + 1), 1);
  }

  int run_pass() {
    // The clock ticks once a pixel; rather than let it wrap within a pass, start afresh.
    if (clock_ > std::numeric_limits<uint32_t>::max() - pixel(0, h_)) restart_clock();
    int changes = 0;
    for (int y = 0; y < h_; ++y) {
      for (int x = 0; x < w_; ++x) {
        ++clock_;
        if (!counts(x, y) || settled(x, y)) continue;
        tried_[pixel(x, y)] = clock_;
        if (q_.is_levels() ? improve_levels(x, y) : improve_colour(x, y)) ++changes;
      }
    }
    return changes;
  }

  // True when nothing that (x, y)'s choice depends on changed since it was last tried (and
  // kept): d within 1 pixel, A (its own and its neighbours') and so d within kReach + 1.
  bool settled(int x, int y) const {
    const uint32_t tried = tried_[pixel(x, y)];
    const int bx0 = std::max(0, x - kReach - 1) >> kBlockBits;
    const int bx1 = std::min(w_ - 1, x + kReach + 1) >> kBlockBits;
    const int by0 = std::max(0, y - kReach - 1) >> kBlockBits;
    const int by1 = std::min(h_ - 1, y + kReach + 1) >> kBlockBits;
    for (int by = by0; by <= by1; ++by) {
      for (int bx = bx0; bx <= bx1; ++bx) {
        if (changed_[size_t(by) * size_t(blocks_w_) + size_t(bx)] >= tried) return false;
      }
    }
    return true;
  }

  // What a visit to (x, y) needs of the pixel (index 8) and its neighbours (0..7, as
  // kNeighbours): whether each can take part, its value (working >> 2) and b = 2 (A + lambda d)
  // per channel. Changing a pixel by D changes E by w D (b + D k), k = c(0) + lambda.
  struct Around {
    std::array<bool, 9> in{};
    std::array<std::array<int32_t, 3>, 9> value{};
    std::array<std::array<int64_t, 3>, 9> b{};
  };

  void gather(int x, int y, Around& around) {
    for (size_t n = 0; n < 9; ++n) {
      const int nx = n < 8 ? x + kNeighbours[n][0] : x;
      const int ny = n < 8 ? y + kNeighbours[n][1] : y;
      around.in[n] = nx >= 0 && ny >= 0 && nx < w_ && ny < h_ && counts(nx, ny);
      if (!around.in[n]) continue;
      const int32_t* a = a_at(nx, ny);
      const size_t i = 3 * pixel(nx, ny);
      for (size_t c = 0; c < 3; ++c) {
        around.value[n][c] = value_[i + c];
        around.b[n][c] = 2 * (a[c] + lambda_ * d_[i + c]);
      }
    }
  }

  // Channel c of the pixel takes its value + dp and neighbour n takes the pixel's: the change
  // of E.
  int64_t swap_change(const Around& around, size_t c, int64_t dp, size_t n) const {
    const int64_t bp = around.b[8][c];
    const int64_t bq = around.b[n][c];
    return weights_[c] *
           (dp * (bp + dp * k_) - dp * (bq - dp * k_) - 2 * dp * dp * kNeighbourAuto[n]);
  }

  // List palettes: the toggle to another colour or the swap with a neighbour that lowers E most
  // (first in order on ties: colours by index, then neighbours as in kNeighbours).
  bool improve_colour(int x, int y) {
    Around around;
    gather(x, y, around);
    const auto& here = around.value[8];
    const auto& b = around.b[8];
    // Toggles: with D = p - here, the change sum_c w D (b + D k) is expanded as norm_[i] +
    // sum_c p_c g_c + base (norm_ = k sum_c w p^2, g_c = w (b - 2 k here), base = sum_c w
    // (k here^2 - b here)): three multiplications a colour, the same integers.
    std::array<int64_t, 3> g{};
    int64_t base = 0;
    for (size_t c = 0; c < 3; ++c) {
      g[c] = weights_[c] * (b[c] - 2 * k_ * here[c]);
      base += weights_[c] * (k_ * here[c] * here[c] - b[c] * here[c]);
    }
    int64_t least = -base;  // a change below 0
    int best = -1;          // 0..size-1: toggle; size + n: swap with neighbour n
    for (size_t i = 0; i < colour_u_.size(); ++i) {
      const auto& p = colour_u_[i];
      const int64_t score = norm_[i] + p[0] * g[0] + p[1] * g[1] + p[2] * g[2];
      if (score < least) {
        least = score;
        best = static_cast<int>(i);
      }
    }
    least += base;
    for (size_t n = 0; n < 8; ++n) {
      if (!around.in[n] || around.value[n] == here) continue;
      int64_t change = 0;
      for (size_t c = 0; c < 3; ++c) {
        change += swap_change(around, c, around.value[n][c] - here[c], n);
      }
      if (change < least) {
        least = change;
        best = q_.size() + static_cast<int>(n);
      }
    }
    if (best < 0) return false;
    if (best < q_.size()) {
      const auto& to = colour_u_[size_t(best)];
      apply(x, y, {to[0] - here[0], to[1] - here[1], to[2] - here[2]});
      const Color c = q_.color(best);
      uint8_t* o = out_.at(x, y);
      o[0] = c.r;
      o[1] = c.g;
      o[2] = c.b;
      return true;
    }
    const auto& nb = kNeighbours[size_t(best - q_.size())];
    swap(x, y, x + nb[0], y + nb[1], {true, true, true});
    return true;
  }

  // Levels palettes: E separates by channel, so each channel searches alone (its levels, then
  // swaps of its value with the neighbours). A channel's change leaves the others' data as
  // gathered.
  bool improve_levels(int x, int y) {
    Around around;
    gather(x, y, around);
    bool changed = false;
    for (size_t c = 0; c < 3; ++c) {
      const int32_t here = around.value[8][c];
      const int64_t b = around.b[8][c];
      int64_t least = 0;
      int best = -1;  // as improve_colour, with levels for colours
      for (size_t i = 0; i < level_u_.size(); ++i) {
        const int64_t dc = level_u_[i] - here;
        const int64_t change = weights_[c] * dc * (b + dc * k_);
        if (change < least) {
          least = change;
          best = static_cast<int>(i);
        }
      }
      for (size_t n = 0; n < 8; ++n) {
        if (!around.in[n] || around.value[n][c] == here) continue;
        const int64_t change = swap_change(around, c, around.value[n][c] - here, n);
        if (change < least) {
          least = change;
          best = q_.levels() + static_cast<int>(n);
        }
      }
      if (best < 0) continue;
      changed = true;
      if (best < q_.levels()) {
        std::array<int32_t, 3> delta{};
        delta[c] = level_u_[size_t(best)] - here;
        apply(x, y, delta);
        out_.at(x, y)[c] = q_.level_output(best);
      } else {
        const auto& nb = kNeighbours[size_t(best - q_.levels())];
        std::array<bool, 3> which{};
        which[c] = true;
        swap(x, y, x + nb[0], y + nb[1], which);
      }
    }
    return changed;
  }

  // Exchanges the channels `which` of two pixels.
  void swap(int x, int y, int nx, int ny, std::array<bool, 3> which) {
    std::array<int32_t, 3> delta{};
    for (size_t c = 0; c < 3; ++c) {
      if (!which[c]) continue;
      delta[c] = value_[3 * pixel(nx, ny) + c] - value_[3 * pixel(x, y) + c];
      std::swap(out_.at(x, y)[c], out_.at(nx, ny)[c]);
    }
    apply(x, y, delta);
    apply(nx, ny, {-delta[0], -delta[1], -delta[2]});
  }

  // value and d of (x, y) += delta; A += c * delta over the 13x13 window; the pixel's block is
  // marked.
  void apply(int x, int y, const std::array<int32_t, 3>& delta) {
    int16_t* d = d_.data() + 3 * pixel(x, y);
    int16_t* v = value_.data() + 3 * pixel(x, y);
    std::array<int32_t, 3 * kSpan> spread{};
    for (size_t i = 0; i < spread.size(); ++i) spread[i] = delta[i % 3];
    for (size_t c = 0; c < 3; ++c) {
      d[c] = int16_t(d[c] + delta[c]);
      v[c] = int16_t(v[c] + delta[c]);
    }
    for (int dy = 0; dy < kSpan; ++dy) {
      int32_t* row = a_at(x - kReach, y - kReach + dy);
      const auto& autos = auto_rows_[size_t(dy)];
      for (size_t i = 0; i < 3 * kSpan; ++i) row[i] += autos[i] * spread[i];
    }
    changed_[size_t(y >> kBlockBits) * size_t(blocks_w_) + size_t(x >> kBlockBits)] = clock_;
  }

  const Image& in_;
  Image& out_;
  const Quantizer& q_;
  const int w_;
  const int h_;
  const int stride_;  // of a_, in pixels
  const int64_t lambda_;
  const int64_t k_;  // c(0) + lambda
  const std::array<int64_t, 3> weights_;
  std::vector<std::array<int32_t, 3>> colour_u_;  // list palettes, working >> 2
  std::vector<int64_t> norm_;                     // list palettes: k sum_c w_c colour_u_^2
  std::vector<int32_t> level_u_;                  // levels palettes, working >> 2
  std::array<std::array<int32_t, 3 * kSpan>, kSpan> auto_rows_{};  // c, each value 3 times
  std::vector<int16_t> value_;  // the output, working >> 2, 3 per pixel
  std::vector<int16_t> d_;      // value - source (0 where alpha is 0)
  std::vector<int32_t> a_;      // 3 per pixel, with a margin of kReach pixels on every side
  // Change tracking: the clock when each pixel was last tried, when each block last changed.
  std::vector<uint32_t> tried_;
  std::vector<uint32_t> changed_;
  int blocks_w_ = 0;
  uint32_t clock_ = 1;
};

}  // namespace

void dbs_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  DitherOptions start = o;
  if (o.strength <= 0.0) {
    start.algorithm = Algorithm::kThreshold;  // strength 0: plain nearest colour
    ordered_dither(in, out, q, start);
    return;
  }
  start.algorithm = Algorithm::kFloydSteinberg;
  start.serpentine = false;
  error_diffusion(in, out, q, start);
  Search(in, out, q, o.strength).run();
}

}  // namespace dither::engine::detail
