// Dithering options: which algorithm and how.
//
//   DitherOptions o;
//   o.algorithm = Algorithm::kAtkinson;
//   o.serpentine = true;
//   o.color_space = ColorSpace::kLinear;
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/color.h"

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
};

enum class Metric {
  kEuclidean,   // plain squared distance in the working space
  kPerceptual,  // luma-weighted squared distance (0.2126, 0.7152, 0.0722 on R, G, B)
};

struct DitherOptions {
  Algorithm algorithm = Algorithm::kFloydSteinberg;
  bool serpentine = false;         // error diffusion: alternate row direction
  int bayer_size = 8;              // kBayer: 2, 4, 8, 16, 32, 64 or 3
  std::string halftone = "h6x6a";  // kHalftone: see halftone_names()
  uint64_t seed = 1;               // kRandom
  // Linear light by default: dithering in sRGB makes mid-tones far too bright once the eye
  // averages the pattern (docs/BENCHMARKS.md measures it). kSrgb is what Pillow, ImageMagick
  // and the prototype do.
  ColorSpace color_space = ColorSpace::kLinear;
  Metric metric = Metric::kEuclidean;
  double strength = 1.0;  // 0..1: fraction of error diffused / amplitude of the threshold
  int threads = 1;        // 0 = all hardware threads; output never depends on it
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
bool is_error_diffusion(Algorithm a);

// Names of the clustered-dot / halftone matrices accepted by `halftone`.
const std::vector<std::string_view>& halftone_names();

// One option each: 3 or a power of two from 2 to 64; a name from halftone_names().
Status check_bayer_size(int size);
Status check_halftone(std::string_view name);

// Checks ranges: strength in [0, 1], bayer_size, halftone name, threads >= 0.
Status validate(const DitherOptions& options);

}  // namespace dither::engine
