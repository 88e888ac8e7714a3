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
  };
  for (const auto& [alias, a] : aliases) {
    if (alias == n) return a;
  }
  return make_error(ErrorKind::kInvalidArgument,
                    "unknown algorithm '" + std::string(name) + "' (see --list)");
}

bool is_error_diffusion(Algorithm a) {
  return static_cast<int>(a) <= static_cast<int>(Algorithm::kShiauFan2);
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
  if (o.threads < 0 || o.threads > 256) {
    return make_error(ErrorKind::kInvalidArgument, "threads must be 0 (all) to 256");
  }
  return {};
}

}  // namespace dither::engine
