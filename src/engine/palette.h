// Palettes: the set of colours every output pixel is drawn from.
//
// Two shapes, because "channels" palettes can be far larger than any list:
//  - levels: `c` uniform levels per channel, exactly as the prototype defined "channels": a value
//    v in [0, 1] quantises to round(v * (c - 1)) / (c - 1). c = 2 on RGB gives 8 colours;
//    c = 256 is the identity. Level i of c has the 8-bit value round(i * 255 / (c - 1)).
//  - list: up to 256 explicit colours (named retro palettes, grey ramps, custom hex lists, and
//    adaptive palettes computed from an image).
//
//   Result<PaletteSpec> spec = parse_palette_spec("pico8");
//   Palette p = resolve_palette(*spec, image);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/color.h"
#include "engine/image.h"

namespace dither::engine {

inline constexpr int kMaxPaletteColors = 256;

class Palette {
 public:
  // `levels` per channel, 2..256 each.
  static Palette uniform_levels(int levels);
  // 1..256 distinct colours, order kept (duplicates removed).
  static Palette from_colors(const std::vector<Color>& colors);

  bool is_levels() const { return levels_ > 0; }
  int levels() const { return levels_; }  // 0 for a list palette
  // The 8-bit value of level i (0 <= i < levels()).
  uint8_t level_value(int i) const { return level_values_[static_cast<size_t>(i)]; }
  // Number of distinct colours: levels^3, or the list's length.
  uint64_t size() const;
  // The explicit colours of a list palette (empty for levels).
  const std::vector<Color>& colors() const { return colors_; }
  bool contains(Color c) const;
  // A short description, e.g. "levels:2" or "16 colours".
  std::string describe() const;

 private:
  int levels_ = 0;
  std::vector<uint8_t> level_values_;
  std::vector<Color> colors_;
};

// The level value formula on its own: round(i * 255 / (levels - 1)), half up.
uint8_t level_value(int i, int levels);

// What the user asked for; resolved against an image (adaptive palettes need the pixels).
struct PaletteSpec {
  enum class Kind { kLevels, kGrey, kNamed, kCustom, kAdaptive };
  Kind kind = Kind::kLevels;
  int count = 2;                  // levels per channel, grey levels or adaptive colour count
  std::string name;               // for kNamed
  std::vector<Color> colors;      // for kCustom
  std::string to_string() const;  // canonical text form, parseable by parse_palette_spec
};

// Text forms: "levels:N" (2..256), "grey:N" / "gray:N" (2..256), a named palette ("ega"),
// "adaptive:N" (2..256), or a custom list "#rrggbb,#rrggbb,..." / "custom:rrggbb,rgb,..."
// (1..256 colours, '#' optional, 3- or 6-digit hex).
Result<PaletteSpec> parse_palette_spec(std::string_view text);

// The colours of a named palette, or an error naming the known ones.
Result<std::vector<Color>> named_palette(std::string_view name);
// Names of all named palettes with a one-line description each.
struct NamedPaletteInfo {
  std::string_view name;
  std::string_view description;
};
const std::vector<NamedPaletteInfo>& named_palettes();

// Parses one "#rrggbb", "rrggbb", "#rgb" or "rgb".
Result<Color> parse_hex_color(std::string_view text);

// Resolves a spec into concrete colours; `image` and `space` are only read for adaptive palettes,
// which are fitted for the working space the image will be dithered in.
Palette resolve_palette(const PaletteSpec& spec, const Image& image,
                        ColorSpace space = ColorSpace::kLinear);

// An adaptive palette of `count` colours for `image` (fewer only when the image has fewer):
// median cut and k-means, then refined for error diffusion in `space`, the working space the
// image will be dithered in (docs/ENGINE-PALETTES.md). Deterministic: same image, count and
// space, same palette.
std::vector<Color> adaptive_palette(const Image& image, int count,
                                    ColorSpace space = ColorSpace::kLinear);

}  // namespace dither::engine
