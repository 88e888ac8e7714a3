// Error-diffusion kernels: where each algorithm sends a pixel's quantisation error.
//
// Weights are the published integer weights over a divisor (see docs/ENGINE.md for the table and
// its sources), or a caller's (kCustomKernel, docs/CUSTOM.md). `dx` is relative to the current
// pixel in the direction of travel (mirrored on right-to-left rows of serpentine scans), `dy` is
// rows below.
//
// For speed and exact reproducibility the engine works in integers: a weight becomes the fixed
// point factor round(weight * strength * 4096 / divisor), and a neighbour receives
// (error * factor) >> 12. `fixed_point_weights` computes those factors; the fast paths and the
// reference implementation in the tests both use it.
#pragma once

#include <algorithm>
#include <array>
#include <cstdlib>
#include <string_view>

#include "engine/options.h"

namespace dither::engine {

struct KernelTap {
  int dx;
  int dy;
  int weight;
};

// Room for the largest kernel: a custom one's every cell within its limits (custom.h), two on
// the current row and 7 on each of 3 rows below.
inline constexpr int kMaxTaps = kMaxKernelAhead + (2 * kMaxKernelReach + 1) * kMaxKernelDepth;

struct Kernel {
  Algorithm algorithm;
  int divisor;
  int tap_count;
  std::array<KernelTap, kMaxTaps> taps;
  constexpr int max_dx() const {  // horizontal reach, 0..3
    int m = 0;
    for (int i = 0; i < tap_count; ++i) {
      const int dx = taps[static_cast<size_t>(i)].dx;  // std::abs is not constexpr before C++23
      m = std::max(m, dx < 0 ? -dx : dx);
    }
    return m;
  }
  constexpr int max_dy() const {  // rows below, 0..3
    int m = 0;
    for (int i = 0; i < tap_count; ++i) m = std::max(m, taps[static_cast<size_t>(i)].dy);
    return m;
  }
};

inline constexpr int kWeightShift = 12;

// Every kernel, in the order of the Algorithm enum's error-diffusion entries.
inline constexpr std::array<Kernel, 12> kKernels = {{
    {Algorithm::kFloydSteinberg, 16, 4, {{{1, 0, 7}, {-1, 1, 3}, {0, 1, 5}, {1, 1, 1}}}},
    {Algorithm::kFalseFloydSteinberg, 8, 3, {{{1, 0, 3}, {0, 1, 3}, {1, 1, 2}}}},
    {Algorithm::kJarvisJudiceNinke,
     48,
     12,
     {{{1, 0, 7},
       {2, 0, 5},
       {-2, 1, 3},
       {-1, 1, 5},
       {0, 1, 7},
       {1, 1, 5},
       {2, 1, 3},
       {-2, 2, 1},
       {-1, 2, 3},
       {0, 2, 5},
       {1, 2, 3},
       {2, 2, 1}}}},
    {Algorithm::kStucki,
     42,
     12,
     {{{1, 0, 8},
       {2, 0, 4},
       {-2, 1, 2},
       {-1, 1, 4},
       {0, 1, 8},
       {1, 1, 4},
       {2, 1, 2},
       {-2, 2, 1},
       {-1, 2, 2},
       {0, 2, 4},
       {1, 2, 2},
       {2, 2, 1}}}},
    {Algorithm::kBurkes,
     32,
     7,
     {{{1, 0, 8}, {2, 0, 4}, {-2, 1, 2}, {-1, 1, 4}, {0, 1, 8}, {1, 1, 4}, {2, 1, 2}}}},
    {Algorithm::kSierra,
     32,
     10,
     {{{1, 0, 5},
       {2, 0, 3},
       {-2, 1, 2},
       {-1, 1, 4},
       {0, 1, 5},
       {1, 1, 4},
       {2, 1, 2},
       {-1, 2, 2},
       {0, 2, 3},
       {1, 2, 2}}}},
    {Algorithm::kTwoRowSierra,
     16,
     7,
     {{{1, 0, 4}, {2, 0, 3}, {-2, 1, 1}, {-1, 1, 2}, {0, 1, 3}, {1, 1, 2}, {2, 1, 1}}}},
    {Algorithm::kSierraLite, 4, 3, {{{1, 0, 2}, {-1, 1, 1}, {0, 1, 1}}}},
    {Algorithm::kAtkinson,
     8,
     6,
     {{{1, 0, 1}, {2, 0, 1}, {-1, 1, 1}, {0, 1, 1}, {1, 1, 1}, {0, 2, 1}}}},
    {Algorithm::kStevensonArce,
     200,
     12,
     {{{2, 0, 32},
       {-3, 1, 12},
       {-1, 1, 26},
       {1, 1, 30},
       {3, 1, 16},
       {-2, 2, 12},
       {0, 2, 26},
       {2, 2, 12},
       {-3, 3, 5},
       {-1, 3, 12},
       {1, 3, 12},
       {3, 3, 5}}}},
    // Shiau and Fan (US 5,353,127; SPIE 2658, 1996): all error to the right and the row below,
    // with a long tail to the left that breaks up Floyd-Steinberg's worms.
    {Algorithm::kShiauFan, 8, 4, {{{1, 0, 4}, {-2, 1, 1}, {-1, 1, 1}, {0, 1, 2}}}},
    {Algorithm::kShiauFan2, 16, 5, {{{1, 0, 8}, {-3, 1, 1}, {-2, 1, 1}, {-1, 1, 2}, {0, 1, 4}}}},
}};

// The kernel of a named error-diffusion algorithm; nullptr for other algorithms and for
// kCustomKernel, whose kernel is in the options (custom_kernel_taps).
const Kernel* kernel_for(Algorithm a);

// A custom kernel as taps: its non-zero weights, row by row, left to right, over its divisor.
// The kernel must pass check_custom_kernel().
Kernel custom_kernel_taps(const CustomKernel& kernel);

// Fixed-point factors for `kernel` at `strength` (0..1), in tap order.
std::array<int, kMaxTaps> fixed_point_weights(const Kernel& kernel, double strength);

}  // namespace dither::engine
