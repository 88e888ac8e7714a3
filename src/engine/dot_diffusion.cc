// Knuth's dot diffusion (D. E. Knuth, "Digital halftones by dot diffusion", ACM Transactions on
// Graphics 6(4), 1987).
//
// The image is tiled by Knuth's 8x8 class matrix (kKnuthClasses below, indexed [y mod 8][x mod 8]).
// Pixels are processed in class order: every class-0 pixel, then every class-1 pixel, and so on.
// Each takes the nearest colour of its working value plus the error it has been given, and hands
// its own error to the 8-neighbours (inside the image) of a higher class, weight 2 for the
// orthogonal and 1 for the diagonal ones, normalised by the sum W of those weights: neighbour n
// gets (e * f) >> 12 with f = lround(4096 * strength * weight / W). A pixel with no such
// neighbour (a "baron") passes nothing on, and neither does a pixel of alpha 0 (its error is
// dropped: hidden colours never reach visible pixels). docs/ENGINE-ORDERED.md has the exact rules.
//
// Two pixels of one class are 8 apart, so they neither are neighbours nor share one: within a
// class every pixel is independent (it only reads what lower classes gave it and only writes to
// higher ones). Threads split each class's rows and meet at a barrier between classes; the sums
// are integer additions in a fixed class order, so the bytes never depend on the thread count.
#include <algorithm>
#include <array>
#include <barrier>
#include <cmath>
#include <cstddef>
#include <thread>
#include <vector>

#include "engine/algorithms.h"

namespace dither::engine::detail {

namespace {

// Knuth's class matrix, as published in the 1987 paper and reproduced in libdither
// (github.com/robertkist/libdither, src/libdither/dither_dotdiff_data.h, `knuth_class_matrix`).
constexpr std::array<std::array<uint8_t, 8>, 8> kKnuthClasses = {{
    {34, 48, 40, 32, 29, 15, 23, 31},
    {42, 58, 56, 53, 21, 5, 7, 10},
    {50, 62, 61, 45, 13, 1, 2, 18},
    {38, 46, 54, 37, 25, 17, 9, 26},
    {28, 14, 22, 30, 35, 49, 41, 33},
    {20, 4, 6, 11, 43, 59, 57, 52},
    {12, 0, 3, 19, 51, 63, 60, 44},
    {24, 16, 8, 27, 39, 47, 55, 36},
}};

constexpr int kShift = 12;

struct Neighbour {
  int dx;
  int dy;
  int weight;
};
constexpr std::array<Neighbour, 8> kNeighbours = {{
    {-1, -1, 1},
    {0, -1, 2},
    {1, -1, 1},
    {-1, 0, 2},
    {1, 0, 2},
    {-1, 1, 1},
    {0, 1, 2},
    {1, 1, 1},
}};

int class_at(int x, int y) {
  return kKnuthClasses[static_cast<size_t>(y & 7)][static_cast<size_t>(x & 7)];
}

// Where a pixel's error goes: up to 8 accumulator offsets (in int32 units, 3 per pixel) and their
// fixed-point factors.
struct Plan {
  std::array<ptrdiff_t, 8> offset{};
  std::array<int32_t, 8> factor{};
  int count = 0;
};

// factors[W][weight]: lround(4096 * strength * weight / W) for W = 1..12, weight = 1, 2.
using FactorTable = std::array<std::array<int32_t, 3>, 13>;

FactorTable factor_table(double strength) {
  FactorTable t{};
  for (int total = 1; total <= 12; ++total) {
    for (int weight = 1; weight <= 2; ++weight) {
      t[static_cast<size_t>(total)][static_cast<size_t>(weight)] = static_cast<int32_t>(
          std::lround(4096.0 * strength * weight / static_cast<double>(total)));
    }
  }
  return t;
}

// The plan of pixel (x, y); `bounded` false skips the image-edge test (for pixels away from the
// edges, where every neighbour is inside).
Plan plan_for(int x, int y, int width, int height, bool bounded, const FactorTable& factors) {
  const int k = class_at(x, y);
  Plan plan;
  std::array<int, 8> weight{};
  int total = 0;
  for (const Neighbour& n : kNeighbours) {
    const int nx = x + n.dx;
    const int ny = y + n.dy;
    if (bounded && (nx < 0 || ny < 0 || nx >= width || ny >= height)) continue;
    if (class_at(nx, ny) <= k) continue;
    const auto i = static_cast<size_t>(plan.count++);
    plan.offset[i] = (static_cast<ptrdiff_t>(n.dy) * width + n.dx) * 3;
    weight[i] = n.weight;
    total += n.weight;
  }
  for (size_t i = 0; i < static_cast<size_t>(plan.count); ++i) {
    plan.factor[i] = factors[static_cast<size_t>(total)][static_cast<size_t>(weight[i])];
  }
  return plan;
}

// Position of class k in the tile.
struct TilePos {
  int x;
  int y;
};
std::array<TilePos, 64> class_positions() {
  std::array<TilePos, 64> pos{};
  for (int y = 0; y < 8; ++y) {
    for (int x = 0; x < 8; ++x) pos[static_cast<size_t>(class_at(x, y))] = {x, y};
  }
  return pos;
}

template <bool kLevels, bool kAlpha>
void one_pixel(const Image& in, Image& out, const Quantizer& q, int32_t* acc, int x, int y,
               const Plan& plan) {
  const auto& tw = q.to_working();
  const uint8_t* p = in.at(x, y);
  uint8_t* d = out.at(x, y);
  int32_t* a = acc + (static_cast<ptrdiff_t>(y) * in.width + x) * 3;
  std::array<int32_t, 3> v{};
  for (size_t c = 0; c < 3; ++c) v[c] = std::clamp(tw[p[c]] + a[c], 0, kWorkingMax);
  const std::array<int32_t, 3> e = put_nearest<kLevels>(q, v, d);
  if constexpr (kAlpha) {
    if (p[3] == 0) return;
  }
  for (size_t t = 0; t < static_cast<size_t>(plan.count); ++t) {
    int32_t* n = a + plan.offset[t];
    const int32_t f = plan.factor[t];
    for (size_t c = 0; c < 3; ++c) n[c] += (e[c] * f) >> kShift;
  }
}

// Class k's pixels in tile rows [row_begin, row_end) (tile row j holds image row cy + 8j).
template <bool kLevels, bool kAlpha>
void run_class(const Image& in, Image& out, const Quantizer& q, int32_t* acc,
               const FactorTable& factors, const Plan& inner, TilePos pos, int row_begin,
               int row_end) {
  for (int j = row_begin; j < row_end; ++j) {
    const int y = pos.y + 8 * j;
    const bool edge_row = y == 0 || y == in.height - 1;
    for (int x = pos.x; x < in.width; x += 8) {
      if (edge_row || x == 0 || x == in.width - 1) {
        one_pixel<kLevels, kAlpha>(in, out, q, acc, x, y,
                                   plan_for(x, y, in.width, in.height, true, factors));
      } else {
        one_pixel<kLevels, kAlpha>(in, out, q, acc, x, y, inner);
      }
    }
  }
}

template <bool kLevels, bool kAlpha>
void run(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const FactorTable factors = factor_table(o.strength);
  const std::array<TilePos, 64> pos = class_positions();
  // Each class's plan away from the image's edges, with offsets for this width.
  std::array<Plan, 64> inner{};
  for (size_t k = 0; k < 64; ++k) {
    inner[k] = plan_for(pos[k].x, pos[k].y, in.width, in.height, false, factors);
  }
  std::vector<int32_t> acc(in.pixel_count() * 3, 0);
  // A thread is worth its 64 barrier waits only with a few tile rows of its own.
  const int tile_rows = (in.height + 7) / 8;
  const int threads = std::clamp(std::min(resolve_threads(o.threads), tile_rows / 4), 1, 256);
  auto work = [&](int t, std::barrier<>* sync) {
    for (size_t k = 0; k < 64; ++k) {
      const int rows = (in.height - pos[k].y + 7) / 8;  // tile rows holding a class-k pixel
      run_class<kLevels, kAlpha>(in, out, q, acc.data(), factors, inner[k], pos[k],
                                 rows * t / threads, rows * (t + 1) / threads);
      if (sync) sync->arrive_and_wait();
    }
  };
  if (threads == 1) {
    work(0, nullptr);
    return;
  }
  std::barrier<> sync(threads);
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t, &sync);
  work(0, &sync);
  for (std::thread& th : pool) th.join();
}

}  // namespace

void dot_diffusion(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const bool alpha = in.has_alpha();
  if (q.is_levels()) {
    alpha ? run<true, true>(in, out, q, o) : run<true, false>(in, out, q, o);
  } else {
    alpha ? run<false, true>(in, out, q, o) : run<false, false>(in, out, q, o);
  }
}

}  // namespace dither::engine::detail
