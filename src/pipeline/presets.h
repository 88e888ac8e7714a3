// Presets: a name for a set of dither options (docs/API.md "Presets").
//
// The built-in ones are here, for every surface (the command line's --preset, the service's
// preset=NAME, AUTO_DITHER_PRESET); an owner's own presets are stored by the dithering service
// (DitherRepository::put_preset) in the same canonical form and read back with options_from_json.
//
//   const BuiltinPreset* p = find_builtin_preset("gameboy");
//   Result<ProcessOptions> o = parse_request_options(extra_pairs, preset_options(*p));
#pragma once

#include <string_view>
#include <vector>

#include "common/result.h"
#include "pipeline/process_options.h"

namespace dither::pipeline {

struct BuiltinPreset {
  std::string_view name;
  std::string_view description;
  std::string_view options;  // query form: "algorithm=atkinson&palette=bw"
};

const std::vector<BuiltinPreset>& builtin_presets();
const BuiltinPreset* find_builtin_preset(std::string_view name);  // exact name, or nullptr

// The preset's options over `base` (the defaults; for a request, levels:{channels}).
ProcessOptions preset_options(const BuiltinPreset& preset, ProcessOptions base = {});

// A preset name: 1 to 64 of a-z, 0-9, '-', '_' and '.', starting with a letter or digit, and not
// the name of a built-in one (for an owner's preset). kInvalidArgument saying why otherwise.
Status check_preset_name(std::string_view name, bool custom);

}  // namespace dither::pipeline
