// Dithering options: which algorithm and how.
//
//   DitherOptions o;
//   o.algorithm = Algorithm::kAtkinson;
//   o.serpentine = true;
//   o.color_space = ColorSpace::kLinear;
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/color.h"
#include "engine/custom.h"

namespace dither::engine {

enum class Algorithm {
  // Error diffusion.
  kFloydSteinberg,
  kFalseFloydSteinberg,
  kJarvisJudiceNinke,
  kStucki,
  kBurkes,
  kSierra,
  kTwoRowSierra,
  kSierraLite,
  kAtkinson,
  kStevensonArce,
  kShiauFan,   // Shiau and Fan's 4-cell kernel (/8)
  kShiauFan2,  // Shiau and Fan's 5-cell kernel (/16)
  // Ordered and noise.
  kBayer,      // Bayer matrix of size `bayer_size` (power of two, or 3)
  kHalftone,   // a clustered-dot matrix named by `halftone`
  kBlueNoise,  // void-and-cluster blue-noise mask
  kRandom,     // seeded white noise
  kThreshold,  // plain nearest colour, no dithering
  // Others.
  kRiemersma,     // error diffusion along a Hilbert curve
  kYliluoma,      // Yliluoma-style positional dithering for arbitrary palettes
  kDotDiffusion,  // Knuth's dot diffusion: error passed to neighbours of a higher class
  kOstromoukhov,  // variable-coefficient error diffusion (Ostromoukhov 2001)
  kZhouFang,      // variable coefficients with threshold modulation (Zhou and Fang 2003)
  kPattern,       // Knoll's pattern dithering for arbitrary palettes
  kDbs,           // direct binary search: iterative, the quality reference
  // Given by the caller.
  kCustomKernel,  // error diffusion with the kernel in `kernel`
  kCustomMatrix,  // ordered dithering with the threshold matrix in `matrix`
};

// How "nearest colour" is measured (docs/ENGINE-DISTANCE.md); option `distance`.
enum class Metric {
  kEuclidean,   // "rgb": plain squared distance in the working space
  kPerceptual,  // "luma": luma-weighted squared distance (0.2126, 0.7152, 0.0722 on R, G, B)
  kOklab,       // "oklab": squared distance in Ottosson's Oklab, from linear light
  kCiede2000,   // "ciede2000": CIE Delta E 2000 between CIELAB (D65) colours
};

struct MetricInfo {
  Metric metric;
  std::string_view name;  // canonical, e.g. "oklab"
  std::string_view description;
};
// In enum order. (Defined in quantizer.cc, beside the metrics themselves.)
const std::vector<MetricInfo>& metrics();
std::string_view metric_name(Metric m);
// The canonical name in any letter case; "perceptual" is an alias of "luma".
Result<Metric> parse_metric(std::string_view name);

// What becomes of an RGBA image's alpha channel (RGB images have none; docs/TRANSPARENCY.md).
// Whatever the mode, a pixel whose final alpha is 0 passes no error to its neighbours in the
// error diffusions (its error is dropped), so hidden colours never show in visible pixels.
enum class AlphaMode {
  kKeep,       // alpha copied unchanged, colour dithered under it
  kThreshold,  // 1-bit: 255 where alpha >= 128, else 0 (what GIF can hold)
  kDither,     // alpha dithered to 0 / 255 as coverage, with the same algorithm
  kFlatten,    // composited over `background` in linear light first; the output is RGB
};

struct DitherOptions {
  Algorithm algorithm = Algorithm::kFloydSteinberg;
  bool serpentine = false;             // error diffusion: alternate row direction
  int bayer_size = 8;                  // kBayer: 2, 4, 8, 16, 32, 64 or 3
  std::string halftone = "h6x6a";      // kHalftone: see halftone_names()
  uint64_t seed = 1;                   // kRandom, kZhouFang
  std::optional<CustomKernel> kernel;  // kCustomKernel (required there): custom.h
  std::optional<CustomMatrix> matrix;  // kCustomMatrix (required there): custom.h
  // Linear light by default: dithering in sRGB makes mid-tones far too bright once the eye
  // averages the pattern (docs/BENCHMARKS.md measures it). kSrgb is what Pillow, ImageMagick
  // and the prototype do.
  ColorSpace color_space = ColorSpace::kLinear;
  Metric metric = Metric::kEuclidean;
  double strength = 1.0;  // 0..1: fraction of error diffused / amplitude of the threshold
  int threads = 1;        // 0 = all hardware threads; output never depends on it
  AlphaMode alpha = AlphaMode::kKeep;
  // kFlatten: the colour under the image.
  Color background{255, 255, 255};
};

struct AlgorithmInfo {
  Algorithm algorithm;
  std::string_view name;  // canonical, e.g. "floyd-steinberg"
  std::string_view description;
};
const std::vector<AlgorithmInfo>& algorithms();
std::string_view algorithm_name(Algorithm a);
// Accepts the canonical name and a few common aliases ("fs", "jjn", "ordered"...), any case.
Result<Algorithm> parse_algorithm(std::string_view name);
// The kernel-driven error diffusions (the named kernels and kCustomKernel).
bool is_error_diffusion(Algorithm a);

// Names of the clustered-dot / halftone matrices accepted by `halftone`.
const std::vector<std::string_view>& halftone_names();

// One option each: 3 or a power of two from 2 to 64; a name from halftone_names().
Status check_bayer_size(int size);
Status check_halftone(std::string_view name);

// Checks ranges: strength in [0, 1], bayer_size, halftone name, threads >= 0; a custom kernel
// or matrix is present for its algorithm and follows check_custom_kernel/matrix (custom.h).
Status validate(const DitherOptions& options);

}  // namespace dither::engine
