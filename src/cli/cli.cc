#include "cli/cli.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "cli/batch.h"
#include "cli/files.h"
#include "engine/options.h"
#include "engine/palette.h"
#include "pipeline/pipeline.h"
#include "pipeline/presets.h"

namespace dither::cli {

namespace {

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

// The command line is a local, trusted user: generous limits, still bounded.
constexpr size_t kDefaultMaxBytes = size_t{512} << 20;
constexpr uint64_t kDefaultMaxPixels = 250'000'000;

std::string flag_of(std::string_view option) {
  std::string s = "--" + std::string(option);
  for (char& c : s) {
    if (c == '_') c = '-';
  }
  return s;
}

// `text` in lines of at most 100 columns, the first after `left` (padded to 31 columns), the
// others indented as far.
std::string wrapped(std::string left, std::string_view text) {
  constexpr size_t kIndent = 31, kWidth = 100;
  if (left.size() < kIndent) left.resize(kIndent, ' ');
  std::string out = left;
  size_t column = left.size();
  while (!text.empty()) {
    const size_t space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (column > kIndent && column + 1 + word.size() > kWidth) {
      out += "\n" + std::string(kIndent, ' ');
      column = kIndent;
    } else if (column > kIndent) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
  }
  return out + "\n";
}

// One entry per option of the table, with its default.
std::string options_text() {
  std::string text;
  for (const auto& o : pipeline::option_table()) {
    std::string help = o.help;
    const std::string& d = o.default_value.empty() ? o.default_note : o.default_value;
    if (!d.empty()) help += " (default " + d + ")";
    text += wrapped("  " + flag_of(o.name) + " " + o.value_hint, help);
  }
  return text;
}

void print_help(std::ostream& out) {
  out << "usage: dither INPUT OUTPUT [options]\n"
         "       dither FOLDER OUT_FOLDER [options]\n"
         "       dither INPUT... --out-dir OUT_FOLDER [options]\n"
         "       dither --list | --list-options [text|markdown|json] | --help | --version\n\n"
         "Dithers INPUT (JPEG, PNG, WebP, GIF or TIFF) to OUTPUT. The output format follows\n"
         "OUTPUT's extension (.png, .gif, .webp) unless --format is given; OUTPUT '-' writes to\n"
         "standard output. Every output pixel is a colour of the palette.\n\n"
         "With a folder, or several inputs and --out-dir, every image (a folder's .jpg, .jpeg,\n"
         ".png, .webp, .gif, .tif and .tiff files) becomes OUT_FOLDER/NAME.png (or --format's\n"
         "extension), several files at once; a file that fails is reported and the others are\n"
         "still done (exit 1 if any failed).\n\noptions:\n";
  out << "  --preset NAME                a built-in preset's options (dither --list); the options\n"
         "                               given beside it override it\n"
      << options_text()
      << "  --max-pixels N               refuse larger images (default 250000000)\n"
         "  --max-bytes N                refuse larger files (default 536870912)\n"
         "  --timings                    print seconds per stage (read, decode, dither, encode,\n"
         "                               write) as one JSON line on standard error (one file)\n"
         "  --out-dir DIR                where the results of several inputs go (made if missing)\n"
         "  --jobs N                     files at once (default: one per core)\n"
         "  --progress auto|bar|lines    a progress bar, or one line per file (default: a bar\n"
         "                               when standard error is a terminal)\n\n"
         "Boolean options may be given alone (--serpentine) or with a value (--serpentine "
         "false).\n";
}

void print_list(std::ostream& out) {
  out << "algorithms:\n";
  for (const auto& a : engine::algorithms()) {
    std::string name(a.name);
    name.resize(24, ' ');
    out << "  " << name << a.description << "\n";
  }
  out << "\npalettes:\n";
  for (const auto& p : engine::named_palettes()) {
    std::string name(p.name);
    name.resize(24, ' ');
    out << "  " << name << p.description << "\n";
  }
  out << "  levels:N                N levels per channel (2..256), N^3 colours\n"
         "  grey:N                  N grey levels (2..256)\n"
         "  adaptive:N              N colours chosen from the image (2..256)\n"
         "  #rrggbb,#rrggbb,...     your own colours (1..256)\n"
         "\nhalftone matrices:\n ";
  for (auto h : engine::halftone_names()) out << " " << h;
  out << "\n\npresets (--preset NAME):\n";
  for (const pipeline::BuiltinPreset& p : pipeline::builtin_presets()) {
    std::string name(p.name);
    name.resize(24, ' ');
    out << "  " << name << p.description << "\n  " << std::string(24, ' ') << p.options << "\n";
  }
}

bool is_boolean(std::string_view name) {
  const pipeline::OptionInfo* o = pipeline::find_option(name);
  return o != nullptr && o->type == pipeline::OptionType::kBoolean;
}

// What the command line asks for, read but not done.
struct Invocation {
  enum class Action { kRun, kHelp, kList, kListOptions, kVersion } action = Action::kRun;
  std::string list_format;  // --list-options: "text", "markdown" or "json"
  pipeline::ProcessOptions options;
  imaging::Limits limits{kDefaultMaxBytes, kDefaultMaxPixels};
  std::vector<std::string> positional;
  bool format_given = false;
  bool timings = false;
  bool out_dir_given = false;
  Batch batch;
};

// One of the command line's own flags (not an option of the table) and its value; an error
// message, or "" when done, or nullopt when `name` is not one of them.
std::optional<std::string> read_own_flag(const std::string& name, const std::string& value,
                                         Invocation& inv) {
  if (name == "out_dir") {
    if (value.empty()) return "option '--out-dir' needs a folder";
    inv.batch.out_dir = value;
    inv.out_dir_given = true;
    return "";
  }
  if (name == "jobs") {
    char* end = nullptr;
    const long n = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || n < 1 || n > 256) {
      return "option '--jobs' needs a whole number from 1 to 256";
    }
    inv.batch.jobs = static_cast<int>(n);
    return "";
  }
  if (name == "progress") {
    if (value == "auto") {
      inv.batch.progress = Progress::kAuto;
    } else if (value == "bar") {
      inv.batch.progress = Progress::kBar;
    } else if (value == "lines") {
      inv.batch.progress = Progress::kLines;
    } else {
      return "option '--progress' is auto, bar or lines";
    }
    return "";
  }
  if (name == "max_pixels" || name == "max_bytes") {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || n == 0) {
      return "option '--" + name + "' needs a positive whole number";
    }
    (name == "max_pixels" ? inv.limits.max_pixels : inv.limits.max_bytes) = n;
    return "";
  }
  return std::nullopt;
}

// The arguments read into an Invocation, or a usage error's message. Options apply over
// --preset's wherever it stands.
Result<Invocation> parse_arguments(const std::vector<std::string>& args) {
  const auto usage = [](std::string message) {
    return make_error(ErrorKind::kInvalidArgument, std::move(message));
  };
  Invocation inv;
  pipeline::OptionPairs given;
  std::string preset;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    using Action = Invocation::Action;
    if (arg == "--help" || arg == "-h" || arg == "--list" || arg == "--version") {
      inv.action = arg == "--list"      ? Action::kList
                   : arg == "--version" ? Action::kVersion
                                        : Action::kHelp;
      return inv;
    }
    if (arg == "--list-options") {
      inv.action = Action::kListOptions;
      inv.list_format = i + 1 < args.size() ? args[i + 1] : "text";
      if (inv.list_format != "text" && inv.list_format != "markdown" && inv.list_format != "json") {
        return usage("option '--list-options' is followed by text, markdown or json");
      }
      return inv;
    }
    if (arg == "--timings") {
      inv.timings = true;
      continue;
    }
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
      if (arg.size() > 1 && arg[0] == '-') return usage("unknown option '" + arg + "'");
      inv.positional.push_back(arg);
      continue;
    }
    // --name value, --name=value, or a lone boolean --name.
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    for (char& c : name) {
      if (c == '-') c = '_';
    }
    if (!has_value) {
      const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
      if (is_boolean(name) &&
          !(next_is_value && (args[i + 1] == "true" || args[i + 1] == "false"))) {
        value = "true";
      } else if (next_is_value) {
        value = args[++i];
      } else {
        return usage("option '" + arg + "' needs a value");
      }
    }
    if (std::optional<std::string> own = read_own_flag(name, value, inv)) {
      if (!own->empty()) return usage(*own);
    } else if (name == "preset") {
      preset = value;
    } else {
      given.emplace_back(name, value);
      if (name == "format") inv.format_given = true;
    }
  }
  if (!preset.empty()) {
    const pipeline::BuiltinPreset* p = pipeline::find_builtin_preset(preset);
    if (p == nullptr) return usage("no preset '" + preset + "' (dither --list names them)");
    inv.options = pipeline::preset_options(*p);
  }
  for (const auto& [name, value] : given) {
    if (Status s = pipeline::set_option(inv.options, name, value); !s)
      return usage(s.error().message);
  }
  // The options as a whole (algorithm custom-kernel without a kernel), before any file is read.
  if (Status s = engine::validate(inv.options.dither); !s) return usage(s.error().message);
  return inv;
}

// INPUT to OUTPUT.
int run_one(Invocation& inv, std::ostream& out, std::ostream& err) {
  const std::string& input = inv.positional[0];
  const std::string& output = inv.positional[1];
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  Clock::time_point start = Clock::now();
  auto bytes = read_file(input, inv.limits.max_bytes);
  const double read_seconds = seconds_since(start);
  if (!bytes) {
    err << "dither: " << bytes.error().message << "\n";
    return kFailed;
  }
  auto result = process(*bytes, inv.options, inv.limits);
  if (!result) {
    err << "dither: " << input << ": " << result.error().message << "\n";
    return kFailed;
  }
  bytes->clear();
  bytes->shrink_to_fit();
  start = Clock::now();
  if (Status s = write_file(output, result->bytes, out); !s) {
    err << "dither: " << s.error().message << "\n";
    return kFailed;
  }
  if (inv.timings) {
    // One JSON object on stderr, seconds of wall time per stage (pipeline.h, StageTimes).
    const pipeline::StageTimes& t = result->stages;
    char line[320];
    std::snprintf(line, sizeof line,
                  "{\"read\": %.6f, \"decode\": %.6f, \"dither\": %.6f, \"waited\": %.6f, "
                  "\"encode\": %.6f, \"write\": %.6f}\n",
                  read_seconds, t.decode, t.dither, t.waited, t.encode, seconds_since(start));
    err << line;
  }
  return kOk;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        bool err_is_terminal) {
  auto usage_error = [&](const std::string& message) {
    err << "dither: " << message << " (try --help)\n";
    return kUsage;
  };
  Result<Invocation> parsed = parse_arguments(args);
  if (!parsed) return usage_error(parsed.error().message);
  Invocation& inv = *parsed;
  switch (inv.action) {
    case Invocation::Action::kHelp:
      print_help(out);
      return kOk;
    case Invocation::Action::kList:
      print_list(out);
      return kOk;
    case Invocation::Action::kListOptions:
      out << (inv.list_format == "markdown" ? pipeline::options_markdown()
              : inv.list_format == "json"   ? pipeline::options_api_json() + "\n"
                                            : options_text());
      return kOk;
    case Invocation::Action::kVersion:
      out << "dither 0.1.0\n";
      return kOk;
    case Invocation::Action::kRun:
      break;
  }
  // Several files: --out-dir, or a folder and the folder its results go to.
  std::error_code ec;
  if (!inv.out_dir_given && inv.positional.size() == 2 &&
      std::filesystem::is_directory(inv.positional[0], ec)) {
    inv.batch.out_dir = inv.positional.back();
    inv.positional.pop_back();
    inv.out_dir_given = true;
  }
  if (inv.out_dir_given) {
    if (inv.positional.empty()) return usage_error("no inputs for --out-dir");
    if (inv.timings) return usage_error("--timings is for one file");
    inv.batch.inputs = std::move(inv.positional);
    inv.batch.options = inv.options;
    inv.batch.limits = inv.limits;
    return run_batch(inv.batch, err, err_is_terminal);
  }
  if (inv.positional.size() != 2) {
    return usage_error(inv.positional.empty() ? "INPUT and OUTPUT are required"
                                              : "expected exactly INPUT and OUTPUT");
  }
  const std::string& output = inv.positional[1];
  if (!inv.format_given && output != "-") {
    const std::string ext = std::filesystem::path(output).extension().string();
    auto f = imaging::parse_output_format(ext.empty() ? "" : ext.substr(1));
    if (!f) {
      return usage_error("cannot tell the output format from '" + output +
                         "': use .png, .gif or .webp, or --format");
    }
    inv.options.format = *f;
  }
  return run_one(inv, out, err);
}

}  // namespace dither::cli
