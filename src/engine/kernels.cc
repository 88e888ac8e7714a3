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

std::array<int, 12> fixed_point_weights(const Kernel& kernel, double strength) {
  std::array<int, 12> w{};
  for (int i = 0; i < kernel.tap_count; ++i) {
    const double exact = kernel.taps[static_cast<size_t>(i)].weight * strength *
                         double(1 << kWeightShift) / kernel.divisor;
    w[static_cast<size_t>(i)] = static_cast<int>(std::lround(exact));
  }
  return w;
}

}  // namespace dither::engine
