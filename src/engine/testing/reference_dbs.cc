// Reference direct binary search, straight from docs/ENGINE-ORDERED.md ("Direct binary search"):
// the initial Floyd-Steinberg halftone, then passes in raster order where every tried change's
// effect on the perceived error is computed directly, by filtering the difference image in the
// 9x9 window a pixel and its neighbours reach and comparing squares (no autocorrelation, no
// change tracking).
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/testing/reference.h"

namespace dither::engine::reference {

namespace {

constexpr int g[7] = {1, 2, 4, 5, 4, 2, 1};

int32_t scaled(uint8_t sample, ColorSpace space) { return to_working(sample, space) >> 2; }

class Dbs {
 public:
  Dbs(const Image& in, Image& out, const RefPalette& p, double strength)
      : in_(in), out_(out), p_(p), d_(3 * in.pixel_count(), 0) {
    if (p.metric == Metric::kPerceptual) weights_ = {2126, 7152, 722};
    if (strength < 1.0) {
      lambda_ = std::min<int64_t>(std::lround(4489.0 * (1.0 - strength) / strength), 64 * 4489);
    }
    for (int y = 0; y < in.height; ++y) {
      for (int x = 0; x < in.width; ++x) {
        if (!counts(x, y)) continue;
        for (int c = 0; c < 3; ++c) {
          d(x, y, c) = scaled(out.at(x, y)[c], p.space) - scaled(in.at(x, y)[c], p.space);
        }
      }
    }
  }

  // One pass over the image; returns the number of pixels changed.
  int pass() {
    int changes = 0;
    for (int y = 0; y < in_.height; ++y) {
      for (int x = 0; x < in_.width; ++x) {
        if (counts(x, y)) changes += visit(x, y) ? 1 : 0;
      }
    }
    return changes;
  }

 private:
  bool counts(int x, int y) const { return in_.channels != 4 || in_.at(x, y)[3] != 0; }
  int64_t& d(int x, int y, int c) {
    return d_[3 * (static_cast<size_t>(y) * static_cast<size_t>(in_.width) +
                   static_cast<size_t>(x)) +
              static_cast<size_t>(c)];
  }
  int64_t diff(int x, int y, int c) {
    if (x < 0 || y < 0 || x >= in_.width || y >= in_.height) return 0;
    return d(x, y, c);
  }

  // The filtered error e_c(m) at the 9x9 points m around (x, y): every point a change of the
  // pixel or of a neighbour reaches.
  void filter_window(int x, int y) {
    for (int my = 0; my < 9; ++my) {
      for (int mx = 0; mx < 9; ++mx) {
        for (int c = 0; c < 3; ++c) {
          int64_t e = 0;
          for (int ny = -3; ny <= 3; ++ny) {
            for (int nx = -3; nx <= 3; ++nx) {
              e += g[nx + 3] * g[ny + 3] * diff(x + mx - 4 + nx, y + my - 4 + ny, c);
            }
          }
          e_[my][mx][c] = e;
        }
      }
    }
  }

  // h at offset (dx, dy), 0 outside the 7x7 filter.
  static int64_t h(int dx, int dy) {
    if (dx < -3 || dx > 3 || dy < -3 || dy > 3) return 0;
    return g[dx + 3] * g[dy + 3];
  }

  // The change of E when channel c of (x, y) changes by `step` and, for a swap, channel c of its
  // neighbour (x + nx, y + ny) by -step: over the window, sum of (e + s)^2 - e^2 with s the
  // filtered change, plus lambda ((d + D)^2 - d^2) for each changed pixel; weighted.
  int64_t change(int x, int y, int c, int64_t step, bool swap = false, int nx = 0, int ny = 0) {
    int64_t sum = 0;
    for (int my = 0; my < 9; ++my) {
      for (int mx = 0; mx < 9; ++mx) {
        int64_t s = h(mx - 4, my - 4) * step;
        if (swap) s -= h(mx - 4 - nx, my - 4 - ny) * step;
        sum += s * (2 * e_[my][mx][c] + s);
      }
    }
    sum += lambda_ * step * (2 * d(x, y, c) + step);
    if (swap) sum += lambda_ * -step * (2 * d(x + nx, y + ny, c) - step);
    return weights_[static_cast<size_t>(c)] * sum;
  }

  // Neighbour n (0..7, rows above to below, left to right) of (x, y), if it can be a swap partner.
  bool partner(int x, int y, int n, int* nx, int* ny) const {
    const int k = n < 4 ? n : n + 1;  // skip the centre of the 3x3 block
    *nx = k % 3 - 1;
    *ny = k / 3 - 1;
    const int px = x + *nx;
    const int py = y + *ny;
    return px >= 0 && py >= 0 && px < in_.width && py < in_.height && counts(px, py);
  }

  int32_t value(int x, int y, int c) const { return scaled(out_.at(x, y)[c], p_.space); }

  bool visit(int x, int y) {
    filter_window(x, y);
    return p_.palette->is_levels() ? visit_levels(x, y) : visit_colours(x, y);
  }

  // Each channel alone: the best of its levels and of swapping it with a neighbour.
  bool visit_levels(int x, int y) {
    const Palette& pal = *p_.palette;
    bool changed = false;
    for (int c = 0; c < 3; ++c) {
      const int32_t now = value(x, y, c);
      int64_t least = 0;
      int best = -1;  // a level, or levels() + neighbour
      for (int i = 0; i < pal.levels(); ++i) {
        const int64_t delta = change(x, y, c, scaled(pal.level_value(i), p_.space) - now);
        if (delta < least) {
          least = delta;
          best = i;
        }
      }
      for (int n = 0; n < 8; ++n) {
        int nx = 0;
        int ny = 0;
        if (!partner(x, y, n, &nx, &ny)) continue;
        const int64_t delta = change(x, y, c, value(x + nx, y + ny, c) - now, true, nx, ny);
        if (delta < least) {
          least = delta;
          best = pal.levels() + n;
        }
      }
      if (best < 0) continue;
      changed = true;
      if (best < pal.levels()) {
        d(x, y, c) += scaled(pal.level_value(best), p_.space) - now;
        out_.at(x, y)[c] = pal.level_value(best);
      } else {
        int nx = 0;
        int ny = 0;
        partner(x, y, best - pal.levels(), &nx, &ny);
        exchange(x, y, x + nx, y + ny, c);
      }
    }
    return changed;
  }

  // The best of every palette colour and of swapping colours with a neighbour.
  bool visit_colours(int x, int y) {
    const auto& colors = p_.palette->colors();
    const int size = static_cast<int>(colors.size());
    int64_t least = 0;
    int best = -1;  // a colour index, or size + neighbour
    for (int i = 0; i < size; ++i) {
      const Color k = colors[static_cast<size_t>(i)];
      const int32_t to[3] = {scaled(k.r, p_.space), scaled(k.g, p_.space), scaled(k.b, p_.space)};
      int64_t delta = 0;
      for (int c = 0; c < 3; ++c) delta += change(x, y, c, to[c] - value(x, y, c));
      if (delta < least) {
        least = delta;
        best = i;
      }
    }
    for (int n = 0; n < 8; ++n) {
      int nx = 0;
      int ny = 0;
      if (!partner(x, y, n, &nx, &ny)) continue;
      int64_t delta = 0;
      for (int c = 0; c < 3; ++c) {
        delta += change(x, y, c, value(x + nx, y + ny, c) - value(x, y, c), true, nx, ny);
      }
      if (delta < least) {
        least = delta;
        best = size + n;
      }
    }
    if (best < 0) return false;
    if (best < size) {
      const Color k = colors[static_cast<size_t>(best)];
      const int32_t to[3] = {scaled(k.r, p_.space), scaled(k.g, p_.space), scaled(k.b, p_.space)};
      for (int c = 0; c < 3; ++c) d(x, y, c) += to[c] - value(x, y, c);
      put(out_, x, y, k);
      return true;
    }
    int nx = 0;
    int ny = 0;
    partner(x, y, best - size, &nx, &ny);
    for (int c = 0; c < 3; ++c) exchange(x, y, x + nx, y + ny, c);
    return true;
  }

  // Swaps channel c of two pixels.
  void exchange(int x, int y, int x2, int y2, int c) {
    const int32_t step = value(x2, y2, c) - value(x, y, c);
    d(x, y, c) += step;
    d(x2, y2, c) -= step;
    std::swap(out_.at(x, y)[c], out_.at(x2, y2)[c]);
  }

  const Image& in_;
  Image& out_;
  const RefPalette& p_;
  std::array<int64_t, 3> weights_ = {1, 1, 1};
  int64_t lambda_ = 0;
  std::vector<int64_t> d_;  // output - source, working values >> 2; 0 where alpha is 0
  int64_t e_[9][9][3] = {};
};

}  // namespace

Image dbs(const Image& in, const RefPalette& p, const DitherOptions& o) {
  DitherOptions start = o;
  if (o.strength <= 0.0) {
    start.algorithm = Algorithm::kThreshold;
    return ordered(in, p, start);
  }
  start.algorithm = Algorithm::kFloydSteinberg;
  start.serpentine = false;
  Image out = error_diffusion(in, p, start);
  Dbs search(in, out, p, o.strength);
  for (int pass = 0; pass < 8; ++pass) {
    if (search.pass() == 0) break;
  }
  return out;
}

}  // namespace dither::engine::reference
