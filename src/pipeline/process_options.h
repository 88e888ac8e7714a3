// Everything a caller can ask of one dither, and the one table that names it.
//
// Each option is one row of option_table(): its name, type, range or choices, default and help,
// and how it reads into and out of ProcessOptions. Everything else is made from the table: the
// command line's flags and --help, the HTTP query string and JSON body (services/dither), the
// canonical form records store, GET /api/options (which the web page builds its form from), and
// the option tables of docs/API.md and the OpenAPI document (options_doc_test.cc fails when they
// differ from the table). A new option is one new row.
//
//   ProcessOptions o;
//   if (Status s = set_option(o, "palette", "ega"); !s) return s.error();
//   if (Status s = set_option(o, "serpentine", "true"); !s) return s.error();
//   std::string stored = canonical_json(o);  // {"algorithm":"floyd-steinberg","palette":"ega",...}
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "engine/animation.h"
#include "engine/options.h"
#include "engine/palette.h"
#include "imaging/codec.h"

namespace dither::pipeline {

struct ProcessOptions {
  engine::PaletteSpec palette;   // default: levels:2, the prototype's channels=2
  engine::DitherOptions dither;  // algorithm and its parameters
  int width = 0;                 // resize before dithering; 0 = from height / unchanged
  int height = 0;
  int upscale = 1;  // integer nearest-neighbour enlargement after dithering (1..16)
  imaging::OutputFormat format = imaging::OutputFormat::kPng;
  // Animations: whether a pixel whose source did not change keeps its output (engine/animation.h).
  engine::Temporal temporal = engine::Temporal::kStable;
};

// kJson: a JSON value as text (kernel, matrix). A JSON body may give the value itself or its
// text; everywhere else it is text.
enum class OptionType { kString, kInteger, kNumber, kBoolean, kJson };

// Where an option may be given.
enum class OptionScope {
  kRequest,      // everywhere: command line, HTTP query and body, presets, AUTO_DITHER_OPTIONS
  kPath,         // channels: over HTTP only as the path's {channels}; elsewhere as any option
  kCommandLine,  // threads: the command line only (a server chooses its own)
};

// An option's value once its text has been read by its type (set_option does that).
struct OptionValue {
  std::string_view text;  // as given
  bool boolean = false;   // kBoolean
  long long integer = 0;  // kInteger
  double number = 0;      // kNumber
};

struct OptionChoice {
  std::string value;  // canonical spelling
  std::string help;   // may be empty
};

struct OptionInfo {
  std::string_view name;  // snake_case; the command line spells it --kebab-case
  OptionType type;
  OptionScope scope;
  std::string value_hint;  // for --help, e.g. "NAME", "2..256"
  std::string help;
  // The closed set of canonical values (algorithm, bayer_size, halftone, format); empty when open.
  std::vector<OptionChoice> choices;
  // Open sets: common values to offer (palette names); any other value of the syntax is accepted.
  std::vector<OptionChoice> suggestions;
  // kInteger and kNumber: the accepted range.
  double minimum = 0;
  double maximum = 0;
  std::string default_value;  // canonical text; "" when it depends (the palette on channels)
  std::string default_note;   // for the docs when default_value is "" ("levels:{channels}")
  // Reads the typed value into the options; a refusal's message need not name the option.
  Status (*apply)(ProcessOptions&, const OptionValue&);
  // The canonical text of this option in `options`, or nothing when it has no text of its own
  // (channels is the palette's; alpha keep; kernel unset). Whether it applies at all is
  // applies_when's business: describe() leaves out an option that does not apply.
  std::optional<std::string> (*canonical)(const ProcessOptions&);
  // Applies only when the option named first has one of the values second (bayer_size:
  // algorithm, {bayer}; seed: algorithm, {random, zhou-fang}); empty when always. The canonical
  // form leaves the option out otherwise.
  std::pair<std::string_view, std::vector<std::string_view>> applies_when = {};
  bool colour_list = false;  // a value may list #rrggbb colours (the page offers a picker)
};

const std::vector<OptionInfo>& option_table();
// The row named `name`, or nullptr.
const OptionInfo* find_option(std::string_view name);
std::string_view to_string(OptionType type);  // "string", "integer", "number", "boolean", "json"

// Sets one option of any scope from its text form; unknown names and bad values are
// kInvalidArgument errors whose message names the option.
Status set_option(ProcessOptions& options, std::string_view name, std::string_view value);

using OptionPairs = std::vector<std::pair<std::string, std::string>>;

// A request's options (scope kRequest only) applied in order over `base` (a later value wins),
// then the combination validated. The result dithers with every core (threads = 0): the output
// does not depend on it.
Result<ProcessOptions> parse_request_options(const OptionPairs& pairs, ProcessOptions base = {});

// The canonical form: every option that applies, in table order, as (name, text) pairs; reading
// it back with set_option gives the same options. Records store it as a JSON object of texts.
OptionPairs describe(const ProcessOptions& options);
std::string canonical_json(const ProcessOptions& options);
// Options from a canonical_json() text (or any JSON object of request options as texts).
Result<ProcessOptions> options_from_json(std::string_view json);

// Made from the table for the surfaces that show it (and checked against the hand-written
// documents by options_doc_test.cc):
std::string options_api_json();  // GET /api/options: {"options": [...]} of every HTTP option
std::string options_markdown();  // docs/API.md's option table

}  // namespace dither::pipeline
