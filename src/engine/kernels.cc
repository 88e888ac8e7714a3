#include "engine/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace dither {

namespace {

constexpr std::array<Kernel, 10> kKernels = {{
    {Algorithm::kFloydSteinberg, 16, 4, {{{1, 0, 7}, {-1, 1, 3}, {0, 1, 5}, {1, 1, 1}}}},
    {Algorithm::kFalseFloydSteinberg, 8, 3, {{{1, 0, 3}, {0, 1, 3}, {1, 1, 2}}}},
    {Algorithm::kJarvisJudiceNinke,
     48,
     12,
     {{{1, 0, 7}, {2, 0, 5}, {-2, 1, 3}, {-1, 1, 5}, {0, 1, 7}, {1, 1, 5}, {2, 1, 3}, {-2, 2, 1},
       {-1, 2, 3}, {0, 2, 5}, {1, 2, 3}, {2, 2, 1}}}},
    {Algorithm::kStucki,
     42,
     12,
     {{{1, 0, 8}, {2, 0, 4}, {-2, 1, 2}, {-1, 1, 4}, {0, 1, 8}, {1, 1, 4}, {2, 1, 2}, {-2, 2, 1},
       {-1, 2, 2}, {0, 2, 4}, {1, 2, 2}, {2, 2, 1}}}},
    {Algorithm::kBurkes,
     32,
     7,
     {{{1, 0, 8}, {2, 0, 4}, {-2, 1, 2}, {-1, 1, 4}, {0, 1, 8}, {1, 1, 4}, {2, 1, 2}}}},
    {Algorithm::kSierra,
     32,
     10,
     {{{1, 0, 5}, {2, 0, 3}, {-2, 1, 2}, {-1, 1, 4}, {0, 1, 5}, {1, 1, 4}, {2, 1, 2}, {-1, 2, 2},
       {0, 2, 3}, {1, 2, 2}}}},
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
     {{{2, 0, 32}, {-3, 1, 12}, {-1, 1, 26}, {1, 1, 30}, {3, 1, 16}, {-2, 2, 12}, {0, 2, 26},
       {2, 2, 12}, {-3, 3, 5}, {-1, 3, 12}, {1, 3, 12}, {3, 3, 5}}}},
}};

}  // namespace

int Kernel::max_dx() const {
  int m = 0;
  for (int i = 0; i < tap_count; ++i) m = std::max(m, std::abs(taps[static_cast<size_t>(i)].dx));
  return m;
}

int Kernel::max_dy() const {
  int m = 0;
  for (int i = 0; i < tap_count; ++i) m = std::max(m, taps[static_cast<size_t>(i)].dy);
  return m;
}

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

}  // namespace dither
