#include "pipeline/presets.h"

#include <cstdlib>
#include <string>

namespace dither::pipeline {

const std::vector<BuiltinPreset>& builtin_presets() {
  // Each shows off something of the engine; docs/img/presets/ has a picture of each
  // (scripts/preset_pictures.sh).
  static const std::vector<BuiltinPreset> presets = {
      {"gameboy", "Game Boy Camera: 4 greens, ordered 4x4 Bayer dither",
       "palette=gameboy&algorithm=bayer&bayer_size=4"},
      {"newspaper", "newspaper halftone: black ink in angled clustered dots",
       "palette=bw&algorithm=halftone&halftone=h6x6a"},
      {"mac", "classic 1-bit Macintosh: black and white, Atkinson's dither",
       "palette=bw&algorithm=atkinson"},
      {"pico8", "PICO-8 fantasy console: its 16 colours, serpentine Floyd-Steinberg, luma-weighted",
       "palette=pico8&algorithm=floyd-steinberg&serpentine=true&distance=luma"},
      {"ega-blue-noise", "EGA's 16 colours with a blue-noise mask: fine grain, no worms",
       "palette=ega&algorithm=blue-noise"},
      {"sketch", "pencil sketch: 4 greys, Jarvis-Judice-Ninke, sRGB tone",
       "palette=grey:4&algorithm=jarvis-judice-ninke&linear_light=false"},
  };
  return presets;
}

const BuiltinPreset* find_builtin_preset(std::string_view name) {
  for (const BuiltinPreset& p : builtin_presets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

ProcessOptions preset_options(const BuiltinPreset& preset, ProcessOptions base) {
  std::string_view rest = preset.options;
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const size_t eq = item.find('=');
    // The built-in table is tested (presets_test.cc): every value is valid.
    if (Status s = set_option(base, item.substr(0, eq), item.substr(eq + 1)); !s) std::abort();
  }
  return base;
}

Status check_preset_name(std::string_view name, bool custom) {
  const auto refuse = [&](const std::string& why) -> Status {
    return make_error(ErrorKind::kInvalidArgument, "preset name: " + why);
  };
  if (name.empty() || name.size() > 64) return refuse("1 to 64 characters");
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.'))) {
      return refuse(
          "lower-case letters, digits, '-', '_' and '.', starting with a letter or digit");
    }
  }
  if (custom && find_builtin_preset(name) != nullptr) {
    return refuse("'" + std::string(name) + "' is a built-in preset");
  }
  return {};
}

}  // namespace dither::pipeline
