#include "engine/palette.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <unordered_set>

namespace dither::engine {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<Color> hex_list(std::initializer_list<uint32_t> values) {
  std::vector<Color> out;
  out.reserve(values.size());
  for (uint32_t v : values) {
    out.push_back(Color{static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
                        static_cast<uint8_t>(v)});
  }
  return out;
}

std::vector<Color> websafe() {
  std::vector<Color> out;
  for (int r = 0; r < 6; ++r)
    for (int g = 0; g < 6; ++g)
      for (int b = 0; b < 6; ++b)
        out.push_back(Color{static_cast<uint8_t>(r * 51), static_cast<uint8_t>(g * 51),
                            static_cast<uint8_t>(b * 51)});
  return out;
}

std::vector<Color> grey_ramp(int n) {
  std::vector<Color> out;
  for (int i = 0; i < n; ++i) {
    const uint8_t v = level_value(i, n);
    out.push_back(Color{v, v, v});
  }
  return out;
}

const std::vector<Color> kEga =
    hex_list({0x000000, 0x0000aa, 0x00aa00, 0x00aaaa, 0xaa0000, 0xaa00aa, 0xaa5500, 0xaaaaaa,
              0x555555, 0x5555ff, 0x55ff55, 0x55ffff, 0xff5555, 0xff55ff, 0xffff55, 0xffffff});

Result<int> parse_count(std::string_view text, std::string_view what) {
  int value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || value < 2 || value > 256) {
    return make_error(ErrorKind::kInvalidArgument,
                      std::string(what) + " must be a whole number from 2 to 256, got '" +
                          std::string(text) + "'");
  }
  return value;
}

}  // namespace

uint8_t level_value(int i, int levels) {
  return static_cast<uint8_t>((2 * i * 255 + (levels - 1)) / (2 * (levels - 1)));
}

Palette Palette::uniform_levels(int levels) {
  Palette p;
  p.levels_ = levels;
  for (int i = 0; i < levels; ++i) p.level_values_.push_back(engine::level_value(i, levels));
  return p;
}

Palette Palette::from_colors(const std::vector<Color>& colors) {
  Palette p;
  std::unordered_set<uint32_t> seen;
  for (const Color& c : colors) {
    if (seen.insert(c.packed()).second) p.colors_.push_back(c);
  }
  return p;
}

uint64_t Palette::size() const {
  if (is_levels()) return uint64_t(levels_) * uint64_t(levels_) * uint64_t(levels_);
  return colors_.size();
}

bool Palette::contains(Color c) const {
  if (is_levels()) {
    auto has = [&](uint8_t v) {
      return std::find(level_values_.begin(), level_values_.end(), v) != level_values_.end();
    };
    return has(c.r) && has(c.g) && has(c.b);
  }
  return std::find(colors_.begin(), colors_.end(), c) != colors_.end();
}

std::string Palette::describe() const {
  if (is_levels()) return "levels:" + std::to_string(levels_);
  return std::to_string(colors_.size()) + " colours";
}

const std::vector<NamedPaletteInfo>& named_palettes() {
  static const std::vector<NamedPaletteInfo> list = {
      {"bw", "black and white"},
      {"cga", "CGA 16-colour RGBI palette (same as ega)"},
      {"cga4", "CGA mode 4, palette 1 high intensity: black, cyan, magenta, white"},
      {"ega", "EGA default 16 colours"},
      {"gameboy", "original Game Boy, 4 greens"},
      {"pico8", "PICO-8 fantasy console, 16 colours"},
      {"websafe", "216 web-safe colours (6 levels per channel)"},
      {"grey4", "4 grey levels"},
  };
  return list;
}

Result<std::vector<Color>> named_palette(std::string_view name) {
  const std::string n = lower(name);
  if (n == "bw" || n == "mono") return hex_list({0x000000, 0xffffff});
  if (n == "cga" || n == "ega") return kEga;
  if (n == "cga4") return hex_list({0x000000, 0x55ffff, 0xff55ff, 0xffffff});
  if (n == "gameboy" || n == "gb") return hex_list({0x0f380f, 0x306230, 0x8bac0f, 0x9bbc0f});
  if (n == "pico8" || n == "pico-8") {
    return hex_list({0x000000, 0x1d2b53, 0x7e2553, 0x008751, 0xab5236, 0x5f574f, 0xc2c3c7, 0xfff1e8,
                     0xff004d, 0xffa300, 0xffec27, 0x00e436, 0x29adff, 0x83769c, 0xff77a8,
                     0xffccaa});
  }
  if (n == "websafe" || n == "web") return websafe();
  if (n == "grey4" || n == "gray4") return grey_ramp(4);
  std::string known;
  for (const auto& info : named_palettes()) {
    if (!known.empty()) known += ", ";
    known += info.name;
  }
  return make_error(ErrorKind::kInvalidArgument,
                    "unknown palette '" + std::string(name) + "' (known: " + known + ")");
}

Result<Color> parse_hex_color(std::string_view text) {
  std::string_view s = text;
  if (!s.empty() && s.front() == '#') s.remove_prefix(1);
  auto bad = [&] {
    return make_error(ErrorKind::kInvalidArgument,
                      "'" + std::string(text) + "' is not a hex colour like #ff8800 or #f80");
  };
  if (s.size() != 3 && s.size() != 6) return bad();
  uint32_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return bad();
  if (s.size() == 3) {
    const uint32_t r = (v >> 8) & 0xf, g = (v >> 4) & 0xf, b = v & 0xf;
    return Color{static_cast<uint8_t>(r * 17), static_cast<uint8_t>(g * 17),
                 static_cast<uint8_t>(b * 17)};
  }
  return Color{static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 8),
               static_cast<uint8_t>(v)};
}

Result<PaletteSpec> parse_palette_spec(std::string_view text) {
  PaletteSpec spec;
  const std::string t = lower(text);
  if (t.empty()) return make_error(ErrorKind::kInvalidArgument, "palette is empty");
  const size_t colon = t.find(':');
  const std::string head = t.substr(0, colon);
  const std::string_view arg =
      colon == std::string::npos ? std::string_view{} : std::string_view(t).substr(colon + 1);
  auto counted = [&](PaletteSpec::Kind kind, std::string_view what) -> Result<PaletteSpec> {
    auto n = parse_count(arg, what);
    if (!n) return n.error();
    spec.kind = kind;
    spec.count = *n;
    return spec;
  };
  if (colon != std::string::npos && (head == "levels" || head == "channels")) {
    return counted(PaletteSpec::Kind::kLevels, "levels");
  }
  if (colon != std::string::npos && (head == "grey" || head == "gray")) {
    return counted(PaletteSpec::Kind::kGrey, "grey levels");
  }
  if (colon != std::string::npos && head == "adaptive") {
    return counted(PaletteSpec::Kind::kAdaptive, "adaptive colour count");
  }
  const bool custom_prefix = colon != std::string::npos && head == "custom";
  if (custom_prefix || t.front() == '#' || t.find(',') != std::string::npos) {
    std::string_view list = custom_prefix ? arg : std::string_view(t);
    std::vector<Color> colors;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      auto c = parse_hex_color(item);
      if (!c) return c.error();
      colors.push_back(*c);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    if (colors.empty() || colors.size() > kMaxPaletteColors) {
      return make_error(
          ErrorKind::kInvalidArgument,
          "a custom palette needs 1 to 256 colours, got " + std::to_string(colors.size()));
    }
    spec.kind = PaletteSpec::Kind::kCustom;
    spec.colors = std::move(colors);
    return spec;
  }
  auto named = named_palette(t);
  if (!named) return named.error();
  spec.kind = PaletteSpec::Kind::kNamed;
  spec.name = t;
  return spec;
}

std::string PaletteSpec::to_string() const {
  switch (kind) {
    case Kind::kLevels:
      return "levels:" + std::to_string(count);
    case Kind::kGrey:
      return "grey:" + std::to_string(count);
    case Kind::kAdaptive:
      return "adaptive:" + std::to_string(count);
    case Kind::kNamed:
      return name;
    case Kind::kCustom: {
      std::string out;
      for (const Color& c : colors) {
        if (!out.empty()) out += ',';
        out += to_hex(c);
      }
      return out;
    }
  }
  return {};
}

Palette resolve_palette(const PaletteSpec& spec, const Image& image, ColorSpace space) {
  switch (spec.kind) {
    case PaletteSpec::Kind::kLevels:
      return Palette::uniform_levels(spec.count);
    case PaletteSpec::Kind::kGrey:
      return Palette::from_colors(grey_ramp(spec.count));
    case PaletteSpec::Kind::kNamed:
      return Palette::from_colors(*named_palette(spec.name));
    case PaletteSpec::Kind::kCustom:
      return Palette::from_colors(spec.colors);
    case PaletteSpec::Kind::kAdaptive:
      return Palette::from_colors(adaptive_palette(image, spec.count, space));
  }
  return Palette::uniform_levels(2);
}

}  // namespace dither::engine
