// A caller's own error-diffusion kernel (Algorithm::kCustomKernel) and threshold matrix
// (Algorithm::kCustomMatrix), given as JSON text (docs/CUSTOM.md).
//
//   Result<CustomKernel> k = parse_custom_kernel("[[0,0,7],[3,5,1]]");   // Floyd-Steinberg
//   Result<CustomKernel> a = parse_custom_kernel(R"({"rows":[[0,1,1],[1,1,1],[0,1,0]],
//                                                    "divisor":8,"origin":0})");
//   Result<CustomMatrix> m = parse_custom_matrix("[[0,2],[3,1]]");      // Bayer 2x2
//   std::string text = to_json(*k);  // the canonical form records keep: "[[0,0,7],[3,5,1]]"
//
// A kernel is rows of weights over a divisor; the current pixel is column `origin` of the first
// row. A matrix is rows of ranks; rank r of M = (largest rank + 1) is the threshold (r + 0.5) / M,
// as for the built-in maps (docs/ENGINE-ORDERED.md). Parse errors say what is wrong without
// naming the option ("row 2 has 4 entries, row 1 has 3"); callers add the name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace dither::engine {

struct CustomKernel {
  int width = 0;   // entries per row
  int height = 0;  // rows: the current one and those below
  int origin = 0;  // column of the current pixel in the first row
  int divisor = 1;
  std::vector<int> weights;  // row-major, width * height

  int at(int column, int row) const { return weights[static_cast<size_t>(row * width + column)]; }
  friend bool operator==(const CustomKernel&, const CustomKernel&) = default;
};

struct CustomMatrix {
  int width = 0;
  int height = 0;
  std::vector<int> ranks;  // row-major, width * height, each 0..kMaxMatrixRank

  int levels() const;  // the number of ranks M: the largest + 1
  friend bool operator==(const CustomMatrix&, const CustomMatrix&) = default;
};

// Limits. A kernel may reach 3 columns either side of the current pixel and 3 rows below it (the
// widest built-in kernel, Stevenson-Arce, does), and on the current row 2 pixels to the right;
// its divisor is 1..65536. The error-diffusion engine keeps no more (kernels.h).
inline constexpr size_t kMaxKernelText = 4096;  // bytes of JSON
inline constexpr int kMaxKernelReach = 3;       // columns either side, on the rows below
inline constexpr int kMaxKernelAhead = 2;       // columns to the right, on the current row
inline constexpr int kMaxKernelDepth = 3;       // rows below the current one
inline constexpr int kMaxKernelDivisor = 65536;
// A matrix is 1x1 to 64x64, ranks 0..4095 (a 64x64 permutation).
inline constexpr size_t kMaxMatrixText = 32768;
inline constexpr int kMaxMatrixSide = 64;
inline constexpr int kMaxMatrixRank = 4095;

// Reads a kernel: a JSON array of rows (origin the middle column, (width - 1) / 2, of the first
// row; divisor the sum of the weights) or an object {"rows": [...], "divisor": D, "origin": O}
// (either field may be left out, with those defaults). Checked as check_custom_kernel() does;
// the result is in canonical shape (see to_json), so equal kernels compare equal.
Result<CustomKernel> parse_custom_kernel(std::string_view json);
// Reads a matrix: a JSON array of 1..64 rows of 1..64 whole numbers 0..4095 each, all rows the
// same length.
Result<CustomMatrix> parse_custom_matrix(std::string_view json);

// The canonical JSON of a kernel that check_custom_kernel() accepts: the rows centred on the
// current pixel (odd width, origin in the middle) and cut to the smallest such rectangle that
// holds every non-zero weight, as a plain array when the divisor is the weights' sum and as
// {"rows":[...],"divisor":D} otherwise. Weights and divisor are kept as given (7/16 and 14/32
// stay apart), so kernels with the same text give the same bytes.
std::string to_json(const CustomKernel& kernel);
// The matrix as minified JSON rows.
std::string to_json(const CustomMatrix& matrix);

// The rules a kernel must follow, with a message naming the broken one: rectangular, origin in
// the first row, whole weights >= 0 with at least one > 0, zeros at and left of the current pixel
// in the first row (those pixels are done), weights summing to at most the divisor (more would
// amplify the error), and the reach limits above.
Status check_custom_kernel(const CustomKernel& kernel);
Status check_custom_matrix(const CustomMatrix& matrix);

}  // namespace dither::engine
