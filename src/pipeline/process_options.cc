#include "pipeline/process_options.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace dither::pipeline {

namespace {

namespace json = boost::json;

Error bad(std::string_view name, std::string_view message) {
  return make_error(ErrorKind::kInvalidArgument,
                    "option '" + std::string(name) + "': " + std::string(message));
}

// The shortest text that reads back as `d` ("1", "0.8", "2.5e-05"); whole numbers in full
// ("100000", not "1e+05").
std::string number_text(double d) {
  if (std::trunc(d) == d && std::fabs(d) < 1e17) return std::to_string(static_cast<long long>(d));
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, d);
  return ec == std::errc{} ? std::string(buffer, end) : std::to_string(d);
}

std::string range_text(const OptionInfo& o) {
  return number_text(o.minimum) + " to " + number_text(o.maximum);
}

std::string bool_text(bool b) { return b ? "true" : "false"; }

// The text of `v` read as `o`'s type and checked against its range and choices.
Result<OptionValue> read_value(const OptionInfo& o, std::string_view text) {
  OptionValue v;
  v.text = text;
  switch (o.type) {
    case OptionType::kBoolean: {
      std::string s(text);
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (s == "true" || s == "1" || s == "yes" || s == "on") {
        v.boolean = true;
      } else if (!(s == "false" || s == "0" || s == "no" || s == "off")) {
        return bad(o.name, "expected true or false, got '" + std::string(text) + "'");
      }
      return v;
    }
    case OptionType::kInteger: {
      // The range is compared as whole numbers: as doubles, 2^53 + 1 would pass a maximum of 2^53.
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v.integer);
      if (ec != std::errc{} || ptr != text.data() + text.size() ||
          v.integer < static_cast<long long>(o.minimum) ||
          v.integer > static_cast<long long>(o.maximum)) {
        return bad(o.name, "expected a whole number from " + range_text(o) + ", got '" +
                               std::string(text) + "'");
      }
      return v;
    }
    case OptionType::kNumber: {
      const std::string s(text);
      char* end = nullptr;
      v.number = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v.number) ||
          v.number < o.minimum || v.number > o.maximum) {
        return bad(o.name,
                   "expected a number from " + range_text(o) + ", got '" + std::string(text) + "'");
      }
      return v;
    }
    case OptionType::kString:
    case OptionType::kJson:  // read by the row's own parser
      return v;
  }
  return v;
}

// A refusal from the engine's parser, named after the option.
Status named(std::string_view name, Status s) {
  if (!s) return bad(name, s.error().message);
  return {};
}

std::vector<OptionChoice> algorithm_choices() {
  std::vector<OptionChoice> out;
  for (const engine::AlgorithmInfo& a : engine::algorithms()) {
    out.push_back({std::string(a.name), std::string(a.description)});
  }
  return out;
}

std::vector<OptionChoice> distance_choices() {
  std::vector<OptionChoice> out;
  for (const engine::MetricInfo& m : engine::metrics()) {
    out.push_back({std::string(m.name), std::string(m.description)});
  }
  return out;
}

std::vector<OptionChoice> halftone_choices() {
  std::vector<OptionChoice> out;
  for (std::string_view h : engine::halftone_names()) out.push_back({std::string(h), ""});
  return out;
}

std::vector<OptionChoice> palette_suggestions() {
  std::vector<OptionChoice> out;
  for (const engine::NamedPaletteInfo& p : engine::named_palettes()) {
    out.push_back({std::string(p.name), std::string(p.description)});
  }
  out.push_back({"levels:4", "4 levels per channel, 64 colours (levels:N, N from 2 to 256)"});
  out.push_back({"grey:4", "4 grey levels (grey:N, N from 2 to 256)"});
  out.push_back({"adaptive:16", "16 colours chosen from the image (adaptive:N, N 2..256)"});
  return out;
}

// The table in four parts: the algorithm and the colours; how colours are matched and error
// spread; the matrices and seeds of single algorithms; the size, format and threads of the result.
void add_colour_options(std::vector<OptionInfo>& t) {
  using T = OptionType;
  using S = OptionScope;
  t.push_back({"algorithm",
               T::kString,
               S::kRequest,
               "NAME",
               "dithering algorithm (any letter case; short names such as fs, jjn or ordered are "
               "accepted too)",
               algorithm_choices(),
               {},
               0,
               0,
               "floyd-steinberg",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 Result<engine::Algorithm> a = engine::parse_algorithm(v.text);
                 if (!a) return a.error();
                 o.dither.algorithm = *a;
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return std::string(engine::algorithm_name(o.dither.algorithm));
               }});
  t.push_back({"palette",
               T::kString,
               S::kRequest,
               "SPEC",
               "the colours: levels:N, grey:N, adaptive:N (N 2..256), a named palette, or "
               "#rrggbb,#rrggbb,... (1 to 256 colours)",
               {},
               palette_suggestions(),
               0,
               0,
               "",
               "levels:{channels}",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 Result<engine::PaletteSpec> p = engine::parse_palette_spec(v.text);
                 if (!p) return p.error();
                 o.palette = std::move(*p);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return o.palette.to_string();
               }});
  t.back().colour_list = true;
  t.push_back({"channels",
               T::kInteger,
               S::kPath,
               "2..256",
               "levels per colour channel: the same as palette=levels:N",
               {},
               {},
               2,
               256,
               "2",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.palette = engine::PaletteSpec{};
                 o.palette.count = static_cast<int>(v.integer);
                 return {};
               },
               [](const ProcessOptions&) -> std::optional<std::string> { return std::nullopt; }});
}

void add_matching_options(std::vector<OptionInfo>& t) {
  using T = OptionType;
  using S = OptionScope;
  t.push_back({"serpentine",
               T::kBoolean,
               S::kRequest,
               "BOOL",
               "error diffusion alternates the row direction",
               {},
               {},
               0,
               0,
               "false",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.dither.serpentine = v.boolean;
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return bool_text(o.dither.serpentine);
               }});
  t.push_back({"linear_light",
               T::kBoolean,
               S::kRequest,
               "BOOL",
               "dither in linear light, gamma-correct tone (false: in sRGB like Pillow)",
               {},
               {},
               0,
               0,
               "true",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.dither.color_space =
                     v.boolean ? engine::ColorSpace::kLinear : engine::ColorSpace::kSrgb;
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return bool_text(o.dither.color_space == engine::ColorSpace::kLinear);
               }});
  t.push_back({"distance",
               T::kString,
               S::kRequest,
               "rgb|luma|oklab|ciede2000",
               "how the nearest palette colour is measured (any letter case)",
               distance_choices(),
               {},
               0,
               0,
               "rgb",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 Result<engine::Metric> m = engine::parse_metric(v.text);
                 if (!m) return m.error();
                 o.dither.metric = *m;
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return std::string(engine::metric_name(o.dither.metric));
               }});
  t.push_back({"strength",
               T::kNumber,
               S::kRequest,
               "0..1",
               "share of the error diffused / amplitude of the threshold",
               {},
               {},
               0,
               1,
               "1",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.dither.strength = v.number;
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return number_text(o.dither.strength);
               }});
}

// The caller's own kernel and matrix (docs/CUSTOM.md): JSON, kept in the canonical form.
void add_custom_options(std::vector<OptionInfo>& t) {
  using T = OptionType;
  using S = OptionScope;
  t.push_back({"kernel",
               T::kJson,
               S::kRequest,
               "JSON",
               "error-diffusion kernel (algorithm custom-kernel): rows of whole-number weights, "
               "the current pixel in the middle of the first row, e.g. [[0,0,7],[3,5,1]]; or "
               "{\"rows\": [...], \"divisor\": D, \"origin\": COLUMN}",
               {},
               {},
               0,
               0,
               "",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 Result<engine::CustomKernel> k = engine::parse_custom_kernel(v.text);
                 if (!k) return k.error();
                 o.dither.kernel = std::move(*k);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 if (!o.dither.kernel) return std::nullopt;
                 return engine::to_json(*o.dither.kernel);
               }});
  t.back().applies_when = {"algorithm", {"custom-kernel"}};
  t.push_back({"matrix",
               T::kJson,
               S::kRequest,
               "JSON",
               "threshold matrix (algorithm custom-matrix): 1 to 64 rows of 1 to 64 ranks 0..4095, "
               "lowest turns bright first, e.g. [[0,2],[3,1]]",
               {},
               {},
               0,
               0,
               "",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 Result<engine::CustomMatrix> m = engine::parse_custom_matrix(v.text);
                 if (!m) return m.error();
                 o.dither.matrix = std::move(*m);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 if (!o.dither.matrix) return std::nullopt;
                 return engine::to_json(*o.dither.matrix);
               }});
  t.back().applies_when = {"algorithm", {"custom-matrix"}};
}

void add_matrix_options(std::vector<OptionInfo>& t) {
  using T = OptionType;
  using S = OptionScope;
  t.push_back({"bayer_size",
               T::kInteger,
               S::kRequest,
               "N",
               "Bayer matrix size (algorithm bayer)",
               {{"2", ""}, {"3", ""}, {"4", ""}, {"8", ""}, {"16", ""}, {"32", ""}, {"64", ""}},
               {},
               2,
               64,
               "8",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.dither.bayer_size = static_cast<int>(v.integer);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return std::to_string(o.dither.bayer_size);
               }});
  t.back().applies_when = {"algorithm", {"bayer"}};
  t.push_back(
      {"halftone",
       T::kString,
       S::kRequest,
       "NAME",
       "clustered-dot matrix (algorithm halftone)",
       halftone_choices(),
       {},
       0,
       0,
       std::string(engine::DitherOptions{}.halftone),
       "",
       [](ProcessOptions& o, const OptionValue& v) -> Status {
         o.dither.halftone = std::string(v.text);
         return {};
       },
       [](const ProcessOptions& o) -> std::optional<std::string> { return o.dither.halftone; }});
  t.back().applies_when = {"algorithm", {"halftone"}};
  t.push_back({"seed",
               T::kInteger,
               S::kRequest,
               "N",
               "seed of the noise (algorithms random and zhou-fang)",
               {},
               {},
               0,
               9007199254740992.0,
               "1",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.dither.seed = static_cast<uint64_t>(v.integer);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return std::to_string(o.dither.seed);
               }});
  t.back().applies_when = {"algorithm", {"random", "zhou-fang"}};
  add_custom_options(t);
}

// alpha: "keep", "threshold", "dither" or "flatten:#rrggbb" (any letter case; the colour also
// as #rgb, '#' optional, like palette colours).
Status apply_alpha(ProcessOptions& o, std::string_view text) {
  std::string t(text);
  for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static constexpr std::pair<std::string_view, engine::AlphaMode> kPlain[] = {
      {"keep", engine::AlphaMode::kKeep},
      {"threshold", engine::AlphaMode::kThreshold},
      {"dither", engine::AlphaMode::kDither}};
  for (const auto& [name, mode] : kPlain) {
    if (t == name) {
      o.dither.alpha = mode;
      return {};
    }
  }
  constexpr std::string_view kFlatten = "flatten";
  if (t.starts_with(kFlatten)) {
    if (t.size() == kFlatten.size() || t[kFlatten.size()] != ':') {
      return make_error(ErrorKind::kInvalidArgument,
                        "flatten needs the colour to composite over, e.g. flatten:#ffffff; got '" +
                            std::string(text) + "'");
    }
    Result<engine::Color> c = engine::parse_hex_color(text.substr(kFlatten.size() + 1));
    if (!c) {
      return make_error(ErrorKind::kInvalidArgument, "flatten:#rrggbb: " + c.error().message);
    }
    o.dither.alpha = engine::AlphaMode::kFlatten;
    o.dither.background = *c;
    return {};
  }
  return make_error(
      ErrorKind::kInvalidArgument,
      "expected keep, threshold, dither or flatten:#rrggbb, got '" + std::string(text) + "'");
}

// The canonical text; nothing for keep, the default (so the canonical form of every dither
// made before this option existed stays as it was).
std::optional<std::string> alpha_text(const ProcessOptions& o) {
  switch (o.dither.alpha) {
    case engine::AlphaMode::kKeep:
      return std::nullopt;
    case engine::AlphaMode::kThreshold:
      return "threshold";
    case engine::AlphaMode::kDither:
      return "dither";
    case engine::AlphaMode::kFlatten:
      return "flatten:" + engine::to_hex(o.dither.background);
  }
  return std::nullopt;
}

// What becomes of transparency (docs/TRANSPARENCY.md).
void add_alpha_option(std::vector<OptionInfo>& t) {
  t.push_back({"alpha",
               OptionType::kString,
               OptionScope::kRequest,
               "MODE",
               "transparency: keep (alpha as it is, colour dithered under it; GIF: threshold), "
               "threshold (opaque where alpha >= 128, else transparent), dither (alpha dithered "
               "to opaque and transparent like the colour), flatten:#rrggbb (composited over "
               "that colour in linear light; no alpha in the output)",
               {},
               {{"keep", "alpha as it is (GIF: threshold)"},
                {"threshold", "1-bit: opaque where alpha >= 128"},
                {"dither", "alpha dithered to opaque and transparent"},
                {"flatten:#ffffff", "composited over white (flatten:#rrggbb: any colour)"}},
               0,
               0,
               "keep",
               "",
               [](ProcessOptions& o, const OptionValue& v) { return apply_alpha(o, v.text); },
               alpha_text});
}

void add_output_options(std::vector<OptionInfo>& t) {
  using T = OptionType;
  using S = OptionScope;
  t.push_back({"width",
               T::kInteger,
               S::kRequest,
               "PIXELS",
               "resize to this width before dithering (0: keep; alone, keeps the aspect ratio)",
               {},
               {},
               0,
               100000,
               "0",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.width = static_cast<int>(v.integer);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 if (o.width == 0) return std::nullopt;
                 return std::to_string(o.width);
               }});
  t.push_back({"height",
               T::kInteger,
               S::kRequest,
               "PIXELS",
               "resize to this height before dithering (0: keep; alone, keeps the aspect ratio)",
               {},
               {},
               0,
               100000,
               "0",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.height = static_cast<int>(v.integer);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 if (o.height == 0) return std::nullopt;
                 return std::to_string(o.height);
               }});
  t.push_back({"upscale",
               T::kInteger,
               S::kRequest,
               "1..16",
               "nearest-neighbour enlargement by this factor after dithering",
               {},
               {},
               1,
               16,
               "1",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.upscale = static_cast<int>(v.integer);
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 if (o.upscale <= 1) return std::nullopt;
                 return std::to_string(o.upscale);
               }});
  t.push_back({"format",
               T::kString,
               S::kRequest,
               "png|gif|webp",
               "output format (any letter case)",
               {{"png", "indexed PNG at the smallest bit depth"},
                {"gif", "GIF"},
                {"webp", "lossless WebP"}},
               {},
               0,
               0,
               "png",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 Result<imaging::OutputFormat> f = imaging::parse_output_format(v.text);
                 if (!f) return f.error();
                 o.format = *f;
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 return std::string(imaging::to_string(o.format));
               }});
  add_alpha_option(t);
  t.push_back({"temporal",
               T::kString,
               S::kRequest,
               "stable|fresh",
               "animations: stable (a pixel whose source did not change since the previous frame "
               "keeps its output: no flicker) or fresh (every frame dithered on its own)",
               {{"stable", "unchanged pixels keep their output"},
                {"fresh", "every frame dithered on its own"}},
               {},
               0,
               0,
               "stable",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 if (v.text == "stable") {
                   o.temporal = engine::Temporal::kStable;
                 } else if (v.text == "fresh") {
                   o.temporal = engine::Temporal::kFresh;
                 } else {
                   return make_error(ErrorKind::kInvalidArgument, "stable or fresh");
                 }
                 return {};
               },
               [](const ProcessOptions& o) -> std::optional<std::string> {
                 if (o.temporal == engine::Temporal::kStable) return std::nullopt;
                 return "fresh";
               }});
  t.push_back({"threads",
               T::kInteger,
               S::kCommandLine,
               "0..256",
               "worker threads, 0 = all cores (the output never depends on it)",
               {},
               {},
               0,
               256,
               "1",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 o.dither.threads = static_cast<int>(v.integer);
                 return {};
               },
               [](const ProcessOptions&) -> std::optional<std::string> { return std::nullopt; }});
}

std::vector<OptionInfo> make_table() {
  std::vector<OptionInfo> t;
  add_colour_options(t);
  add_matching_options(t);
  add_matrix_options(t);
  add_output_options(t);
  return t;
}

// Rows that read an old spelling but are not in the table: they never appear in the canonical
// form, GET /api/options, --help or the documents, yet requests and stored records (presets,
// dithers) that use them still read. `perceptual` (a boolean before `distance` existed):
// true is distance=luma; false undoes luma and leaves any other distance as it is, so an old
// client that always sends perceptual=false does not undo its distance=oklab.
std::vector<OptionInfo> make_aliases() {
  std::vector<OptionInfo> t;
  t.push_back({"perceptual",
               OptionType::kBoolean,
               OptionScope::kRequest,
               "BOOL",
               "old spelling: true is distance=luma",
               {},
               {},
               0,
               0,
               "false",
               "",
               [](ProcessOptions& o, const OptionValue& v) -> Status {
                 if (v.boolean) {
                   o.dither.metric = engine::Metric::kPerceptual;
                 } else if (o.dither.metric == engine::Metric::kPerceptual) {
                   o.dither.metric = engine::Metric::kEuclidean;
                 }
                 return {};
               },
               [](const ProcessOptions&) -> std::optional<std::string> { return std::nullopt; }});
  return t;
}

}  // namespace

const std::vector<OptionInfo>& option_table() {
  static const std::vector<OptionInfo> table = make_table();
  return table;
}

const OptionInfo* find_option(std::string_view name) {
  for (const OptionInfo& o : option_table()) {
    if (o.name == name) return &o;
  }
  static const std::vector<OptionInfo> aliases = make_aliases();
  for (const OptionInfo& o : aliases) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

std::string_view to_string(OptionType type) {
  switch (type) {
    case OptionType::kString:
      return "string";
    case OptionType::kInteger:
      return "integer";
    case OptionType::kNumber:
      return "number";
    case OptionType::kBoolean:
      return "boolean";
    case OptionType::kJson:
      return "json";
  }
  return "string";
}

Status set_option(ProcessOptions& options, std::string_view name, std::string_view value) {
  const OptionInfo* o = find_option(name);
  if (o == nullptr) {
    return make_error(ErrorKind::kInvalidArgument, "unknown option '" + std::string(name) + "'");
  }
  Result<OptionValue> v = read_value(*o, value);
  if (!v) return v.error();
  if (!o->choices.empty()) {
    // Closed sets of numbers are checked here; names go through the engine's parsers, which
    // also accept their aliases and letter cases.
    const bool listed = std::any_of(o->choices.begin(), o->choices.end(),
                                    [&](const OptionChoice& c) { return c.value == value; });
    if (o->type == OptionType::kInteger && !listed) {
      std::string known;
      for (const OptionChoice& c : o->choices) known += (known.empty() ? "" : ", ") + c.value;
      return bad(name, "expected one of " + known + ", got '" + std::string(value) + "'");
    }
    if (o->name == "halftone") {
      if (Status s = named(name, engine::check_halftone(value)); !s) return s;
    }
  }
  return named(name, o->apply(options, *v));
}

Result<ProcessOptions> parse_request_options(const OptionPairs& pairs, ProcessOptions base) {
  ProcessOptions options = std::move(base);
  for (const auto& [name, value] : pairs) {
    const OptionInfo* o = find_option(name);
    if (o != nullptr && o->scope == OptionScope::kCommandLine) {
      return make_error(ErrorKind::kInvalidArgument,
                        "option '" + name + "' is chosen by the server, not per request");
    }
    if (Status s = set_option(options, name, value); !s) return s.error();
  }
  options.dither.threads = 0;  // all cores; the output does not depend on it
  if (Status s = engine::validate(options.dither); !s) return s.error();
  return options;
}

namespace {

// Whether `o` applies to `options`: always, or while its applies_when option has one of its values.
bool applies(const OptionInfo& o, const ProcessOptions& options) {
  if (o.applies_when.first.empty()) return true;
  const std::optional<std::string> on = find_option(o.applies_when.first)->canonical(options);
  return on && std::find(o.applies_when.second.begin(), o.applies_when.second.end(), *on) !=
                   o.applies_when.second.end();
}

}  // namespace

OptionPairs describe(const ProcessOptions& options) {
  OptionPairs out;
  for (const OptionInfo& o : option_table()) {
    if (!applies(o, options)) continue;
    if (std::optional<std::string> text = o.canonical(options)) {
      out.emplace_back(std::string(o.name), std::move(*text));
    }
  }
  return out;
}

std::string canonical_json(const ProcessOptions& options) {
  json::object o;
  for (auto& [name, value] : describe(options)) o[name] = value;
  return json::serialize(o);
}

Result<ProcessOptions> options_from_json(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return make_error(ErrorKind::kInvalidArgument, "options are not a JSON object");
  }
  OptionPairs pairs;
  for (const auto& [name, value] : v.as_object()) {
    if (!value.is_string()) {
      return make_error(ErrorKind::kInvalidArgument,
                        "option '" + std::string(name) + "' is not a text");
    }
    pairs.emplace_back(std::string(name), std::string(value.as_string()));
  }
  return parse_request_options(pairs);
}

namespace {

json::array choices_json(const std::vector<OptionChoice>& choices) {
  json::array out;
  for (const OptionChoice& c : choices) {
    json::object item;
    item["value"] = c.value;
    if (!c.help.empty()) item["help"] = c.help;
    out.push_back(std::move(item));
  }
  return out;
}

// A number of the table as JSON: whole numbers as integers.
json::value number_json(double d) {
  if (std::trunc(d) == d && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  return d;
}

}  // namespace

std::string options_api_json() {
  json::array options;
  for (const OptionInfo& o : option_table()) {
    if (o.scope == OptionScope::kCommandLine) continue;
    json::object item;
    item["name"] = o.name;
    item["type"] = to_string(o.type);
    item["in"] = o.scope == OptionScope::kPath ? "path" : "query";
    item["help"] = o.help;
    if (!o.default_value.empty()) item["default"] = o.default_value;
    if (!o.default_note.empty()) item["default_note"] = o.default_note;
    if (o.type == OptionType::kInteger || o.type == OptionType::kNumber) {
      item["minimum"] = number_json(o.minimum);
      item["maximum"] = number_json(o.maximum);
    }
    if (!o.choices.empty()) item["choices"] = choices_json(o.choices);
    if (!o.suggestions.empty()) item["suggestions"] = choices_json(o.suggestions);
    if (!o.applies_when.first.empty()) {
      json::array values;
      for (std::string_view v : o.applies_when.second) values.emplace_back(json::string(v));
      item["applies_when"] = {{"option", o.applies_when.first}, {"values", std::move(values)}};
    }
    if (o.colour_list) item["colour_list"] = true;
    options.push_back(std::move(item));
  }
  json::object root;
  root["options"] = std::move(options);
  return json::serialize(root);
}

std::string options_markdown() {
  std::string out = "| option | type | values | default |\n|---|---|---|---|\n";
  for (const OptionInfo& o : option_table()) {
    if (o.scope != OptionScope::kRequest) continue;
    std::string values;
    if (!o.choices.empty()) {
      for (const OptionChoice& c : o.choices) {
        values += (values.empty() ? "" : ", ") + std::string("`") + c.value + "`";
      }
      values += ": ";
    } else if (o.type == OptionType::kInteger || o.type == OptionType::kNumber) {
      values = number_text(o.minimum) + ".." + number_text(o.maximum) + ": ";
    }
    values += o.help;
    const std::string& d = o.default_value.empty() ? o.default_note : o.default_value;
    out += "| `" + std::string(o.name) + "` | " + std::string(to_string(o.type)) + " | " + values +
           " | " + (d.empty() ? "" : "`" + d + "`") + " |\n";
  }
  return out;
}

}  // namespace dither::pipeline
