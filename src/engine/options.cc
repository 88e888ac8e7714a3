#include "engine/options.h"

#include <algorithm>
#include <cctype>

namespace dither::engine {

const std::vector<AlgorithmInfo>& algorithms() {
  static const std::vector<AlgorithmInfo> list = {
      {Algorithm::kFloydSteinberg, "floyd-steinberg", "error diffusion, 4 neighbours (/16)"},
      {Algorithm::kFalseFloydSteinberg, "false-floyd-steinberg",
       "error diffusion, 3 neighbours (/8)"},
      {Algorithm::kJarvisJudiceNinke, "jarvis-judice-ninke",
       "error diffusion, 12 neighbours (/48)"},
      {Algorithm::kStucki, "stucki", "error diffusion, 12 neighbours (/42)"},
      {Algorithm::kBurkes, "burkes", "error diffusion, 7 neighbours (/32)"},
      {Algorithm::kSierra, "sierra", "error diffusion, 3 rows (/32)"},
      {Algorithm::kTwoRowSierra, "two-row-sierra", "error diffusion, 2 rows (/16)"},
      {Algorithm::kSierraLite, "sierra-lite", "error diffusion, 3 neighbours (/4)"},
      {Algorithm::kAtkinson, "atkinson", "error diffusion of 6/8 of the error (/8)"},
      {Algorithm::kStevensonArce, "stevenson-arce", "error diffusion, 12 neighbours (/200)"},
      {Algorithm::kShiauFan, "shiau-fan",
       "error diffusion, 4 neighbours, long tail to the left (/8)"},
      {Algorithm::kShiauFan2, "shiau-fan-2",
       "error diffusion, 5 neighbours, longer tail to the left (/16)"},
      {Algorithm::kBayer, "bayer", "ordered, Bayer matrix of --bayer-size (2..64 or 3)"},
      {Algorithm::kHalftone, "halftone", "ordered, clustered-dot matrix named by --halftone"},
      {Algorithm::kBlueNoise, "blue-noise", "ordered, 64x64 void-and-cluster blue-noise mask"},
      {Algorithm::kRandom, "random", "seeded white-noise threshold"},
      {Algorithm::kThreshold, "threshold", "nearest colour, no dithering"},
      {Algorithm::kRiemersma, "riemersma", "error diffusion along a Hilbert curve"},
      {Algorithm::kYliluoma, "yliluoma", "positional mixing plans for arbitrary palettes"},
      {Algorithm::kDotDiffusion, "dot-diffusion",
       "Knuth's dot diffusion: error to not-yet-processed neighbours of an 8x8 class matrix"},
      {Algorithm::kOstromoukhov, "ostromoukhov",
       "variable-coefficient error diffusion: weights chosen by tone (Ostromoukhov 2001)"},
      {Algorithm::kZhouFang, "zhou-fang",
       "variable coefficients and threshold modulation by tone (Zhou and Fang 2003)"},
      {Algorithm::kPattern, "pattern",
       "Knoll's pattern dithering: positional mixing of several palette colours"},
      {Algorithm::kDbs, "dbs",
       "direct binary search: iterative, minimises perceived error (slow; quality reference)"},
      {Algorithm::kCustomKernel, "custom-kernel",
       "error diffusion with your own kernel, given as JSON in the option kernel"},
      {Algorithm::kCustomMatrix, "custom-matrix",
       "ordered dithering with your own threshold matrix, given as JSON in the option matrix"},
  };
  return list;
}

std::string_view algorithm_name(Algorithm a) {
  for (const auto& info : algorithms()) {
    if (info.algorithm == a) return info.name;
  }
  return "unknown";
}

Result<Algorithm> parse_algorithm(std::string_view name) {
  std::string n(name);
  for (char& c : n) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == '_' || c == ' ') c = '-';
  }
  for (const auto& info : algorithms()) {
    if (info.name == n) return info.algorithm;
  }
  static const std::vector<std::pair<std::string_view, Algorithm>> aliases = {
      {"fs", Algorithm::kFloydSteinberg},
      {"floydsteinberg", Algorithm::kFloydSteinberg},
      {"false-fs", Algorithm::kFalseFloydSteinberg},
      {"jjn", Algorithm::kJarvisJudiceNinke},
      {"jarvis", Algorithm::kJarvisJudiceNinke},
      {"sierra3", Algorithm::kSierra},
      {"sierra2", Algorithm::kTwoRowSierra},
      {"ordered", Algorithm::kBayer},
      {"clustered-dot", Algorithm::kHalftone},
      {"bluenoise", Algorithm::kBlueNoise},
      {"noise", Algorithm::kRandom},
      {"none", Algorithm::kThreshold},
      {"hilbert", Algorithm::kRiemersma},
      {"knuth", Algorithm::kDotDiffusion},
      {"dotdiffusion", Algorithm::kDotDiffusion},
      {"zhoufang", Algorithm::kZhouFang},
      {"knoll", Algorithm::kPattern},
      {"direct-binary-search", Algorithm::kDbs},
  };
  for (const auto& [alias, a] : aliases) {
    if (alias == n) return a;
  }
  return make_error(ErrorKind::kInvalidArgument,
                    "unknown algorithm '" + std::string(name) + "' (see --list)");
}

bool is_error_diffusion(Algorithm a) {
  return static_cast<int>(a) <= static_cast<int>(Algorithm::kShiauFan2) ||
         a == Algorithm::kCustomKernel;
}

Status check_bayer_size(int s) {
  const bool pow2 = s >= 2 && s <= 64 && (s & (s - 1)) == 0;
  if (!pow2 && s != 3) {
    return make_error(
        ErrorKind::kInvalidArgument,
        "bayer size must be 3 or a power of two from 2 to 64, got " + std::to_string(s));
  }
  return {};
}

Status check_halftone(std::string_view name) {
  const auto& names = halftone_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return {};
  std::string known;
  for (auto n : names) known += (known.empty() ? "" : ", ") + std::string(n);
  return make_error(ErrorKind::kInvalidArgument,
                    "unknown halftone matrix '" + std::string(name) + "' (known: " + known + ")");
}

namespace {

// The custom algorithms need their data; other algorithms ignore it.
Status check_custom(const DitherOptions& o) {
  auto named = [](std::string_view option, Status s) -> Status {
    if (!s) return make_error(s.error().kind, std::string(option) + ": " + s.error().message);
    return {};
  };
  if (o.algorithm == Algorithm::kCustomKernel) {
    if (!o.kernel) {
      return make_error(ErrorKind::kInvalidArgument,
                        "algorithm custom-kernel needs the option kernel, e.g. [[0,0,7],[3,5,1]]");
    }
    return named("kernel", check_custom_kernel(*o.kernel));
  }
  if (o.algorithm == Algorithm::kCustomMatrix) {
    if (!o.matrix) {
      return make_error(ErrorKind::kInvalidArgument,
                        "algorithm custom-matrix needs the option matrix, e.g. [[0,2],[3,1]]");
    }
    return named("matrix", check_custom_matrix(*o.matrix));
  }
  return {};
}

}  // namespace

Status validate(const DitherOptions& o) {
  if (!(o.strength >= 0.0 && o.strength <= 1.0)) {
    return make_error(ErrorKind::kInvalidArgument, "strength must be between 0 and 1");
  }
  if (o.algorithm == Algorithm::kBayer) {
    if (Status s = check_bayer_size(o.bayer_size); !s) return s;
  }
  if (o.algorithm == Algorithm::kHalftone) {
    if (Status s = check_halftone(o.halftone); !s) return s;
  }
  if (Status s = check_custom(o); !s) return s;
  if (o.threads < 0 || o.threads > 256) {
    return make_error(ErrorKind::kInvalidArgument, "threads must be 0 (all) to 256");
  }
  return {};
}

}  // namespace dither::engine
