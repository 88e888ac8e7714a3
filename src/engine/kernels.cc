#include "engine/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace dither::engine {

const Kernel* kernel_for(Algorithm a) {
  for (const Kernel& k : kKernels) {
    if (k.algorithm == a) return &k;
  }
  return nullptr;
}

Kernel custom_kernel_taps(const CustomKernel& kernel) {
  Kernel k{Algorithm::kCustomKernel, kernel.divisor, 0, {}};
  for (int y = 0; y < kernel.height; ++y) {
    for (int x = 0; x < kernel.width; ++x) {
      const int w = kernel.at(x, y);
      if (w != 0) k.taps[static_cast<size_t>(k.tap_count++)] = {x - kernel.origin, y, w};
    }
  }
  return k;
}

std::array<int, kMaxTaps> fixed_point_weights(const Kernel& kernel, double strength) {
  std::array<int, kMaxTaps> w{};
  for (int i = 0; i < kernel.tap_count; ++i) {
    const double exact = kernel.taps[static_cast<size_t>(i)].weight * strength *
                         double(1 << kWeightShift) / kernel.divisor;
    w[static_cast<size_t>(i)] = static_cast<int>(std::lround(exact));
  }
  return w;
}

}  // namespace dither::engine
