#include "pipeline/process_options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace dither {

namespace {

Error bad(std::string_view name, std::string_view message) {
  return make_error(ErrorKind::kInvalidArgument,
                    "option '" + std::string(name) + "': " + std::string(message));
}

Result<long long> parse_int(std::string_view name, std::string_view v, long long lo, long long hi) {
  long long out = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || ptr != v.data() + v.size() || out < lo || out > hi) {
    return bad(name, "expected a whole number from " + std::to_string(lo) + " to " +
                         std::to_string(hi) + ", got '" + std::string(v) + "'");
  }
  return out;
}

Result<bool> parse_bool(std::string_view name, std::string_view v) {
  std::string s(v);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "1" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "0" || s == "no" || s == "off") return false;
  return bad(name, "expected true or false, got '" + std::string(v) + "'");
}

Result<double> parse_number(std::string_view name, std::string_view v, double lo, double hi) {
  std::string s(v);
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d) || d < lo || d > hi) {
    return bad(name, "expected a number from " + std::to_string(lo).substr(0, 3) + " to " +
                         std::to_string(hi).substr(0, 3) + ", got '" + std::string(v) + "'");
  }
  return d;
}

}  // namespace

const std::vector<OptionInfo>& option_table() {
  static const std::vector<OptionInfo> table = {
      {"algorithm", OptionType::kString, "NAME",
       "dithering algorithm (default floyd-steinberg; see --list)"},
      {"palette", OptionType::kString, "SPEC",
       "levels:N, grey:N, a name (bw, ega, gameboy, pico8...), adaptive:N or #hex,#hex,..."},
      {"channels", OptionType::kInteger, "2..256",
       "levels per colour channel, the same as palette=levels:N (default 2)"},
      {"serpentine", OptionType::kBoolean, "BOOL", "error diffusion: alternate row direction"},
      {"linear_light", OptionType::kBoolean, "BOOL",
       "dither in linear light, gamma-correct tone (default true; false = sRGB like Pillow)"},
      {"perceptual", OptionType::kBoolean, "BOOL",
       "luma-weighted colour distance instead of plain RGB distance"},
      {"strength", OptionType::kNumber, "0..1",
       "fraction of the error diffused / amplitude of the threshold (default 1)"},
      {"bayer_size", OptionType::kInteger, "2..64|3", "Bayer matrix size (default 8)"},
      {"halftone", OptionType::kString, "NAME", "clustered-dot matrix for algorithm=halftone"},
      {"seed", OptionType::kInteger, "N", "seed for algorithm=random (default 1)"},
      {"width", OptionType::kInteger, "PIXELS", "resize to this width before dithering"},
      {"height", OptionType::kInteger, "PIXELS", "resize to this height before dithering"},
      {"upscale", OptionType::kInteger, "1..16", "enlarge by this factor after dithering"},
      {"format", OptionType::kString, "png|gif|webp", "output format (default png)"},
      {"threads", OptionType::kInteger, "0..256",
       "worker threads, 0 = all cores (output never depends on it)"},
  };
  return table;
}

Status set_option(ProcessOptions& o, std::string_view name, std::string_view value) {
  if (name == "algorithm") {
    auto a = parse_algorithm(value);
    if (!a) return bad(name, a.error().message);
    o.dither.algorithm = *a;
  } else if (name == "palette") {
    auto p = parse_palette_spec(value);
    if (!p) return bad(name, p.error().message);
    o.palette = std::move(*p);
  } else if (name == "channels") {
    auto n = parse_int(name, value, 2, 256);
    if (!n) return n.error();
    o.palette = PaletteSpec{};
    o.palette.count = static_cast<int>(*n);
  } else if (name == "serpentine") {
    auto b = parse_bool(name, value);
    if (!b) return b.error();
    o.dither.serpentine = *b;
  } else if (name == "linear_light") {
    auto b = parse_bool(name, value);
    if (!b) return b.error();
    o.dither.color_space = *b ? ColorSpace::kLinear : ColorSpace::kSrgb;
  } else if (name == "perceptual") {
    auto b = parse_bool(name, value);
    if (!b) return b.error();
    o.dither.metric = *b ? Metric::kPerceptual : Metric::kEuclidean;
  } else if (name == "strength") {
    auto d = parse_number(name, value, 0.0, 1.0);
    if (!d) return d.error();
    o.dither.strength = *d;
  } else if (name == "bayer_size") {
    auto n = parse_int(name, value, 2, 64);
    if (!n) return n.error();
    if (Status s = check_bayer_size(static_cast<int>(*n)); !s) return bad(name, s.error().message);
    o.dither.bayer_size = static_cast<int>(*n);
  } else if (name == "halftone") {
    if (Status s = check_halftone(value); !s) return bad(name, s.error().message);
    o.dither.halftone = std::string(value);
  } else if (name == "seed") {
    auto n = parse_int(name, value, 0, (1LL << 53));
    if (!n) return n.error();
    o.dither.seed = static_cast<uint64_t>(*n);
  } else if (name == "width" || name == "height") {
    auto n = parse_int(name, value, 0, 100000);
    if (!n) return n.error();
    (name == "width" ? o.width : o.height) = static_cast<int>(*n);
  } else if (name == "upscale") {
    auto n = parse_int(name, value, 1, 16);
    if (!n) return n.error();
    o.upscale = static_cast<int>(*n);
  } else if (name == "format") {
    auto f = imaging::parse_output_format(value);
    if (!f) return bad(name, f.error().message);
    o.format = *f;
  } else if (name == "threads") {
    auto n = parse_int(name, value, 0, 256);
    if (!n) return n.error();
    o.dither.threads = static_cast<int>(*n);
  } else {
    return make_error(ErrorKind::kInvalidArgument, "unknown option '" + std::string(name) + "'");
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> describe(const ProcessOptions& o) {
  std::vector<std::pair<std::string, std::string>> out = {
      {"algorithm", std::string(algorithm_name(o.dither.algorithm))},
      {"palette", o.palette.to_string()},
      {"serpentine", o.dither.serpentine ? "true" : "false"},
      {"linear_light", o.dither.color_space == ColorSpace::kLinear ? "true" : "false"},
      {"perceptual", o.dither.metric == Metric::kPerceptual ? "true" : "false"},
      {"strength", std::to_string(o.dither.strength)},
      {"format", std::string(imaging::to_string(o.format))},
  };
  if (o.dither.algorithm == Algorithm::kBayer) {
    out.emplace_back("bayer_size", std::to_string(o.dither.bayer_size));
  }
  if (o.dither.algorithm == Algorithm::kHalftone) out.emplace_back("halftone", o.dither.halftone);
  if (o.dither.algorithm == Algorithm::kRandom)
    out.emplace_back("seed", std::to_string(o.dither.seed));
  if (o.width) out.emplace_back("width", std::to_string(o.width));
  if (o.height) out.emplace_back("height", std::to_string(o.height));
  if (o.upscale > 1) out.emplace_back("upscale", std::to_string(o.upscale));
  return out;
}

}  // namespace dither
