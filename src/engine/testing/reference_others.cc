// Reference Riemersma and Yliluoma dithering, straight from the definitions in docs/ENGINE.md:
// the Hilbert curve from the textbook d2xy() conversion, a plain shifting error queue, and a
// mixing plan devised afresh for every pixel.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "engine/testing/reference.h"

namespace dither::engine::reference {

namespace {

// Position of step d on the Hilbert curve filling an n x n square (n a power of two).
void d2xy(int n, int64_t d, int* x, int* y) {
  *x = 0;
  *y = 0;
  for (int s = 1; s < n; s *= 2) {
    const int rx = static_cast<int>(1 & (d / 2));
    const int ry = static_cast<int>(1 & (d ^ rx));
    if (ry == 0) {
      if (rx == 1) {
        *x = s - 1 - *x;
        *y = s - 1 - *y;
      }
      std::swap(*x, *y);
    }
    *x += s * rx;
    *y += s * ry;
    d /= 4;
  }
}

std::array<int64_t, 3> metric_weights(Metric m) {
  if (m == Metric::kPerceptual) return {2126, 7152, 722};
  return {1, 1, 1};
}

std::array<int32_t, 3> working(const RefPalette& p, Color c) {
  return {to_working(c.r, p.space), to_working(c.g, p.space), to_working(c.b, p.space)};
}

// Yliluoma's algorithm 2 for one colour: 64 palette indices sorted by luma.
std::vector<int> mixing_plan(const RefPalette& p, const std::array<int32_t, 3>& target) {
  const auto& colors = p.palette->colors();
  const auto wi = metric_weights(p.metric);
  std::vector<std::pair<int64_t, int>> by_distance;
  for (size_t i = 0; i < colors.size(); ++i) {
    const auto w = working(p, colors[i]);
    int64_t d = 0;
    for (size_t c = 0; c < 3; ++c) d += wi[c] * (target[c] - w[c]) * (target[c] - w[c]);
    by_distance.emplace_back(d, static_cast<int>(i));
  }
  std::sort(by_distance.begin(), by_distance.end());
  std::vector<int> candidates;
  for (size_t k = 0; k < by_distance.size() && k < 16; ++k) {
    candidates.push_back(by_distance[k].second);
  }
  std::sort(candidates.begin(), candidates.end());

  std::vector<int> plan;
  std::array<int64_t, 3> so_far{};
  int total = 0;
  while (total < 64) {
    double least = std::numeric_limits<double>::infinity();
    int chosen = candidates[0];
    int amount = 1;
    for (int idx : candidates) {
      const auto w = working(p, colors[static_cast<size_t>(idx)]);
      for (int n = 1; n <= std::max(1, total); n *= 2) {
        const double inv = 1.0 / static_cast<double>(total + n);
        double penalty = 0.0;
        for (size_t c = 0; c < 3; ++c) {
          const double mean = static_cast<double>(so_far[c] + int64_t{n} * w[c]) * inv;
          const double d = target[c] - mean;
          penalty += static_cast<double>(wi[c]) * d * d;
        }
        if (penalty < least) {
          least = penalty;
          chosen = idx;
          amount = n;
        }
      }
    }
    const auto w = working(p, colors[static_cast<size_t>(chosen)]);
    for (int k = 0; k < amount; ++k) {
      if (plan.size() < 64) plan.push_back(chosen);
    }
    for (size_t c = 0; c < 3; ++c) so_far[c] += int64_t{amount} * w[c];
    total += amount;
  }
  auto luma = [&](int i) {
    const Color c = colors[static_cast<size_t>(i)];
    return 299 * c.r + 587 * c.g + 114 * c.b;
  };
  std::sort(plan.begin(), plan.end(),
            [&](int a, int b) { return luma(a) != luma(b) ? luma(a) < luma(b) : a < b; });
  return plan;
}

}  // namespace

Image riemersma(const Image& in, const RefPalette& p, const DitherOptions& o) {
  double raw[16];
  double total = 0.0;
  for (int a = 0; a < 16; ++a) {
    raw[a] = std::pow(16.0, -a / 15.0);
    total += raw[a];
  }
  int32_t factor[16];
  for (int a = 0; a < 16; ++a) {
    factor[a] = static_cast<int32_t>(std::lround(4096.0 * o.strength * raw[a] / total));
  }
  // queue[0] is the newest error.
  std::vector<std::array<int32_t, 3>> queue(16, std::array<int32_t, 3>{});
  Image out(in.width, in.height, in.channels);
  int n = 1;
  while (n < in.width || n < in.height) n *= 2;
  for (int64_t d = 0; d < int64_t{n} * n; ++d) {
    int x = 0;
    int y = 0;
    d2xy(n, d, &x, &y);
    if (x >= in.width || y >= in.height) continue;
    const uint8_t* s = in.at(x, y);
    std::array<int32_t, 3> v{};
    for (size_t c = 0; c < 3; ++c) {
      int32_t correction = 0;
      for (size_t a = 0; a < 16; ++a) correction += (queue[a][c] * factor[a]) >> 12;
      v[c] = std::clamp(to_working(s[c], p.space) + correction, 0, kWorkingMax);
    }
    std::array<int32_t, 3> chosen{};
    const Color col = nearest(p, v, &chosen);
    put(out, x, y, col);
    queue.pop_back();
    if (in.has_alpha() && s[3] == 0) {
      queue.insert(queue.begin(), {0, 0, 0});  // transparent: its error is dropped
    } else {
      queue.insert(queue.begin(), {v[0] - chosen[0], v[1] - chosen[1], v[2] - chosen[2]});
    }
  }
  return out;
}

Image yliluoma(const Image& in, const RefPalette& p, const DitherOptions& o) {
  if (p.palette->is_levels()) {
    DitherOptions bayer = o;
    bayer.algorithm = Algorithm::kBayer;
    bayer.bayer_size = 8;
    return ordered(in, p, bayer);
  }
  const int64_t s = std::lround(o.strength * 1024.0);
  Image out(in.width, in.height, in.channels);
  for (int y = 0; y < in.height; ++y) {
    for (int x = 0; x < in.width; ++x) {
      const int rank = bayer8_rank(x, y);
      const uint8_t* src = in.at(x, y);
      const std::vector<int> plan = mixing_plan(
          p,
          {to_working(src[0], p.space), to_working(src[1], p.space), to_working(src[2], p.space)});
      const int64_t slot = ((2 * rank - 63) * s + 65536) / 2048;
      const Color c = p.palette->colors()[static_cast<size_t>(plan[static_cast<size_t>(slot)])];
      uint8_t* d = out.at(x, y);
      d[0] = c.r;
      d[1] = c.g;
      d[2] = c.b;
    }
  }
  return out;
}

}  // namespace dither::engine::reference
