// Custom kernels and matrices (custom.h): the JSON parser's every rule and message, the canonical
// form, and the engine against the plain reference and against the built-in kernels and maps
// they can restate, byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "engine/custom.h"
#include "engine/dither.h"
#include "engine/kernels.h"
#include "engine/testing/reference.h"
#include "engine/testing/test_images.h"
#include "engine/threshold_maps.h"

namespace dither::engine {
namespace {

CustomKernel kernel(std::string_view json) {
  Result<CustomKernel> k = parse_custom_kernel(json);
  EXPECT_TRUE(k.ok()) << json << ": " << (k ? "" : k.error().message);
  return k ? *k : CustomKernel{};
}

std::string kernel_error(std::string_view json) {
  Result<CustomKernel> k = parse_custom_kernel(json);
  return k ? "accepted: " + to_json(*k) : k.error().message;
}

std::string matrix_error(std::string_view json) {
  Result<CustomMatrix> m = parse_custom_matrix(json);
  return m ? "accepted: " + to_json(*m) : m.error().message;
}

// Rows of a JSON array from a grid of numbers.
std::string rows_text(const std::vector<std::vector<int>>& rows) {
  std::string out = "[";
  for (size_t y = 0; y < rows.size(); ++y) {
    out += y ? ",[" : "[";
    for (size_t x = 0; x < rows[y].size(); ++x) out += (x ? "," : "") + std::to_string(rows[y][x]);
    out += "]";
  }
  return out + "]";
}

// A named kernel restated as a custom one: its taps on a 7-wide grid centred on the pixel.
std::string as_custom_json(const Kernel& k) {
  std::vector<std::vector<int>> rows(static_cast<size_t>(k.max_dy() + 1), std::vector<int>(7, 0));
  for (int t = 0; t < k.tap_count; ++t) {
    const KernelTap& tap = k.taps[static_cast<size_t>(t)];
    rows[static_cast<size_t>(tap.dy)][static_cast<size_t>(tap.dx + 3)] = tap.weight;
  }
  return R"({"rows":)" + rows_text(rows) + R"(,"divisor":)" + std::to_string(k.divisor) + "}";
}

std::vector<Palette> palettes() {
  return {Palette::uniform_levels(2), Palette::uniform_levels(5),
          Palette::from_colors(*named_palette("ega")),
          Palette::from_colors({{255, 0, 0}, {0, 0, 255}, {250, 250, 240}, {20, 90, 30}})};
}

TEST(CustomKernel, ReadsBothFormsIntoOneCanonicalShape) {
  const CustomKernel fs = kernel("[[0,0,7],[3,5,1]]");
  EXPECT_EQ(fs.width, 3);
  EXPECT_EQ(fs.height, 2);
  EXPECT_EQ(fs.origin, 1);
  EXPECT_EQ(fs.divisor, 16);
  EXPECT_EQ(fs.weights, (std::vector<int>{0, 0, 7, 3, 5, 1}));
  EXPECT_EQ(to_json(fs), "[[0,0,7],[3,5,1]]");
  for (const char* same :
       {R"({"rows": [[0,0,7],[3,5,1]], "divisor": 16, "origin": 1})",
        R"({"origin":1,"rows":[[0,0,7],[3,5,1]]})", " [ [0, 0, 7],\n   [3, 5, 1] ]\n",
        "[[0,0,7.0],[3,5,1e0]]", "[[0,0,0,7,0],[0,3,5,1,0],[0,0,0,0,0]]",
        R"({"rows":[[0,0,7,0],[3,5,1,0]],"origin":1,"divisor":16.0})"}) {
    SCOPED_TRACE(same);
    EXPECT_EQ(kernel(same), fs);
    EXPECT_EQ(to_json(kernel(same)), "[[0,0,7],[3,5,1]]");
  }
}

TEST(CustomKernel, CanonicalTextIsCentredCutAndNamesTheDivisorOnlyWhenItIsNotTheSum) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      // Shiau-Fan: the origin is not the middle of the rows given.
      {R"({"rows":[[0,0,0,4],[1,1,2,0]],"origin":2})", "[[0,0,0,4,0],[1,1,2,0,0]]"},
      // Atkinson spreads 6/8.
      {R"({"rows":[[0,0,1,1],[1,1,1,0],[0,1,0,0]],"divisor":8,"origin":1})",
       R"({"rows":[[0,0,0,1,1],[0,1,1,1,0],[0,0,1,0,0]],"divisor":8})"},
      {"[[0,1]]", "[[0,0,1]]"},  // one row, error to the right only
      {"[[0],[1]]", "[[0],[1]]"},
      {R"({"rows":[[0,0,14],[6,10,2]],"divisor":64})",
       R"({"rows":[[0,0,14],[6,10,2]],"divisor":64})"},
      {R"({"rows":[[0,0,14],[6,10,2]],"divisor":32})", "[[0,0,14],[6,10,2]]"},  // not reduced
  };
  for (const auto& [given, canonical] : cases) {
    SCOPED_TRACE(given);
    const CustomKernel k = kernel(given);
    EXPECT_EQ(to_json(k), canonical);
    EXPECT_EQ(kernel(canonical), k) << "the canonical text reads back as the same kernel";
    EXPECT_EQ(k.origin, (k.width - 1) / 2);
  }
}

TEST(CustomKernel, EveryRuleHasItsMessage) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[[0,0,7],[3,5,1,0]]", "row 2 has 4 entries, row 1 has 3"},
      {R"({"rows":[[0,0,7],[3,5,2]],"divisor":16})",
       "weights must sum to at most the divisor (17 > 16): more would amplify the error"},
      {"[[0,0,7],[3,5,1]", "not valid JSON: ',' or ']' expected at byte 17"},
      {"", "not valid JSON: a value is missing at byte 1"},
      {"[[0,0,7]] x", "not valid JSON: unexpected text after the value at byte 11"},
      {"[[0,0,'7']]", "not valid JSON: unexpected character at byte 7"},
      {"[[[[[[[[[[1]]]]]]]]]]", "not valid JSON: nested too deep at byte 10"},
      {"7", R"(not a JSON array of rows or an object {"rows": [...], "divisor": D, "origin": O})"},
      {"[]", "no rows: give at least one row of one entry"},
      {"[[]]", "row 1 is empty"},
      {"[[0,0,1],7]", "not a JSON array of rows: row 2 is 7"},
      {"[[0,0,7.5],[3,5,1]]", "row 1, entry 3 is not a whole number from 0 to 65536: 7.5"},
      {"[[0,0,-7],[3,5,1]]", "row 1, entry 3 is not a whole number from 0 to 65536: -7"},
      {R"([[0,0,"7"],[3,5,1]])", "row 1, entry 3 is not a whole number from 0 to 65536: \"7\""},
      {"[[0,0,65537]]", "row 1, entry 3 is not a whole number from 0 to 65536: 65537"},
      {"[[0,1,7],[3,5,1]]",
       "the first row must be 0 up to the current pixel (origin 1), whose error is spent: row 1, "
       "entry 2 is 1"},
      {"[[0,0,0],[0,0,0]]", "no weight is above 0: the kernel would diffuse nothing"},
      {"{}", "the object has no \"rows\""},
      {R"({"rows":[[0,0,1]],"scale":2})",
       "unknown field \"scale\" (a kernel object has rows, divisor and origin)"},
      {R"({"rows":[[0,0,1]],"rows":[[0,0,1]]})", "the field \"rows\" is given twice"},
      {R"({"rows":[[0,0,1]],"divisor":0})",
       "the divisor must be a whole number from 1 to 65536, got 0"},
      {R"({"rows":[[0,0,1]],"divisor":65537})",
       "the divisor must be a whole number from 1 to 65536, got 65537"},
      {R"({"rows":[[0,0,1]],"divisor":"16"})",
       "the divisor must be a whole number from 1 to 65536, got \"16\""},
      {R"({"rows":[[0,0,1]],"origin":3})",
       "the origin must be a column of the first row, 0 to 2, got 3"},
      {R"({"rows":[[0,0,1]],"origin":-1})",
       "the origin must be a column of the first row, 0 to 2, got -1"},
      {"[[0,0,60000],[0,6000,0]]",
       "the weights sum to 66000; the divisor (their sum) is at most 65536"},
      // The reach limits (kernels.h): 2 ahead on the current row, 3 either side, 3 rows below.
      {"[[0,0,0,0,1,1,1]]",
       "reaches 3 columns right of the current pixel on its own row; at most 2"},
      {"[[0,0,0,0,0,1,0,0,0],[1,0,0,0,0,0,0,0,0]]",
       "reaches 4 columns left of the current pixel; at most 3"},
      {"[[0,0,0,0,0,1,0,0,0],[0,0,0,0,0,0,0,0,1]]",
       "reaches 4 columns right of the current pixel; at most 3"},
      {"[[0,0,1],[0,0,0],[0,0,0],[0,0,0],[0,1,0]]",
       "reaches 4 rows below the current pixel; at most 3"},
  };
  for (const auto& [given, message] : cases) EXPECT_EQ(kernel_error(given), message) << given;
  const std::string long_text = "[[0,0,1]]" + std::string(kMaxKernelText - 8, ' ');
  EXPECT_EQ(kernel_error(long_text), "the text is 4097 bytes; at most 4096");
  EXPECT_TRUE(parse_custom_kernel(long_text.substr(0, kMaxKernelText)).ok());
}

TEST(CustomKernel, TheLargestKernelTheEngineRunsIsAccepted) {
  // 2 ahead, 3 either side on 3 rows below, every cell used, zero columns beyond ignored.
  const CustomKernel k =
      kernel("[[0,0,0,0,0,1,1,0,0],[0,1,1,1,1,1,1,1,0],[0,1,1,1,1,1,1,1,0],[0,1,1,1,1,1,1,1,0]]");
  EXPECT_EQ(k.width, 7);
  EXPECT_EQ(k.height, 4);
  EXPECT_EQ(custom_kernel_taps(k).tap_count, 23);
  EXPECT_EQ(kMaxTaps, 23);
}

TEST(CustomKernel, ValidateNeedsTheKernelForItsAlgorithmOnly) {
  DitherOptions o;
  o.algorithm = Algorithm::kCustomKernel;
  EXPECT_EQ(validate(o).error().message,
            "algorithm custom-kernel needs the option kernel, e.g. [[0,0,7],[3,5,1]]");
  o.kernel = CustomKernel{3, 2, 1, 16, {0, 0, 7, 3, 5, 2}};
  EXPECT_EQ(
      validate(o).error().message,
      "kernel: weights must sum to at most the divisor (17 > 16): more would amplify the error");
  o.kernel = CustomKernel{3, 2, 1, 16, {0, 0, 7, 3, 5}};
  EXPECT_EQ(validate(o).error().message,
            "kernel: the rows must all have the same number of entries, at least one");
  o.kernel = kernel("[[0,0,7],[3,5,1]]");
  EXPECT_TRUE(validate(o).ok());
  o.algorithm = Algorithm::kFloydSteinberg;
  o.kernel = CustomKernel{};  // not used by other algorithms
  EXPECT_TRUE(validate(o).ok());
  o.algorithm = Algorithm::kCustomMatrix;
  EXPECT_EQ(validate(o).error().message,
            "algorithm custom-matrix needs the option matrix, e.g. [[0,2],[3,1]]");
  o.matrix = CustomMatrix{2, 1, {0, 5000}};
  EXPECT_EQ(validate(o).error().message,
            "matrix: ranks must be whole numbers from 0 to 4095, got 5000");
  o.matrix = CustomMatrix{65, 1, std::vector<int>(65, 0)};
  EXPECT_EQ(validate(o).error().message,
            "matrix: a matrix is 1x1 to 64x64, all rows the same length");
  o.matrix = *parse_custom_matrix("[[0,2],[3,1]]");
  EXPECT_TRUE(validate(o).ok());
  DitherOptions missing;
  missing.algorithm = Algorithm::kCustomKernel;
  EXPECT_FALSE(
      dither_image(testing::flat(3, 3, 9, 9, 9), Palette::uniform_levels(2), missing).ok());
}

TEST(CustomMatrix, ReadsRowsAndRefusesWhatIsNotAMatrix) {
  const CustomMatrix m = *parse_custom_matrix(" [[0, 2],\n  [3, 1]] ");
  EXPECT_EQ(m.width, 2);
  EXPECT_EQ(m.height, 2);
  EXPECT_EQ(m.levels(), 4);
  EXPECT_EQ(to_json(m), "[[0,2],[3,1]]");
  EXPECT_EQ(parse_custom_matrix("[[0,10,20]]")->levels(), 21) << "gaps are allowed";
  EXPECT_EQ(parse_custom_matrix("[[0]]")->levels(), 1);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[[0,2],[3]]", "row 2 has 1 entry, row 1 has 2"},
      {R"({"rows":[[0]]})", "not a JSON array of rows"},
      {"[0,1]", "not a JSON array of rows: row 1 is 0"},
      {"[]", "no rows: give at least one row of one entry"},
      {"[[0],[]]", "row 2 is empty"},
      {"[[0,4096]]", "row 1, entry 2 is not a whole number from 0 to 4095: 4096"},
      {"[[0,-1]]", "row 1, entry 2 is not a whole number from 0 to 4095: -1"},
      {"[[0,0.5]]", "row 1, entry 2 is not a whole number from 0 to 4095: 0.5"},
      {"[[0,1]", "not valid JSON: ',' or ']' expected at byte 7"},
  };
  for (const auto& [given, message] : cases) EXPECT_EQ(matrix_error(given), message) << given;
  std::vector<std::vector<int>> rows(64, std::vector<int>(65, 0));
  EXPECT_EQ(matrix_error(rows_text(rows)), "row 1 has 65 entries; at most 64");
  rows.assign(65, std::vector<int>(1, 0));
  EXPECT_EQ(matrix_error(rows_text(rows)), "65 rows; at most 64");
  EXPECT_EQ(matrix_error(std::string(kMaxMatrixText + 1, ' ')),
            "the text is 32769 bytes; at most 32768");
}

TEST(CustomMatrix, A64By64PermutationFitsTheTextLimit) {
  std::vector<int> ranks(64 * 64);
  std::iota(ranks.begin(), ranks.end(), 0);
  std::shuffle(ranks.begin(), ranks.end(), std::mt19937(5));
  const std::string text = to_json(CustomMatrix{64, 64, ranks});
  EXPECT_LE(text.size(), kMaxMatrixText);
  const Result<CustomMatrix> m = parse_custom_matrix(text);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->levels(), 4096);
  EXPECT_EQ(m->ranks, ranks);
}

// Every named kernel restated as a custom one gives that kernel's bytes: the custom path runs the
// same arithmetic on a dense shape, whatever the shape.
TEST(CustomKernelEngine, RestatedNamedKernelsGiveTheirBytes) {
  const Image photo = testing::synthetic_photo(41, 29, 4);
  int turn = 0;
  for (const Kernel& named : kKernels) {
    const CustomKernel custom = kernel(as_custom_json(named));
    for (const Palette& p : palettes()) {
      // Two of the four variants each time, in turn.
      for (int variant : {turn % 4, (turn + 1) % 4}) {
        DitherOptions a;
        a.algorithm = named.algorithm;
        a.serpentine = variant & 1;
        a.color_space = (variant & 2) ? ColorSpace::kLinear : ColorSpace::kSrgb;
        a.strength = variant == 3 ? 0.7 : 1.0;
        DitherOptions b = a;
        b.algorithm = Algorithm::kCustomKernel;
        b.kernel = custom;
        for (int threads : {1, 2, 3}) {
          a.threads = b.threads = threads;
          ASSERT_EQ(dither_image(photo, p, b)->pixels, dither_image(photo, p, a)->pixels)
              << algorithm_name(named.algorithm) << " " << p.describe() << " variant " << variant
              << " threads " << threads;
        }
      }
      ++turn;
    }
  }
}

// Kernels of every shape (reach 0..3, depth 0..3, 0..2 ahead), lopsided weights, against the
// reference.
std::vector<CustomKernel> assorted_kernels() {
  std::vector<CustomKernel> out;
  std::mt19937 rng(11);
  for (int reach = 0; reach <= 3; ++reach) {
    for (int depth = 0; depth <= 3; ++depth) {
      for (int ahead = 0; ahead <= std::min(reach, 2); ++ahead) {
        if (depth == 0 && ahead == 0) continue;  // no cell to take error
        CustomKernel k;
        k.width = 2 * reach + 1;
        k.height = depth + 1;
        k.origin = reach;
        k.weights.assign(static_cast<size_t>(k.width * k.height), 0);
        int sum = 0;
        for (int y = 0; y <= depth; ++y) {
          for (int x = 0; x < k.width; ++x) {
            if (y == 0 && (x <= reach || x > reach + ahead)) continue;
            const int w = static_cast<int>(rng() % 9);
            k.weights[static_cast<size_t>(y * k.width + x)] = w;
            sum += w;
          }
        }
        if (sum == 0) {
          k.weights.back() = 1;
          sum = 1;
        }
        k.divisor = sum + static_cast<int>(rng() % 3);  // some keep part of the error back
        EXPECT_TRUE(check_custom_kernel(k).ok()) << to_json(k);
        out.push_back(k);
      }
    }
  }
  return out;
}

TEST(CustomKernelEngine, EveryShapeEqualsTheReference) {
  const Image photo = testing::synthetic_photo(37, 23, 4);
  const std::vector<CustomKernel> kernels = assorted_kernels();
  EXPECT_GE(kernels.size(), 30u);
  int turn = 0;
  for (const CustomKernel& k : kernels) {
    for (const Palette& p : palettes()) {
      // Two of the four variants each time, in turn.
      for (int variant : {turn % 4, (turn + 1) % 4}) {
        DitherOptions o;
        o.algorithm = Algorithm::kCustomKernel;
        o.kernel = k;
        o.serpentine = variant & 1;
        o.color_space = (variant & 2) ? ColorSpace::kLinear : ColorSpace::kSrgb;
        o.strength = variant == 2 ? 0.55 : 1.0;
        const Image expected = reference::dither(photo, p, o);
        for (int threads : {1, 2, 3}) {
          o.threads = threads;
          ASSERT_EQ(dither_image(photo, p, o)->pixels, expected.pixels)
              << to_json(k) << " " << p.describe() << " variant " << variant << " threads "
              << threads;
        }
      }
      ++turn;
    }
  }
}

TEST(CustomKernelEngine, WavefrontIsByteIdenticalOnTallAndTinyImages) {
  const std::vector<CustomKernel> kernels = {
      kernel("[[0,0,0,0,1,1,0],[1,1,1,1,1,1,1],[1,1,1,1,1,1,1],[1,1,1,1,1,1,1]]"),
      kernel("[[0],[1]]"), kernel("[[0,0,1]]"),
      kernel(R"({"rows":[[0,0,0,0,5],[3,0,0,0,0]],"divisor":9})")};
  for (auto [w, h] :
       std::vector<std::pair<int, int>>{{1, 1}, {1, 40}, {40, 1}, {2, 9}, {7, 200}, {300, 30}}) {
    const Image img = testing::noise(w, h, 3, static_cast<uint32_t>(w * 1000 + h));
    for (const CustomKernel& k : kernels) {
      DitherOptions o;
      o.algorithm = Algorithm::kCustomKernel;
      o.kernel = k;
      const Image expected = reference::dither(img, Palette::uniform_levels(2), o);
      for (int t : {1, 2, 3, 7}) {
        o.threads = t;
        EXPECT_EQ(dither_image(img, Palette::uniform_levels(2), o)->pixels, expected.pixels)
            << to_json(k) << " " << w << "x" << h << " threads " << t;
      }
    }
  }
}

// A matrix restating a built-in map gives its bytes: the same thresholds from the same ranks.
TEST(CustomMatrixEngine, RestatedBuiltInMapsGiveTheirBytes) {
  const Image photo = testing::synthetic_photo(45, 31, 4);
  std::vector<std::pair<DitherOptions, detail::ThresholdMap>> built_in;
  for (int size : {2, 3, 4, 8, 16}) {
    DitherOptions o;
    o.algorithm = Algorithm::kBayer;
    o.bayer_size = size;
    built_in.emplace_back(o, detail::bayer_map(size));
  }
  for (std::string_view name : halftone_names()) {
    DitherOptions o;
    o.algorithm = Algorithm::kHalftone;
    o.halftone = std::string(name);
    built_in.emplace_back(o, *detail::halftone_map(name));
  }
  // The matrix a user would type for bayer_size=4.
  const CustomMatrix bayer4 =
      *parse_custom_matrix("[[0,8,2,10],[12,4,14,6],[3,11,1,9],[15,7,13,5]]");
  EXPECT_EQ(std::vector<uint16_t>(bayer4.ranks.begin(), bayer4.ranks.end()),
            detail::bayer_map(4).ranks);
  for (auto& [named, map] : built_in) {
    DitherOptions custom = named;
    custom.algorithm = Algorithm::kCustomMatrix;
    custom.matrix =
        CustomMatrix{map.width, map.height, std::vector<int>(map.ranks.begin(), map.ranks.end())};
    ASSERT_EQ(custom.matrix->levels(), map.levels);
    for (const Palette& p : palettes()) {
      for (ColorSpace space : {ColorSpace::kSrgb, ColorSpace::kLinear}) {
        named.color_space = custom.color_space = space;
        for (int threads : {1, 2, 3}) {
          named.threads = custom.threads = threads;
          ASSERT_EQ(dither_image(photo, p, custom)->pixels, dither_image(photo, p, named)->pixels)
              << to_json(*custom.matrix) << " " << p.describe() << " threads " << threads;
        }
      }
    }
  }
}

TEST(CustomMatrixEngine, NonSquareAndUnevenMatricesEqualTheReference) {
  std::vector<int> big(64 * 64);
  std::iota(big.begin(), big.end(), 0);
  std::shuffle(big.begin(), big.end(), std::mt19937(3));
  const std::vector<CustomMatrix> matrices = {
      *parse_custom_matrix("[[0,7,3,12,9],[14,5,10,1,6],[2,11,8,13,4]]"),  // 5x3
      *parse_custom_matrix("[[0,3,1,6,2,5,4]]"),                           // one row
      *parse_custom_matrix("[[3],[0],[2],[1]]"),                           // one column
      *parse_custom_matrix("[[0,40],[10,30],[20,0]]"),                     // gaps, repeats
      *parse_custom_matrix("[[0]]"),                                       // plain threshold
      *parse_custom_matrix("[[5]]"),                                       // one offset cell
      CustomMatrix{64, 64, big},
      CustomMatrix{17, 3, std::vector<int>(51, 1)},
  };
  const Image photo = testing::synthetic_photo(70, 41, 4);
  for (const CustomMatrix& m : matrices) {
    for (const Palette& p : palettes()) {
      for (int variant = 0; variant < 4; ++variant) {
        DitherOptions o;
        o.algorithm = Algorithm::kCustomMatrix;
        o.matrix = m;
        o.color_space = (variant & 1) ? ColorSpace::kLinear : ColorSpace::kSrgb;
        o.strength = variant >= 2 ? 0.6 : 1.0;
        const Image expected = reference::dither(photo, p, o);
        for (int threads : {1, 2, 3}) {
          o.threads = threads;
          ASSERT_EQ(dither_image(photo, p, o)->pixels, expected.pixels)
              << m.width << "x" << m.height << " " << p.describe() << " variant " << variant
              << " threads " << threads;
        }
      }
    }
  }
}

}  // namespace
}  // namespace dither::engine
