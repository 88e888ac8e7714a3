// Error-diffusion kernels: where each algorithm sends a pixel's quantisation error.
//
// Weights are the published integer weights over a divisor (see docs/ENGINE.md for the table and
// its sources). `dx` is relative to the current pixel in the direction of travel (mirrored on
// right-to-left rows of serpentine scans), `dy` is rows below.
//
// For speed and exact reproducibility the engine works in integers: a weight becomes the fixed
// point factor round(weight * strength * 4096 / divisor), and a neighbour receives
// (error * factor) >> 12. `fixed_point_weights` computes those factors; the fast paths and the
// reference implementation in the tests both use it.
#pragma once

#include <array>
#include <string_view>

#include "engine/options.h"

namespace dither {

struct KernelTap {
  int dx;
  int dy;
  int weight;
};

struct Kernel {
  Algorithm algorithm;
  int divisor;
  int tap_count;
  std::array<KernelTap, 12> taps;
  int max_dx() const;  // horizontal reach, 1..3
  int max_dy() const;  // rows below, 1..3
};

inline constexpr int kWeightShift = 12;

// The kernel of an error-diffusion algorithm; nullptr for other algorithms.
const Kernel* kernel_for(Algorithm a);

// Fixed-point factors for `kernel` at `strength` (0..1), in tap order.
std::array<int, 12> fixed_point_weights(const Kernel& kernel, double strength);

}  // namespace dither
