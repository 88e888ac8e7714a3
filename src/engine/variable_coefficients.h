// The published tables of the two variable-coefficient error diffusions (data, not code).
//
// Both diffuse a pixel's error to three neighbours, in the direction of travel: right, down-left
// and down, with weights chosen by the pixel's tone level (0..255, mirrored: level i and 255 - i
// share a row, so only levels 0..127 are stored). docs/ENGINE.md ("Variable-coefficient error
// diffusion") defines how the engine uses them.
#pragma once

#include <array>
#include <cstdint>

namespace dither::engine::detail {

// Three integer weights and the sum that divides them.
struct VariableCoefficients {
  int right;
  int down_left;
  int down;
  int sum;
};

// V. Ostromoukhov, "A Simple and Efficient Error-Diffusion Algorithm", SIGGRAPH 2001: the table
// of the author's program varcoeffED.c ("version 1 (August 2001), as described in the article",
// var_coefs_tab, whose 256 rows are these 128 and their mirror image); libdither
// (github.com/robertkist/libdither, dither_varerrdiff_data.h) carries the same numbers. Some other
// copies (the dithr crate's, for one) differ from row 23 on; this is the author's program's table.
// Row i serves levels i and 255 - i.
// clang-format off
inline constexpr std::array<VariableCoefficients, 128> kOstromoukhovTable = {{
    {13, 0, 5, 18}, {13, 0, 5, 18}, {21, 0, 10, 31}, {7, 0, 4, 11},  // 0
    {8, 0, 5, 13}, {47, 3, 28, 78}, {23, 3, 13, 39}, {15, 3, 8, 26},  // 4
    {22, 6, 11, 39}, {43, 15, 20, 78}, {7, 3, 3, 13}, {501, 224, 211, 936},  // 8
    {249, 116, 103, 468}, {165, 80, 67, 312}, {123, 62, 49, 234}, {489, 256, 191, 936},  // 12
    {81, 44, 31, 156}, {483, 272, 181, 936}, {60, 35, 22, 117}, {53, 32, 19, 104},  // 16
    {237, 148, 83, 468}, {471, 304, 161, 936}, {3, 2, 1, 6}, {459, 304, 161, 924},  // 20
    {38, 25, 14, 77}, {453, 296, 175, 924}, {225, 146, 91, 462}, {149, 96, 63, 308},  // 24
    {111, 71, 49, 231}, {63, 40, 29, 132}, {73, 46, 35, 154}, {435, 272, 217, 924},  // 28
    {108, 67, 56, 231}, {13, 8, 7, 28}, {213, 130, 119, 462}, {423, 256, 245, 924},  // 32
    {5, 3, 3, 11}, {281, 173, 162, 616}, {141, 89, 78, 308}, {283, 183, 150, 616},  // 36
    {71, 47, 36, 154}, {285, 193, 138, 616}, {13, 9, 6, 28}, {41, 29, 18, 88},  // 40
    {36, 26, 15, 77}, {289, 213, 114, 616}, {145, 109, 54, 308}, {291, 223, 102, 616},  // 44
    {73, 57, 24, 154}, {293, 233, 90, 616}, {21, 17, 6, 44}, {295, 243, 78, 616},  // 48
    {37, 31, 9, 77}, {27, 23, 6, 56}, {149, 129, 30, 308}, {299, 263, 54, 616},  // 52
    {75, 67, 12, 154}, {43, 39, 6, 88}, {151, 139, 18, 308}, {303, 283, 30, 616},  // 56
    {38, 36, 3, 77}, {305, 293, 18, 616}, {153, 149, 6, 308}, {307, 303, 6, 616},  // 60
    {1, 1, 0, 2}, {101, 105, 2, 208}, {49, 53, 2, 104}, {95, 107, 6, 208},  // 64
    {23, 27, 2, 52}, {89, 109, 10, 208}, {43, 55, 6, 104}, {83, 111, 14, 208},  // 68
    {5, 7, 1, 13}, {172, 181, 37, 390}, {97, 76, 22, 195}, {72, 41, 17, 130},  // 72
    {119, 47, 29, 195}, {4, 1, 1, 6}, {4, 1, 1, 6}, {4, 1, 1, 6},  // 76
    {4, 1, 1, 6}, {4, 1, 1, 6}, {4, 1, 1, 6}, {4, 1, 1, 6},  // 80
    {4, 1, 1, 6}, {4, 1, 1, 6}, {65, 18, 17, 100}, {95, 29, 26, 150},  // 84
    {185, 62, 53, 300}, {30, 11, 9, 50}, {35, 14, 11, 60}, {85, 37, 28, 150},  // 88
    {55, 26, 19, 100}, {80, 41, 29, 150}, {155, 86, 59, 300}, {5, 3, 2, 10},  // 92
    {5, 3, 2, 10}, {5, 3, 2, 10}, {5, 3, 2, 10}, {5, 3, 2, 10},  // 96
    {5, 3, 2, 10}, {5, 3, 2, 10}, {5, 3, 2, 10}, {5, 3, 2, 10},  // 100
    {5, 3, 2, 10}, {5, 3, 2, 10}, {5, 3, 2, 10}, {5, 3, 2, 10},  // 104
    {305, 176, 119, 600}, {155, 86, 59, 300}, {105, 56, 39, 200}, {80, 41, 29, 150},  // 108
    {65, 32, 23, 120}, {55, 26, 19, 100}, {335, 152, 113, 600}, {85, 37, 28, 150},  // 112
    {115, 48, 37, 200}, {35, 14, 11, 60}, {355, 136, 109, 600}, {30, 11, 9, 50},  // 116
    {365, 128, 107, 600}, {185, 62, 53, 300}, {25, 8, 7, 40}, {95, 29, 26, 150},  // 120
    {385, 112, 103, 600}, {65, 18, 17, 100}, {395, 104, 101, 600}, {4, 1, 1, 6},  // 124
}};
// clang-format on

// B. Zhou and X. Fang, "Improving mid-tone quality of variable-coefficient error diffusion using
// threshold modulation", SIGGRAPH 2003: the key levels, whose coefficients the other levels
// interpolate linearly (each key's weights normalised by its sum). These are the key rows of the
// authors' program (tmed.cpp, "By Zhou, BingFeng and Fang, XiFeng", Peking University,
// 2003.4.25, github.com/cczbf/TMED; libdither's zhoufang_coef has the same rows): its table is
// exactly the linear interpolation between them (to its six printed decimals).
struct ZhouFangKey {
  int level;
  VariableCoefficients c;
};
inline constexpr std::array<ZhouFangKey, 19> kZhouFangKeys = {{
    {0, {13, 0, 5, 18}},
    {1, {1300249, 0, 499250, 1799499}},
    {2, {214114, 287, 99357, 313758}},
    {3, {351854, 0, 199965, 551819}},
    {4, {801100, 0, 490999, 1292099}},
    {10, {704075, 297466, 303694, 1305235}},
    {22, {46613, 31917, 21469, 99999}},
    {32, {47482, 30617, 21900, 99999}},
    {40, {45959, 24089, 29950, 99998}},
    {44, {43024, 42131, 14826, 99981}},
    {64, {36411, 43219, 20369, 99999}},
    {72, {38477, 53843, 7678, 99998}},
    {77, {40503, 51547, 7948, 99998}},
    {85, {35865, 34108, 30026, 99999}},
    {95, {34117, 36899, 28983, 99999}},
    {102, {35132, 36059, 28807, 99998}},
    {107, {16477, 18810, 14712, 49999}},
    {112, {33360, 37954, 28685, 99999}},
    {127, {35269, 36066, 28664, 99999}},
}};

// Zhou and Fang's threshold-modulation strength per level 0..127, in percent: the interpolated
// table of the same program (m_lpRandomScale; libdither's rand_scale). Level i serves i and
// 255 - i.
// clang-format off
inline constexpr std::array<uint8_t, 128> kZhouFangModulation = {{
      0,   0,   1,   2,   3,   3,   4,   5,   6,   6,   7,   8,   9,   9,  10,  11,  // 0
     12,  12,  13,  14,  15,  15,  16,  17,  18,  18,  19,  20,  21,  21,  22,  23,  // 16
     24,  24,  25,  26,  27,  27,  28,  29,  30,  31,  32,  33,  34,  34,  35,  36,  // 32
     37,  38,  38,  39,  40,  41,  42,  42,  43,  44,  45,  46,  46,  47,  48,  49,  // 48
     50,  53,  56,  59,  62,  65,  68,  71,  75,  78,  81,  84,  87,  90,  93,  96,  // 64
    100, 100, 100, 100, 100, 100,  91,  83,  75,  66,  58,  50,  41,  33,  25,  17,  // 80
     21,  26,  31,  35,  40,  45,  50,  54,  58,  62,  66,  70,  71,  73,  75,  77,  // 96
     79,  80,  81,  83,  84,  86,  87,  88,  90,  91,  93,  94,  95,  97,  98, 100,  // 112
}};
// clang-format on

// Zhou and Fang's normalised weights (right, down-left, down) of level 0..127: a key level's own
// weights divided by their sum, else the linear interpolation between the neighbouring keys k0 <
// level < k1, ((k1 - level) * w0 + (level - k0) * w1) / (k1 - k0), in doubles in that order.
inline std::array<double, 3> zhou_fang_weights(int level) {
  auto normalised = [](const VariableCoefficients& c) {
    const double sum = c.sum;
    return std::array<double, 3>{c.right / sum, c.down_left / sum, c.down / sum};
  };
  size_t k1 = 0;
  while (kZhouFangKeys[k1].level < level) ++k1;
  if (kZhouFangKeys[k1].level == level) return normalised(kZhouFangKeys[k1].c);
  const ZhouFangKey& a = kZhouFangKeys[k1 - 1];
  const ZhouFangKey& b = kZhouFangKeys[k1];
  const std::array<double, 3> w0 = normalised(a.c);
  const std::array<double, 3> w1 = normalised(b.c);
  std::array<double, 3> w{};
  for (size_t i = 0; i < 3; ++i) {
    w[i] = ((b.level - level) * w0[i] + (level - a.level) * w1[i]) / (b.level - a.level);
  }
  return w;
}

}  // namespace dither::engine::detail
