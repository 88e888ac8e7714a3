// Error diffusion: the ten classic kernels, raster or serpentine, any palette, optionally on
// several threads.
//
// Arithmetic (shared with the reference implementation in the tests, which must give the same
// bytes): each sample becomes a working value 0..65535; the accumulated error is added and the
// sum clamped to 0..65535; the nearest palette colour is chosen; the error (clamped value minus
// the colour's working value) is spread to neighbours as (error * factor) >> 12 with the factors
// of fixed_point_weights().
//
// Parallelism: a wavefront. Rows are dealt round-robin to threads; row y may process pixel x once
// row y-1 has finished pixel x + 2 * reach + 1. Then the cells a row reads are final and no two
// rows ever write the same cell at the same time, and since integer addition is exact the result
// is byte-identical to one thread. Error rows live in a ring of max_dy + threads + 1 rows.
// Serpentine scans reverse direction every row, which leaves nothing to overlap: they use one
// thread.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "engine/algorithms.h"
#include "engine/kernels.h"

namespace dither::detail {

namespace {

constexpr int kPad = 3;          // widest reach of any kernel
constexpr int kPublishEvery = 32;  // pixels between progress updates

// Shared state of one image being diffused.
struct Job {
  const Image* in;
  Image* out;
  const Quantizer* q;
  const Kernel* kernel;
  std::array<int, 12> factors;
  bool serpentine;
  int ring_rows;
  int lag;  // pixels row y-1 must be ahead of row y
  size_t row_cells;  // int32 cells per error row: (width + 2 * kPad) * 3
  std::vector<int32_t> errors;
  std::unique_ptr<std::atomic<int>[]> progress;  // pixels finished, per row

  int32_t* error_row(int y) {
    return errors.data() + static_cast<size_t>(y % ring_rows) * row_cells + kPad * 3;
  }
};

void wait_for(const std::atomic<int>& progress, int needed) {
  int spins = 0;
  while (progress.load(std::memory_order_acquire) < needed) {
    if (++spins > 64) {
      std::this_thread::yield();
      spins = 0;
    }
  }
}

// One row, for a kernel of `kTaps` taps; `kLevels` picks the quantiser shape at compile time.
template <int kTaps, bool kLevels>
void diffuse_row(Job& job, int y) {
  const Image& in = *job.in;
  const Quantizer& q = *job.q;
  const auto& tw = q.to_working();
  const int width = in.width;
  const int channels = in.channels;
  const bool reverse = job.serpentine && (y & 1);
  const int dir = reverse ? -1 : 1;
  const Kernel& k = *job.kernel;

  // Destination error rows per tap, and the offset (in cells) of each tap.
  std::array<int32_t*, kTaps> dst{};
  std::array<int, kTaps> offset{};
  std::array<int, kTaps> factor{};
  for (int t = 0; t < kTaps; ++t) {
    const KernelTap& tap = k.taps[static_cast<size_t>(t)];
    dst[static_cast<size_t>(t)] = job.error_row(y + tap.dy);
    offset[static_cast<size_t>(t)] = tap.dx * dir * 3;
    factor[static_cast<size_t>(t)] = job.factors[static_cast<size_t>(t)];
  }
  int32_t* cur = job.error_row(y);
  const uint8_t* src = in.row(y);
  uint8_t* out = job.out->row(y);
  std::atomic<int>* above = y > 0 ? &job.progress[static_cast<size_t>(y - 1)] : nullptr;
  std::atomic<int>& mine = job.progress[static_cast<size_t>(y)];

  int ready = above ? 0 : width;  // pixels of this row we may process without waiting
  for (int i = 0; i < width; ++i) {
    if (i >= ready) {
      const int need = std::min(width, i + job.lag + kPublishEvery);
      wait_for(*above, need);
      ready = need >= width ? width : need - job.lag;
    }
    const int x = reverse ? width - 1 - i : i;
    const uint8_t* p = src + static_cast<size_t>(x) * static_cast<size_t>(channels);
    uint8_t* o = out + static_cast<size_t>(x) * static_cast<size_t>(channels);
    int32_t* e = cur + x * 3;
    int32_t v[3];
    for (int c = 0; c < 3; ++c) v[c] = std::clamp<int32_t>(tw[p[c]] + e[c], 0, kWorkingMax);
    int32_t err[3];
    if constexpr (kLevels) {
      for (int c = 0; c < 3; ++c) {
        const int level = q.level_of(v[c]);
        o[c] = q.level_output(level);
        err[c] = v[c] - q.level_working(level);
      }
    } else {
      const int idx = q.nearest(v[0], v[1], v[2]);
      const Color col = q.color(idx);
      o[0] = col.r;
      o[1] = col.g;
      o[2] = col.b;
      const auto& w = q.working(idx);
      for (int c = 0; c < 3; ++c) err[c] = v[c] - w[c];
    }
    for (int t = 0; t < kTaps; ++t) {
      int32_t* d = dst[static_cast<size_t>(t)] + x * 3 + offset[static_cast<size_t>(t)];
      const int f = factor[static_cast<size_t>(t)];
      for (int c = 0; c < 3; ++c) d[c] += (err[c] * f) >> kWeightShift;
    }
    if ((i % kPublishEvery) == 0) mine.store(i, std::memory_order_release);
  }
  mine.store(width, std::memory_order_release);
}

using RowFn = void (*)(Job&, int);

template <bool kLevels>
RowFn pick_row_fn(int taps) {
  switch (taps) {
    case 3:
      return &diffuse_row<3, kLevels>;
    case 4:
      return &diffuse_row<4, kLevels>;
    case 6:
      return &diffuse_row<6, kLevels>;
    case 7:
      return &diffuse_row<7, kLevels>;
    case 10:
      return &diffuse_row<10, kLevels>;
    default:
      return &diffuse_row<12, kLevels>;
  }
}

}  // namespace

void error_diffusion(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o) {
  const Kernel* kernel = kernel_for(o.algorithm);
  Job job;
  job.in = &in;
  job.out = &out;
  job.q = &q;
  job.kernel = kernel;
  job.factors = fixed_point_weights(*kernel, o.strength);
  job.serpentine = o.serpentine;
  const int threads =
      o.serpentine ? 1 : std::clamp(resolve_threads(o.threads), 1, std::max(1, in.height / 2));
  job.ring_rows = kernel->max_dy() + threads + 1;
  job.lag = 2 * kernel->max_dx() + 2;
  job.row_cells = static_cast<size_t>(in.width + 2 * kPad) * 3;
  job.errors.assign(job.row_cells * static_cast<size_t>(job.ring_rows), 0);
  job.progress = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(in.height));
  for (int y = 0; y < in.height; ++y) job.progress[static_cast<size_t>(y)].store(0);

  const RowFn row_fn = q.is_levels() ? pick_row_fn<true>(kernel->tap_count)
                                     : pick_row_fn<false>(kernel->tap_count);
  const int max_dy = kernel->max_dy();
  auto worker = [&](int first) {
    for (int y = first; y < in.height; y += threads) {
      // The furthest error row this row writes is first touched here; its previous user,
      // row y + max_dy - ring_rows, finished before this thread's previous row did.
      int32_t* fresh = job.error_row(y + max_dy) - kPad * 3;
      std::memset(fresh, 0, job.row_cells * sizeof(int32_t));
      row_fn(job, y);
    }
  };
  if (threads == 1) {
    worker(0);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();
}

}  // namespace dither::detail
