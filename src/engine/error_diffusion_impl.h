// Error diffusion: the twelve kernels and custom ones, raster or serpentine, any palette, on any
// number of threads, with byte-identical output.
//
// Arithmetic (shared with the reference implementation in the tests): each sample becomes a
// working value 0..65535; the accumulated error is added and the sum clamped to 0..65535; the
// nearest palette colour is chosen; the error (clamped value minus the colour's working value) is
// spread to neighbours as (error * factor) >> 12 with the factors of fixed_point_weights().
//
// Speed comes from three things, none of which changes a single output byte:
//  - the three channels travel together in one 4-lane integer vector;
//  - error for pixels to the right stays in registers; only rows below go through memory;
//  - latency hiding: the serial chain "add error, quantise, compute error, pass it right" bounds
//    one row's speed, so each thread runs two rows at once (three or four with list palettes,
//    see kBandList), the lower one a few pixels behind, giving the CPU independent chains to
//    overlap;
//  - a wavefront across threads: bands of two rows are dealt round-robin, and a band may process
//    pixel x once the row above has finished pixel x + 2 * reach + 1. The cells a row reads are
//    then final and no two threads ever write the same cell at once; integer addition is exact,
//    so the order of contributions does not matter.
// Serpentine scans reverse direction every row, which leaves nothing to overlap: one row at a
// time on one thread.
//
// A pixel of alpha 0 (RGBA input) passes no error on: its error is dropped, so colours hidden
// under transparency never show in visible pixels (docs/TRANSPARENCY.md).
//
// Four translation units share this header: error_diffusion.cc instantiates it for RGB images,
// error_diffusion_rgba.cc for RGBA ones (kAlpha: a transparent pixel's error is masked), and
// error_diffusion_v3.cc and error_diffusion_rgba_v3.cc the same two again for x86-64-v3 (isa.h),
// with DITHER_ED_TARGET (below) on every function here. Apart, the RGB code compiles exactly as
// before the RGBA variant existed; in one unit, twice the instantiations changed GCC's inlining
// choices and made some opaque kernels up to half again slower (sierra with levels:4).
// Everything here has internal linkage (an anonymous namespace): each unit gets its own copy of
// what it uses. Include it nowhere else.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "engine/algorithms.h"
#include "engine/kernels.h"
#include "engine/srgb_cell.h"

// Empty here. The x86-64-v3 units define it as GCC's `target` attribute for x86-64-v3 before
// including this header. It is on every function and lambda below, not only the outermost:
// GCC's `#pragma GCC target` reaches neither templates nor lambdas, and a callee compiled for
// the build is inlined into an x86-64-v3 caller only as GCC's heuristics allow (tried: the
// per-pixel step was left a call, at half the speed). Everything here has internal linkage, so
// no other code ever calls these copies.
#ifndef DITHER_ED_TARGET
#define DITHER_ED_TARGET
#endif

namespace dither::engine::detail {

// Definitions in a header on purpose: they have internal linkage, and each of the four units
// gets its own copy (no ODR question); marking them inline could change what GCC inlines.
// NOLINTBEGIN(misc-definitions-in-headers)
namespace {

using V4 = int32_t __attribute__((vector_size(16)));

constexpr int kPad = 3;            // widest reach of any kernel
constexpr int kLanes = 4;          // R, G, B, unused
constexpr int kPublishEvery = 64;  // pixels between progress updates
// Rows interleaved per thread, by quantiser (measured on an Intel Xeon, FS on a 12 MP photo):
// two rows double levels:2 speed, and three made levels:2 11% and levels:4 11% slower; list
// palettes, whose serial chain is longer (a table read, then the colour's working value), gain
// 9% from three (EGA 144 -> 157 MP/s) and lose from four. The sRGB list path (SrgbListPalette),
// with fewer instructions per pixel, gains from four (EGA, in CPU time, 10-15% over three
// with the same code) and loses from five and six (its state no longer fits the 16 vector
// registers: 20-30% slower).
constexpr int kBandLevels = 2;
constexpr int kBandList = 3;
constexpr int kBandSrgbList = 4;
// Custom kernels (custom.h) must fit the error rows' padding, Row::err (4 rows) and its two
// carries along the current row.
static_assert(kPad >= kMaxKernelReach && kMaxKernelDepth <= 3 && kMaxKernelAhead <= 2);

// A row's progress, alone on its cache line so that publishing it does not disturb neighbours.
struct alignas(64) Progress {
  std::atomic<int> done{0};
};

DITHER_ED_TARGET inline V4 load(const int32_t* p) {
  V4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

DITHER_ED_TARGET inline void store(int32_t* p, V4 v) { std::memcpy(p, &v, sizeof v); }

// Custom kernels run as a dense kernel of a fixed shape: every cell within `reach` columns either
// side on `depth` rows below, and up to two to the right on the current row, is a tap whose
// factor comes at run time; cells the kernel leaves empty get factor 0 and add nothing. Nine
// shapes (reach and depth 1..3) hold every kernel check_custom_kernel() accepts; a kernel runs on
// the smallest that holds it, after the twelve named kernels in the dispatch index.
constexpr size_t kNamedKernels = kKernels.size();
constexpr size_t kCustomShapes = size_t{kMaxKernelReach} * kMaxKernelDepth;

constexpr Kernel dense_shape(int reach, int depth) {
  Kernel k{Algorithm::kCustomKernel, 1, 0, {}};
  for (int dx = 1; dx <= std::min(reach, kMaxKernelAhead); ++dx) {
    k.taps[static_cast<size_t>(k.tap_count++)] = {dx, 0, 0};
  }
  for (int dy = 1; dy <= depth; ++dy) {
    for (int dx = -reach; dx <= reach; ++dx)
      k.taps[static_cast<size_t>(k.tap_count++)] = {dx, dy, 0};
  }
  return k;
}

// The kernel (or custom shape) of dispatch index `i`.
constexpr Kernel kernel_at(size_t i) {
  if (i < kNamedKernels) return kKernels[i];
  const int shape = static_cast<int>(i - kNamedKernels);
  return dense_shape(1 + shape / kMaxKernelDepth, 1 + shape % kMaxKernelDepth);
}

// A kernel's fixed-point factors at strength 1, as fixed_point_weights() computes them (lround of
// a positive value is floor(x + 1/2)), known at compile time.
constexpr int unit_factor(const Kernel& k, size_t tap) {
  const int w = k.taps[tap].weight;
  return (2 * w * (1 << kWeightShift) + k.divisor) / (2 * k.divisor);
}

// A constant as a sum of signed powers of two (non-adjacent form: at most one term per two bits).
struct Terms {
  std::array<int, 8> shift{};
  std::array<int, 8> sign{};
  int count = 0;
};
constexpr Terms terms_of(int f) {
  Terms t;
  for (int bit = 0; f != 0; ++bit, f /= 2) {
    if (f % 2 == 0) continue;
    const int digit = (f % 4 == 3) ? -1 : 1;  // ...11 -> add one and subtract: fewer terms
    t.shift[static_cast<size_t>(t.count)] = bit;
    t.sign[static_cast<size_t>(t.count)] = digit;
    ++t.count;
    f -= digit;
  }
  return t;
}

// e * F with shifts and adds: the same integer as the product (|e| < 2^17, F <= 4096: no term
// overflows), but a few one-cycle instructions where a 32-bit vector multiply takes ten cycles
// on some Intel cores (pmulld), on the serial chain from one pixel's error to the next pixel.
template <int F>
DITHER_ED_TARGET inline V4 times(V4 e) {
  constexpr Terms t = terms_of(F);
  static_assert(t.count <= 8);
  V4 r{};
  [&]<size_t... I>(std::index_sequence<I...>) DITHER_ED_TARGET {
    ((r += t.sign[I] > 0 ? (e << t.shift[I]) : -(e << t.shift[I])), ...);
  }
  (std::make_index_sequence<static_cast<size_t>(t.count)>{});
  return r;
}

// Quantiser policies: choose() writes the three output bytes and returns the chosen colour's
// working value.

// Two levels per channel (the default channels=2): a threshold at the midpoint, which is both the
// prototype's round() in sRGB and the nearest level in linear light.
struct BinaryLevels {
  static constexpr int kBand = kBandLevels;
  DITHER_ED_TARGET V4 choose(V4 v, uint8_t* o) const {
    const V4 chosen = (v >= 32768) & 65535;
    // Lane bytes 0, 4 and 8 of chosen >> 8 are the three output bytes (0 or 255).
    using V16 = uint8_t __attribute__((vector_size(16)));
    const V16 lanes = reinterpret_cast<V16>(chosen >> 8);
    const V16 packed =
        __builtin_shufflevector(lanes, lanes, 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    uint32_t word;
    std::memcpy(&word, &packed, sizeof word);
    std::memcpy(o, &word, 3);
    return chosen;
  }
};

struct TableLevels {
  static constexpr int kBand = kBandLevels;
  const Quantizer* q;
  DITHER_ED_TARGET V4 choose(V4 v, uint8_t* o) const {
    V4 chosen{};
    for (int c = 0; c < 3; ++c) {
      const int level = q->level_of(v[c]);
      o[c] = q->level_output(level);
      chosen[c] = q->level_working(level);
    }
    return chosen;
  }
};

template <class T>
struct ListPalette {
  static constexpr int kBand = kBandList;
  Quantizer::CellTableOf<T> table;
  const Color* colors;
  const V4* working;
  DITHER_ED_TARGET V4 choose(V4 v, uint8_t* o) const {
    const int i = table.nearest(v[0], v[1], v[2]);
    const Color c = colors[i];
    o[0] = c.r;
    o[1] = c.g;
    o[2] = c.b;
    return working[i];
  }
};

// ListPalette<uint8_t> in sRGB mode with a named kernel (palettes of up to 255 colours; the mode
// the benchmark's comparison with Pillow runs in; linear light, the default, keeps ListPalette
// and its table of sample cells): the same colours, in fewer instructions and a shorter serial
// chain. The cell index
// comes from the vector (srgb_cell(), which also clamps, so it starts before the clamp), the
// samples from one four-byte read (srgb_working()) where a pixel follows, and four rows run
// together. A type of its own rather than a branch in ListPalette: the branch changed GCC's
// inlining and register allocation of the whole band loop and made it slower. Custom kernels
// keep ListPalette (fewer instantiations; they are rarely used).
struct SrgbListPalette {
  static constexpr int kBand = kBandSrgbList;
  Quantizer::CellTableOf<uint8_t> table;
  const Color* colors;
  const V4* working;
  static constexpr bool kClamps = true;  // choose() takes v before the clamp (srgb_cell())
  static constexpr bool kSrgbOnly = true;
  DITHER_ED_TARGET V4 choose(V4 v, uint8_t* o) const {
    const size_t cell = srgb_cell(v);
    const uint8_t known =
        std::atomic_ref<uint8_t>(table.colour[cell]).load(std::memory_order_relaxed);
    const size_t i = known != table.kUnknown ? known : static_cast<size_t>(table.at(cell));
    const Color c = colors[i];
    o[0] = c.r;
    o[1] = c.g;
    o[2] = c.b;
    return working[i];
  }
};

// Whether Q::choose() clamps v to 0..65535 itself (then it may be given v unclamped).
template <class Q>
constexpr bool clamps = requires {
  Q::kClamps;
};
// Whether Q runs in sRGB mode only, where a sample's working value is the sample times 257.
template <class Q>
constexpr bool srgb_source = requires {
  Q::kSrgbOnly;
};

// The working values (sample * 257) of the RGB samples at p in sRGB mode, from one four-byte
// read (p[3] must exist; it is ignored): two instructions where looking each sample up in the
// table and assembling the vector took ten.
DITHER_ED_TARGET inline V4 srgb_working(const uint8_t* p) {
#if defined(__SSE4_1__)
  int32_t word;
  std::memcpy(&word, p, sizeof word);
  // Each lane's low two bytes both take the sample: s + 256 * s.
  const __m128i spread = _mm_setr_epi8(0, 0, -1, -1, 1, 1, -1, -1, 2, 2, -1, -1, -1, -1, -1, -1);
  return reinterpret_cast<V4>(_mm_shuffle_epi8(_mm_cvtsi32_si128(word), spread));
#else
  return V4{p[0], p[1], p[2], 0} * 257;
#endif
}

// Shared state of one image being diffused.
struct Job {
  const Image* in = nullptr;
  Image* out = nullptr;
  std::array<int, kMaxTaps> factors{};
  bool serpentine = false;
  int band = 2;  // rows run together by one thread
  int ring_rows = 0;
  int lag = 0;        // pixels row y-1 must be ahead of row y across threads
  int inner_lag = 0;  // pixels the second row of a band trails the first
  size_t row_cells = 0;
  std::vector<int32_t> errors;
  std::unique_ptr<Progress[]> progress;                        // pixels finished, per row
  const std::function<void(int rows)>* source_rows = nullptr;  // see SourceRows (dither.h)
  const std::function<void(int rows)>* rows_done = nullptr;    // one thread only

  DITHER_ED_TARGET int32_t* error_row(int y) {
    return errors.data() + static_cast<size_t>(y % ring_rows) * row_cells + kPad * kLanes;
  }
};

DITHER_ED_TARGET void wait_for(const Progress& progress, int needed) {
  int spins = 0;
  while (progress.done.load(std::memory_order_acquire) < needed) {
    if (++spins > 64) {
      std::this_thread::yield();
      spins = 0;
    }
  }
}

// One row in flight: where it reads and writes, and the error it owes in registers.
//
// Error for pixels to the right travels in carry1/carry2. Error for the rows below collects in a
// window of 2*reach+1 cells per row below, covering x-reach .. x+reach: a cell is loaded once
// when it enters the window and stored once when it leaves, instead of a load and a store per
// tap.
template <int kKernel, class Q, bool kUnit, bool kAlpha>
struct Row {
  static constexpr Kernel K = kernel_at(static_cast<size_t>(kKernel));
  static constexpr int P = K.max_dx();
  static constexpr int D = K.max_dy();
  static constexpr int W = 2 * P + 1;
  const uint8_t* src;
  uint8_t* out;
  std::array<int32_t*, 4> err;  // error rows y .. y+3
  int dir;
  V4 carry1{};  // error owed to the next pixel in the direction of travel
  V4 carry2{};  // ... and to the one after
  std::array<std::array<V4, W>, D> window{};  // [dy-1][k]: cell x-P+k (along dir) of row y+dy
  std::array<V4, static_cast<size_t>(K.tap_count)> factor;  // each tap's factor in every lane

  DITHER_ED_TARGET Row(Job& job, int y) : src(job.in->row(y)), out(job.out->row(y)) {
    dir = (job.serpentine && (y & 1)) ? -1 : 1;
    for (int d = 0; d <= D; ++d) err[static_cast<size_t>(d)] = job.error_row(y + d);
    for (size_t t = 0; t < factor.size(); ++t) factor[t] = V4{} + job.factors[t];
  }

  // The deepest row below is first written by this row: its cells start at zero instead of
  // being loaded, and every cell of it that anyone reads (-P .. width-1+P) is stored by this row,
  // so the ring row needs no clearing.
  DITHER_ED_TARGET static constexpr bool first_touch(int d) { return d + 1 == D; }

  DITHER_ED_TARGET int32_t* cell(int dy, int x) const {
    return err[static_cast<size_t>(dy)] + x * kLanes;
  }

  // Before the first pixel x0: cells x0-P .. x0+P-1 enter the windows.
  DITHER_ED_TARGET void begin(int x0) {
    for (int d = 0; d < D; ++d) {
      for (int k = 0; k < W - 1; ++k)
        window[d][k] = first_touch(d) ? V4{} : load(cell(d + 1, x0 + (k - P) * dir));
    }
  }

  // After the last pixel x1: cells x1-P+1 .. x1+P leave the windows.
  DITHER_ED_TARGET void finish(int x1) {
    for (int d = 0; d < D; ++d) {
      for (int k = 0; k < W - 1; ++k) store(cell(d + 1, x1 + (k - P + 1) * dir), window[d][k]);
    }
  }

  template <size_t... I>
  DITHER_ED_TARGET inline void spread(V4 e, std::index_sequence<I...>) {
    carry1 = carry2;
    carry2 = V4{};
    (spread_tap<I>(e), ...);
  }

  template <size_t I>
  DITHER_ED_TARGET inline void spread_tap(V4 e) {
    constexpr KernelTap tap = K.taps[I];
    V4 share;
    if constexpr (kUnit) {
      // F = f * 2^k: (e * F) >> 12 is exactly (e * f) >> (12 - k), with a smaller f to build
      // from shifts (Floyd-Steinberg's 7/16 becomes (e * 7) >> 4).
      constexpr int F = unit_factor(K, I);
      constexpr int k = F == 0 ? 0 : __builtin_ctz(static_cast<unsigned>(F));
      share = times<(F >> k)>(e) >> (kWeightShift - k);
    } else {
      share = (e * factor[I]) >> kWeightShift;
    }
    if constexpr (tap.dy == 0) {
      if constexpr (tap.dx == 1) {
        carry1 += share;
      } else {
        carry2 += share;
      }
    } else {
      window[tap.dy - 1][P + tap.dx] += share;
    }
  }

  // kInterior: pixel x is not the last of its row (a pixel follows it in memory).
  template <bool kInterior = false>
  DITHER_ED_TARGET inline void step(int x, const Q& q, const std::array<uint16_t, 256>& tw,
                                    int channels) {
    for (int d = 0; d < D; ++d)
      window[d][W - 1] = first_touch(d) ? V4{} : load(cell(d + 1, x + P * dir));
    const uint8_t* p = src + x * channels;
    V4 sample;
    if constexpr (kInterior && srgb_source<Q>) {
      sample = srgb_working(p);
    } else {
      sample = V4{tw[p[0]], tw[p[1]], tw[p[2]], 0};
    }
    V4 v = sample + load(err[0] + x * kLanes) + carry1;
    // A quantiser that clamps for itself starts from v before the clamp, off the serial chain.
    const V4 raw = v;
    v = v < 0 ? 0 : v;
    v = v > kWorkingMax ? kWorkingMax : v;
    V4 e = v - q.choose(clamps<Q> ? raw : v, out + x * channels);
    // A transparent pixel's error becomes zero (choose() writes three bytes: alpha is intact
    // even in place).
    if constexpr (kAlpha) e &= -static_cast<int32_t>(p[3] != 0);
    spread(e, std::make_index_sequence<static_cast<size_t>(K.tap_count)>{});
    for (int d = 0; d < D; ++d) {
      store(cell(d + 1, x - P * dir), window[d][0]);
      for (int k = 0; k < W - 1; ++k) window[d][k] = window[d][k + 1];
    }
  }
};

// Runs rows y .. y + kRows - 1 together, each `inner_lag` pixels behind the one above it, in
// chunks of kPublishEvery steps: one wait and one progress update per chunk, and no bounds
// checks inside the chunks where every row is mid-way.
template <int kKernel, class Q, bool kUnit, bool kAlpha, int kRows>
DITHER_ED_TARGET void run_band(Job& job, const Q& q, const std::array<uint16_t, 256>& tw, int y) {
  const int width = job.in->width;
  const int channels = job.in->channels;
  const Progress* above = y > 0 ? &job.progress[static_cast<size_t>(y - 1)] : nullptr;
  auto rows = [&]<size_t... K>(std::index_sequence<K...>) DITHER_ED_TARGET {
    return std::array<Row<kKernel, Q, kUnit, kAlpha>, kRows>{
        Row<kKernel, Q, kUnit, kAlpha>(job, y + static_cast<int>(K))...};
  }
  (std::make_index_sequence<kRows>{});
  const bool reverse = rows[0].dir < 0;  // only single-row bands run serpentine
  const int lag = job.inner_lag;
  const int spread = (kRows - 1) * lag;
  const int total = width + spread;
  std::atomic<int>& last_done = job.progress[static_cast<size_t>(y + kRows - 1)].done;
  auto x_of = [&](int n) DITHER_ED_TARGET {
    if constexpr (kRows > 1) return n;  // bands of several rows are never serpentine
    return reverse ? width - 1 - n : n;
  };
  for (int i0 = 0; i0 < total; i0 += kPublishEvery) {
    const int i1 = std::min(total, i0 + kPublishEvery);
    if (above != nullptr && i0 < width) wait_for(*above, std::min(width, i1 + job.lag));
    if (i0 > spread && i1 < width) {
      // A local copy whose address never escapes: the output byte stores cannot alias it, so
      // the compiler keeps the rows' state in registers instead of reloading it every pixel.
      auto local = rows;
      const Q local_q = q;
      for (int i = i0; i < i1; ++i) {
        [&]<size_t... K>(std::index_sequence<K...>) DITHER_ED_TARGET {
          (local[K].template step<true>(x_of(i - static_cast<int>(K) * lag), local_q, tw, channels),
           ...);
        }
        (std::make_index_sequence<kRows>{});
      }
      rows = local;
    } else {
      for (int i = i0; i < i1; ++i) {
        [&]<size_t... K>(std::index_sequence<K...>) DITHER_ED_TARGET {
          (
              [&]() DITHER_ED_TARGET {
                const int n = i - static_cast<int>(K) * lag;
                if (n < 0 || n >= width) return;
                if (n == 0) rows[K].begin(x_of(n));
                rows[K].step(x_of(n), q, tw, channels);
                if (n == width - 1) rows[K].finish(x_of(n));
              }(),
              ...);
        }
        (std::make_index_sequence<kRows>{});
      }
    }
    last_done.store(std::clamp(i1 - spread, 0, width), std::memory_order_release);
  }
  for (int k = 0; k < kRows; ++k) {
    job.progress[static_cast<size_t>(y + k)].done.store(width, std::memory_order_release);
  }
}

template <int kKernel, class Q, bool kUnit, bool kAlpha, int kBand>
DITHER_ED_TARGET void run_bands(Job& job, const Q& q, const std::array<uint16_t, 256>& tw,
                                int threads) {
  const int height = job.in->height;
  const int bands = (height + job.band - 1) / job.band;
  auto worker = [&](int first) DITHER_ED_TARGET {
    for (int b = first; b < bands; b += threads) {
      const int y = b * job.band;
      const int count = std::min(job.band, height - y);
      // A band reads only its own source rows (what it owes the rows below goes to `errors`).
      if (job.source_rows != nullptr) (*job.source_rows)(y + count);
      // The error rows this band writes furthest down are first touched here (and written
      // whole, see Row::first_touch); their previous users finished before this thread's
      // previous band did (see ring_rows).
      if (count == kBand) {
        run_band<kKernel, Q, kUnit, kAlpha, kBand>(job, q, tw, y);
      } else {
        for (int r = 0; r < count; ++r) run_band<kKernel, Q, kUnit, kAlpha, 1>(job, q, tw, y + r);
      }
      if (job.rows_done != nullptr) (*job.rows_done)(y + count);
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

template <int kKernel, class Q, bool kUnit, bool kAlpha>
DITHER_ED_TARGET void run_bands_of(Job& job, const Q& q, const std::array<uint16_t, 256>& tw,
                                   int threads) {
  if (job.band == 1) return run_bands<kKernel, Q, kUnit, kAlpha, 1>(job, q, tw, threads);
  return run_bands<kKernel, Q, kUnit, kAlpha, Q::kBand>(job, q, tw, threads);
}

// A named kernel runs with its factors compiled in (kUnit); the dense shapes of custom kernels,
// and named kernels at a strength other than 1 (kernel_run()), read theirs at run time.
template <int kKernel, bool kAlpha, class Q>
DITHER_ED_TARGET void run(Job& job, const Q& q, const std::array<uint16_t, 256>& tw, int threads) {
  constexpr bool kUnit = static_cast<size_t>(kKernel) < kNamedKernels;
  return run_bands_of<kKernel, Q, kUnit, kAlpha>(job, q, tw, threads);
}

template <int kKernel, bool kAlpha>
DITHER_ED_TARGET void dispatch_quantizer(Job& job, const Quantizer& q, int threads) {
  const auto& tw = q.to_working();
  if (q.is_levels() && q.levels() == 2) {
    run<kKernel, kAlpha>(job, BinaryLevels{}, tw, threads);
  } else if (q.is_levels()) {
    run<kKernel, kAlpha>(job, TableLevels{&q}, tw, threads);
  } else {
    std::vector<V4> working(static_cast<size_t>(q.size()));
    for (int i = 0; i < q.size(); ++i) {
      const auto& w = q.working(i);
      working[static_cast<size_t>(i)] = V4{w[0], w[1], w[2], 0};
    }
    if constexpr (static_cast<size_t>(kKernel) < kNamedKernels) {
      if (q.small_cells() && q.space() == ColorSpace::kSrgb) {
        return run<kKernel, kAlpha>(
            job, SrgbListPalette{q.cell_table8(), q.colors(), working.data()}, tw, threads);
      }
    }
    if (q.small_cells()) {
      run<kKernel, kAlpha>(job, ListPalette<uint8_t>{q.cell_table8(), q.colors(), working.data()},
                           tw, threads);
    } else {
      run<kKernel, kAlpha>(job, ListPalette<uint16_t>{q.cell_table16(), q.colors(), working.data()},
                           tw, threads);
    }
  }
}

template <bool kAlpha, size_t... I>
DITHER_ED_TARGET void dispatch_kernel(size_t index, Job& job, const Quantizer& q, int threads,
                                      std::index_sequence<I...>) {
  ((index == I ? dispatch_quantizer<static_cast<int>(I), kAlpha>(job, q, threads) : void()), ...);
}

// What error_diffusion() runs: the dispatch index, the taps that index runs (a named kernel, or
// the dense shape holding a custom one) and their factors.
struct KernelRun {
  size_t index = 0;
  Kernel kernel{};
  std::array<int, kMaxTaps> factors{};
};

// A named kernel whose factors at the options' strength are those at strength 1 runs as itself.
// At any other strength it runs as a custom kernel of the same taps: the dense shape holding it,
// with zero factors in its empty cells, which add nothing. The output is the same integers either
// way; this keeps the named kernels to one compiled variant each (half the instantiations and
// compile time of this header), at the cost of a few empty taps for the rare non-unit strength.
DITHER_ED_TARGET KernelRun kernel_run(const DitherOptions& o) {
  const Kernel* named = kernel_for(o.algorithm);
  if (named != nullptr) {
    const auto factors = fixed_point_weights(*named, o.strength);
    bool unit = true;
    for (size_t t = 0; t < static_cast<size_t>(named->tap_count); ++t) {
      unit = unit && factors[t] == unit_factor(*named, t);
    }
    if (unit) return {static_cast<size_t>(named - kKernels.data()), *named, factors};
  }
  const Kernel custom = named != nullptr ? *named : custom_kernel_taps(*o.kernel);
  const int reach = std::max(1, custom.max_dx());
  const int depth = std::max(1, custom.max_dy());
  KernelRun run;
  run.index = kNamedKernels + static_cast<size_t>((reach - 1) * kMaxKernelDepth + depth - 1);
  run.kernel = kernel_at(run.index);
  run.kernel.divisor = custom.divisor;
  for (int t = 0; t < run.kernel.tap_count; ++t) {
    KernelTap& cell = run.kernel.taps[static_cast<size_t>(t)];
    for (int c = 0; c < custom.tap_count; ++c) {
      const KernelTap& tap = custom.taps[static_cast<size_t>(c)];
      if (tap.dx == cell.dx && tap.dy == cell.dy) cell.weight = tap.weight;
    }
  }
  run.factors = fixed_point_weights(run.kernel, o.strength);
  return run;
}

// The band of the quantiser policy dispatch_quantizer() will choose.
DITHER_ED_TARGET int band_of(const Quantizer& q, size_t kernel) {
  if (q.is_levels()) return q.levels() == 2 ? BinaryLevels::kBand : TableLevels::kBand;
  if (kernel < kNamedKernels && q.small_cells() && q.space() == ColorSpace::kSrgb) {
    return SrgbListPalette::kBand;
  }
  return q.small_cells() ? ListPalette<uint8_t>::kBand : ListPalette<uint16_t>::kBand;
}

// The whole diffusion of `in` into `out` (error_diffusion() in algorithms.h); kAlpha for RGBA.
template <bool kAlpha>
DITHER_ED_TARGET void diffuse(const Image& in, Image& out, const Quantizer& q,
                              const DitherOptions& o, const std::function<void(int rows)>& wait,
                              const std::function<void(int rows)>& done) {
  const KernelRun run = kernel_run(o);
  const Kernel* kernel = &run.kernel;
  Job job;
  job.in = &in;
  job.out = &out;
  job.factors = run.factors;
  job.serpentine = o.serpentine;
  job.band = o.serpentine ? 1 : band_of(q, run.index);
  const int bands = (in.height + job.band - 1) / job.band;
  const int threads = o.serpentine ? 1 : std::clamp(resolve_threads(o.threads), 1, bands);
  job.ring_rows = kernel->max_dy() + job.band * threads + 1;
  job.lag = 2 * kernel->max_dx() + 2;
  job.inner_lag = 2 * kernel->max_dx() + 1;
  job.row_cells = static_cast<size_t>(in.width + 2 * kPad) * kLanes;
  job.errors.assign(job.row_cells * static_cast<size_t>(job.ring_rows), 0);
  job.progress = std::make_unique<Progress[]>(static_cast<size_t>(in.height));
  if (wait) job.source_rows = &wait;
  if (done && threads == 1) job.rows_done = &done;
  dispatch_kernel<kAlpha>(run.index, job, q, threads,
                          std::make_index_sequence<kNamedKernels + kCustomShapes>{});
}

}  // namespace
// NOLINTEND(misc-definitions-in-headers)

// error_diffusion() for RGBA images (error_diffusion_rgba.cc).
void error_diffusion_rgba(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o,
                          const std::function<void(int rows)>& wait,
                          const std::function<void(int rows)>& done);
// The same two compiled for x86-64-v3 (error_diffusion_v3.cc, isa.h), where the build has them.
void error_diffusion_v3(const Image& in, Image& out, const Quantizer& q, const DitherOptions& o,
                        const std::function<void(int rows)>& wait,
                        const std::function<void(int rows)>& done);
void error_diffusion_rgba_v3(const Image& in, Image& out, const Quantizer& q,
                             const DitherOptions& o, const std::function<void(int rows)>& wait,
                             const std::function<void(int rows)>& done);

}  // namespace dither::engine::detail
