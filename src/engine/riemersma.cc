// Riemersma dithering: error diffusion along a Hilbert curve, with a short memory of past errors.
//
// The curve is the Hilbert curve of the smallest power-of-two square covering the image, in the
// orientation of the usual d2xy() conversion (it starts at (0, 0), first steps to (0, 1) and ends
// at (n - 1, 0)); points outside the image are skipped. Sub-squares wholly outside are pruned, so
// the walk costs O(pixels) even for very wide images.
//
// Arithmetic (repeated by the reference implementation in the tests): the last 16 errors are
// kept; the error of age a (0 = the previous pixel on the curve) has the fixed-point factor
// lround(4096 * strength * 16^(-a/15) / sum_b 16^(-b/15)), so the newest weighs 16 times the
// oldest and the weights sum to one (ImageMagick's choice). A pixel's value is its working value
// plus sum_a (error_a * factor_a) >> 12, clamped to 0..65535; the nearest colour is chosen and
// the new error is the clamped value minus the colour's working value. One thread: the curve is
// a single chain. A pixel of alpha 0 puts a zero error in the queue: its own error is dropped, so
// no hidden colour reaches a visible pixel.
#include <algorithm>
#include <array>
#include <cmath>

#include "engine/algorithms.h"

namespace dither::engine::detail {

namespace {

constexpr size_t kQueue = 16;
constexpr int kShift = 12;  // factors are fixed point over 4096

std::array<int32_t, kQueue> queue_factors(double strength) {
  std::array<double, kQueue> raw{};
  double total = 0.0;
  for (size_t a = 0; a < kQueue; ++a) {
    raw[a] = std::pow(16.0, -static_cast<double>(a) / 15.0);
    total += raw[a];
  }
  std::array<int32_t, kQueue> f{};
  for (size_t a = 0; a < f.size(); ++a) {
    f[a] = static_cast<int32_t>(std::lround(4096.0 * strength * raw[a] / total));
  }
  return f;
}

struct Vec {
  int x;
  int y;
};

// Walks the `size` x `size` square at `origin` spanned by unit vectors `i` and `j` along the
// Hilbert curve, from the origin to origin + (size - 1) * i, first stepping along j; calls
// visit(x, y) for the points inside width x height and skips sub-squares wholly outside.
template <class Visit>
void hilbert(Vec origin, Vec i, Vec j, int size, int width, int height, Visit& visit) {
  const int far_x = origin.x + (size - 1) * (i.x + j.x);
  const int far_y = origin.y + (size - 1) * (i.y + j.y);
  if (std::min(origin.x, far_x) >= width || std::min(origin.y, far_y) >= height) return;
  if (size <= 2) {  // the smallest turn, visited directly: O, O + j, O + i + j, O + i
    const std::array<Vec, 4> steps{{{0, 0}, j, {i.x + j.x, i.y + j.y}, i}};
    for (int k = 0; k < (size == 1 ? 1 : 4); ++k) {
      const int x = origin.x + steps[static_cast<size_t>(k)].x;
      const int y = origin.y + steps[static_cast<size_t>(k)].y;
      if (x < width && y < height) visit(x, y);
    }
    return;
  }
  const int h = size / 2;
  const Vec neg_i{-i.x, -i.y};
  const Vec neg_j{-j.x, -j.y};
  hilbert(origin, j, i, h, width, height, visit);
  hilbert(Vec{origin.x + h * j.x, origin.y + h * j.y}, i, j, h, width, height, visit);
  hilbert(Vec{origin.x + h * (i.x + j.x), origin.y + h * (i.y + j.y)}, i, j, h, width, height,
          visit);
  hilbert(
      Vec{origin.x + (size - 1) * i.x + (h - 1) * j.x, origin.y + (size - 1) * i.y + (h - 1) * j.y},
      neg_j, neg_i, h, width, height, visit);
}

// The last kQueue errors of each channel, stored twice over so that they are always one
// contiguous window, oldest first: the weighted sum is a fixed-length loop the compiler vectorises.
class ErrorQueue {
 public:
  explicit ErrorQueue(double strength) {
    const std::array<int32_t, kQueue> f = queue_factors(strength);
    for (size_t j = 0; j < kQueue; ++j) factor_oldest_first_[j] = f[kQueue - 1 - j];
  }

  int32_t correction(size_t c) const {
    const int32_t* e = window_[c].data() + next_;
    int32_t sum = 0;
    for (size_t j = 0; j < kQueue; ++j) sum += (e[j] * factor_oldest_first_[j]) >> kShift;
    return sum;
  }

  void push(const std::array<int32_t, 3>& error) {
    for (size_t c = 0; c < 3; ++c) {
      window_[c][next_] = error[c];
      window_[c][next_ + kQueue] = error[c];
    }
    next_ = (next_ + 1) & (kQueue - 1);
  }

 private:
  // window_[c][next_ .. next_ + kQueue) holds the errors oldest first.
  std::array<std::array<int32_t, 2 * kQueue>, 3> window_{};
  std::array<int32_t, kQueue> factor_oldest_first_{};
  size_t next_ = 0;
};

template <bool kLevels, bool kAlpha>
void walk(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const auto& tw = q.to_working();
  ErrorQueue queue(o.strength);
  auto visit = [&](int x, int y) {
    const uint8_t* p = in.at(x, y);
    uint8_t* d = out.at(x, y);
    std::array<int32_t, 3> v{};
    for (size_t c = 0; c < 3; ++c) {
      v[c] = std::clamp(tw[p[c]] + queue.correction(c), 0, kWorkingMax);
    }
    std::array<int32_t, 3> e = put_nearest<kLevels>(q, v, d);
    if constexpr (kAlpha) {
      if (p[3] == 0) e = {};
    }
    queue.push(e);
  };
  int size = 1;
  while (size < in.width || size < in.height) size *= 2;
  hilbert(Vec{0, 0}, Vec{1, 0}, Vec{0, 1}, size, in.width, in.height, visit);
}

}  // namespace

void riemersma_dither(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const bool alpha = in.has_alpha();
  if (q.is_levels()) {
    alpha ? walk<true, true>(in, out, q, o) : walk<true, false>(in, out, q, o);
  } else {
    alpha ? walk<false, true>(in, out, q, o) : walk<false, false>(in, out, q, o);
  }
}

}  // namespace dither::engine::detail
