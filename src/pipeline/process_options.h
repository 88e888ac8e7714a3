// Everything a caller can ask of one dither, and the one table that names it.
//
// The command-line tool, the HTTP query string and the JSON body all set options through
// set_option() with the names of option_table(), so they accept exactly the same things and
// report errors the same way. The table also feeds --help and the OpenAPI document.
//
//   ProcessOptions o;
//   if (Status s = set_option(o, "palette", "ega"); !s) return s.error();
//   if (Status s = set_option(o, "serpentine", "true"); !s) return s.error();
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "engine/options.h"
#include "engine/palette.h"
#include "imaging/codec.h"

namespace dither {

struct ProcessOptions {
  PaletteSpec palette;   // default: levels:2, the prototype's channels=2
  DitherOptions dither;  // algorithm and its parameters
  int width = 0;         // resize before dithering; 0 = from height / unchanged
  int height = 0;
  int upscale = 1;  // integer nearest-neighbour enlargement after dithering (1..16)
  imaging::OutputFormat format = imaging::OutputFormat::kPng;
};

enum class OptionType { kString, kInteger, kNumber, kBoolean };

struct OptionInfo {
  std::string_view name;  // snake_case; the CLI spells it --kebab-case
  OptionType type;
  std::string_view value_hint;  // e.g. "NAME", "2..256"
  std::string_view help;
};

const std::vector<OptionInfo>& option_table();

// Sets one option from its text form; unknown names and bad values are kInvalidArgument errors
// whose message names the option.
Status set_option(ProcessOptions& options, std::string_view name, std::string_view value);

// Canonical values of every option, as (name, text) pairs, for records and logs.
std::vector<std::pair<std::string, std::string>> describe(const ProcessOptions& options);

}  // namespace dither
