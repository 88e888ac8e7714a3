// The published kernel weights (../shared FIELD-NOTES table) and their fixed-point factors.
#include "engine/kernels.h"

#include <gtest/gtest.h>

#include <map>
#include <tuple>
#include <vector>

namespace dither::engine {
namespace {

using Taps = std::map<std::pair<int, int>, int>;  // (dx, dy) -> weight

Taps taps_of(Algorithm a) {
  const Kernel* k = kernel_for(a);
  EXPECT_NE(k, nullptr);
  Taps t;
  for (int i = 0; i < k->tap_count; ++i) {
    const auto& tap = k->taps[static_cast<size_t>(i)];
    t[{tap.dx, tap.dy}] = tap.weight;
  }
  return t;
}

// The taps of a kernel written as rows of weights (the published form): row i is dy = i, and
// each row's middle column is dx = 0. Zero weights are no taps.
Taps taps_from_rows(const std::vector<std::vector<int>>& rows) {
  Taps t;
  for (size_t dy = 0; dy < rows.size(); ++dy) {
    const int centre = static_cast<int>(rows[dy].size() / 2);
    for (size_t i = 0; i < rows[dy].size(); ++i) {
      if (rows[dy][i] != 0) t[{static_cast<int>(i) - centre, static_cast<int>(dy)}] = rows[dy][i];
    }
  }
  return t;
}

struct Expected {
  Algorithm algorithm;
  int divisor;
  std::vector<std::vector<int>> rows;  // as taps_from_rows reads them
};

TEST(Kernels, WeightsMatchThePublishedTables) {
  // Each kernel as published: rows from the current pixel's row down, each centred on the current
  // pixel's column (where the first row has 0 for the pixel itself and those left of it).
  const std::vector<Expected> expected = {
      {Algorithm::kFloydSteinberg, 16, {{0, 0, 7}, {3, 5, 1}}},
      {Algorithm::kFalseFloydSteinberg, 8, {{0, 0, 3}, {0, 3, 2}}},
      {Algorithm::kJarvisJudiceNinke, 48, {{0, 0, 0, 7, 5}, {3, 5, 7, 5, 3}, {1, 3, 5, 3, 1}}},
      {Algorithm::kStucki, 42, {{0, 0, 0, 8, 4}, {2, 4, 8, 4, 2}, {1, 2, 4, 2, 1}}},
      {Algorithm::kBurkes, 32, {{0, 0, 0, 8, 4}, {2, 4, 8, 4, 2}}},
      {Algorithm::kSierra, 32, {{0, 0, 0, 5, 3}, {2, 4, 5, 4, 2}, {0, 2, 3, 2, 0}}},
      {Algorithm::kTwoRowSierra, 16, {{0, 0, 0, 4, 3}, {1, 2, 3, 2, 1}}},
      {Algorithm::kSierraLite, 4, {{0, 0, 2}, {1, 1, 0}}},
      {Algorithm::kAtkinson, 8, {{0, 0, 0, 1, 1}, {0, 1, 1, 1, 0}, {0, 0, 1, 0, 0}}},
      {Algorithm::kStevensonArce,
       200,
       {{0, 0, 0, 0, 0, 32, 0},
        {12, 0, 26, 0, 30, 0, 16},
        {0, 12, 0, 26, 0, 12, 0},
        {5, 0, 12, 0, 12, 0, 5}}},
      // Shiau and Fan, US 5,353,127 and SPIE 2658 (1996): the 4-cell and the 5-cell kernel.
      {Algorithm::kShiauFan, 8, {{0, 0, 0, 4, 0}, {1, 1, 2, 0, 0}}},
      {Algorithm::kShiauFan2, 16, {{0, 0, 0, 0, 8, 0, 0}, {1, 1, 2, 4, 0, 0, 0}}},
  };

  size_t kernels = 0;
  for (const auto& info : algorithms()) kernels += kernel_for(info.algorithm) != nullptr;
  EXPECT_EQ(expected.size(), kernels) << "every kernel is checked here";
  EXPECT_EQ(expected.size(), kKernels.size());
  for (const auto& e : expected) {
    SCOPED_TRACE(std::string(algorithm_name(e.algorithm)));
    EXPECT_EQ(kernel_for(e.algorithm)->divisor, e.divisor);
    EXPECT_EQ(taps_of(e.algorithm), taps_from_rows(e.rows));
  }
}

TEST(Kernels, EveryErrorDiffusionAlgorithmHasAKernelThatSpreadsAllItsError) {
  for (const auto& info : algorithms()) {
    const Kernel* k = kernel_for(info.algorithm);
    // A custom kernel comes with the options (custom_matrix_test.cc).
    const bool named =
        is_error_diffusion(info.algorithm) && info.algorithm != Algorithm::kCustomKernel;
    ASSERT_EQ(k != nullptr, named) << info.name;
    if (k == nullptr) continue;
    int sum = 0;
    for (int i = 0; i < k->tap_count; ++i) sum += k->taps[static_cast<size_t>(i)].weight;
    // Atkinson deliberately spreads only 6/8 of the error.
    EXPECT_EQ(sum, info.algorithm == Algorithm::kAtkinson ? 6 : k->divisor) << info.name;
    for (int i = 0; i < k->tap_count; ++i) {
      const auto& tap = k->taps[static_cast<size_t>(i)];
      EXPECT_TRUE(tap.dy > 0 || (tap.dy == 0 && tap.dx > 0)) << "taps only go forward";
    }
  }
}

TEST(Kernels, ReachOfEveryKernelFitsTheEnginesPadding) {
  // The fast path and the reference pad each error row by 3 cells and keep at most 3 rows below.
  for (const Kernel& k : kKernels) {
    SCOPED_TRACE(std::string(algorithm_name(k.algorithm)));
    EXPECT_GE(k.max_dx(), 1);
    EXPECT_LE(k.max_dx(), 3);
    EXPECT_GE(k.max_dy(), 1);
    EXPECT_LE(k.max_dy(), 3);
    EXPECT_LE(k.tap_count, static_cast<int>(k.taps.size()));
  }
  EXPECT_EQ(kernel_for(Algorithm::kShiauFan)->max_dx(), 2);
  EXPECT_EQ(kernel_for(Algorithm::kShiauFan2)->max_dx(), 3);
  EXPECT_EQ(kernel_for(Algorithm::kShiauFan2)->max_dy(), 1);
}

TEST(Kernels, FixedPointFactors) {
  const auto fs = fixed_point_weights(*kernel_for(Algorithm::kFloydSteinberg), 1.0);
  EXPECT_EQ(fs[0], 7 * 256);
  EXPECT_EQ(fs[1], 3 * 256);
  EXPECT_EQ(fs[2], 5 * 256);
  EXPECT_EQ(fs[3], 1 * 256);
  const auto half = fixed_point_weights(*kernel_for(Algorithm::kFloydSteinberg), 0.5);
  EXPECT_EQ(half[0], 7 * 128);
  const auto none = fixed_point_weights(*kernel_for(Algorithm::kStucki), 0.0);
  for (int f : none) EXPECT_EQ(f, 0);
  // 8/42 * 4096 = 780.19 -> 780
  EXPECT_EQ(fixed_point_weights(*kernel_for(Algorithm::kStucki), 1.0)[0], 780);
  // Shiau-Fan's weights are powers of two over a power of two: exact factors.
  EXPECT_EQ(fixed_point_weights(*kernel_for(Algorithm::kShiauFan), 1.0),
            (std::array<int, kMaxTaps>{2048, 512, 512, 1024}));
  EXPECT_EQ(fixed_point_weights(*kernel_for(Algorithm::kShiauFan2), 1.0),
            (std::array<int, kMaxTaps>{2048, 256, 256, 512, 1024}));
}

}  // namespace
}  // namespace dither::engine
