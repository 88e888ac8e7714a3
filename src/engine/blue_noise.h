// The blue-noise threshold mask: a 64x64 void-and-cluster array (Ulichney 1993), generated in code.
//
// Nothing is stored in the repository: the mask is computed from a fixed seed the first time it
// is needed (a few tens of milliseconds) and cached for the life of the process. The generator is
// exact integer arithmetic apart from the Gaussian weights, which are rounded to integers once,
// so the mask is the same on every run and machine.
//
//   const ThresholdMap& m = blue_noise_map();   // ranks 0..4095
//   int r = m.rank(x, y);
#pragma once

#include <cstdint>

#include "engine/threshold_maps.h"

namespace dither::engine::detail {

// A `size` x `size` void-and-cluster rank array (size a power of two, 4..256) for a toroidal
// Gaussian filter of deviation `sigma`, grown from a random initial pattern drawn from `seed`.
ThresholdMap void_and_cluster(int size, double sigma, uint64_t seed);

// The engine's mask: void_and_cluster(64, 1.5, kBlueNoiseSeed), built once; thread-safe.
inline constexpr uint64_t kBlueNoiseSeed = 0x5eed'b1de'0015'e001;
const ThresholdMap& blue_noise_map();

}  // namespace dither::engine::detail
