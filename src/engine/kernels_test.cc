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

struct Expected {
  Algorithm algorithm;
  int divisor;
  Taps taps;
};

TEST(Kernels, WeightsMatchThePublishedTables) {
  const std::vector<Expected> expected = {
      {Algorithm::kFloydSteinberg, 16, {{{1, 0}, 7}, {{-1, 1}, 3}, {{0, 1}, 5}, {{1, 1}, 1}}},
      {Algorithm::kFalseFloydSteinberg, 8, {{{1, 0}, 3}, {{0, 1}, 3}, {{1, 1}, 2}}},
      {Algorithm::kJarvisJudiceNinke,
       48,
       {{{1, 0}, 7},
        {{2, 0}, 5},
        {{-2, 1}, 3},
        {{-1, 1}, 5},
        {{0, 1}, 7},
        {{1, 1}, 5},
        {{2, 1}, 3},
        {{-2, 2}, 1},
        {{-1, 2}, 3},
        {{0, 2}, 5},
        {{1, 2}, 3},
        {{2, 2}, 1}}},
      {Algorithm::kStucki,
       42,
       {{{1, 0}, 8},
        {{2, 0}, 4},
        {{-2, 1}, 2},
        {{-1, 1}, 4},
        {{0, 1}, 8},
        {{1, 1}, 4},
        {{2, 1}, 2},
        {{-2, 2}, 1},
        {{-1, 2}, 2},
        {{0, 2}, 4},
        {{1, 2}, 2},
        {{2, 2}, 1}}},
      {Algorithm::kBurkes,
       32,
       {{{1, 0}, 8},
        {{2, 0}, 4},
        {{-2, 1}, 2},
        {{-1, 1}, 4},
        {{0, 1}, 8},
        {{1, 1}, 4},
        {{2, 1}, 2}}},
      {Algorithm::kSierra,
       32,
       {{{1, 0}, 5},
        {{2, 0}, 3},
        {{-2, 1}, 2},
        {{-1, 1}, 4},
        {{0, 1}, 5},
        {{1, 1}, 4},
        {{2, 1}, 2},
        {{-1, 2}, 2},
        {{0, 2}, 3},
        {{1, 2}, 2}}},
      {Algorithm::kTwoRowSierra,
       16,
       {{{1, 0}, 4},
        {{2, 0}, 3},
        {{-2, 1}, 1},
        {{-1, 1}, 2},
        {{0, 1}, 3},
        {{1, 1}, 2},
        {{2, 1}, 1}}},
      {Algorithm::kSierraLite, 4, {{{1, 0}, 2}, {{-1, 1}, 1}, {{0, 1}, 1}}},
      {Algorithm::kAtkinson,
       8,
       {{{1, 0}, 1}, {{2, 0}, 1}, {{-1, 1}, 1}, {{0, 1}, 1}, {{1, 1}, 1}, {{0, 2}, 1}}},
      {Algorithm::kStevensonArce,
       200,
       {{{2, 0}, 32},
        {{-3, 1}, 12},
        {{-1, 1}, 26},
        {{1, 1}, 30},
        {{3, 1}, 16},
        {{-2, 2}, 12},
        {{0, 2}, 26},
        {{2, 2}, 12},
        {{-3, 3}, 5},
        {{-1, 3}, 12},
        {{1, 3}, 12},
        {{3, 3}, 5}}},
  };
  for (const auto& e : expected) {
    SCOPED_TRACE(std::string(algorithm_name(e.algorithm)));
    EXPECT_EQ(kernel_for(e.algorithm)->divisor, e.divisor);
    EXPECT_EQ(taps_of(e.algorithm), e.taps);
  }
}

TEST(Kernels, EveryErrorDiffusionAlgorithmHasAKernelThatSpreadsAllItsError) {
  for (const auto& info : algorithms()) {
    const Kernel* k = kernel_for(info.algorithm);
    ASSERT_EQ(k != nullptr, is_error_diffusion(info.algorithm)) << info.name;
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
}

}  // namespace
}  // namespace dither::engine
