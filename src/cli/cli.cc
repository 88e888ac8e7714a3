#include "cli/cli.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/batch.h"
#include "cli/files.h"
#include "engine/options.h"
#include "engine/palette.h"
#include "pipeline/pipeline.h"

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

void print_help(std::ostream& out) {
  out << "usage: dither INPUT OUTPUT [options]\n"
         "       dither FOLDER OUT_FOLDER [options]\n"
         "       dither INPUT... --out-dir OUT_FOLDER [options]\n"
         "       dither --list | --help | --version\n\n"
         "Dithers INPUT (JPEG, PNG, WebP, GIF or TIFF) to OUTPUT. The output format follows\n"
         "OUTPUT's extension (.png, .gif, .webp) unless --format is given; OUTPUT '-' writes to\n"
         "standard output. Every output pixel is a colour of the palette.\n\n"
         "With a folder, or several inputs and --out-dir, every image (a folder's .jpg, .jpeg,\n"
         ".png, .webp, .gif, .tif and .tiff files) becomes OUT_FOLDER/NAME.png (or --format's\n"
         "extension), several files at once; a file that fails is reported and the others are\n"
         "still done (exit 1 if any failed).\n\noptions:\n";
  for (const auto& o : option_table()) {
    std::string left = "  " + flag_of(o.name) + " " + std::string(o.value_hint);
    if (left.size() < 28) left.resize(28, ' ');
    out << left << " " << o.help << "\n";
  }
  out << "  --max-pixels N               refuse larger images (default 250000000)\n"
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
  for (const auto& a : algorithms()) {
    std::string name(a.name);
    name.resize(24, ' ');
    out << "  " << name << a.description << "\n";
  }
  out << "\npalettes:\n";
  for (const auto& p : named_palettes()) {
    std::string name(p.name);
    name.resize(24, ' ');
    out << "  " << name << p.description << "\n";
  }
  out << "  levels:N                N levels per channel (2..256), N^3 colours\n"
         "  grey:N                  N grey levels (2..256)\n"
         "  adaptive:N              N colours chosen from the image (2..256)\n"
         "  #rrggbb,#rrggbb,...     your own colours (1..256)\n"
         "\nhalftone matrices:\n ";
  for (auto h : halftone_names()) out << " " << h;
  out << "\n";
}

bool is_boolean(std::string_view name) {
  for (const auto& o : option_table()) {
    if (o.name == name) return o.type == OptionType::kBoolean;
  }
  return false;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        bool err_is_terminal) {
  auto usage_error = [&](const std::string& message) {
    err << "dither: " << message << " (try --help)\n";
    return kUsage;
  };
  ProcessOptions options;
  imaging::Limits limits{kDefaultMaxBytes, kDefaultMaxPixels};
  std::vector<std::string> positional;
  bool format_given = false;
  bool timings = false;
  Batch batch;
  bool out_dir_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      print_help(out);
      return kOk;
    }
    if (arg == "--list") {
      print_list(out);
      return kOk;
    }
    if (arg == "--timings") {
      timings = true;
      continue;
    }
    if (arg == "--version") {
      out << "dither 0.1.0\n";
      return kOk;
    }
    if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
      if (arg.size() > 1 && arg[0] == '-') return usage_error("unknown option '" + arg + "'");
      positional.push_back(arg);
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
        return usage_error("option '" + arg + "' needs a value");
      }
    }
    if (name == "out_dir") {
      if (value.empty()) return usage_error("option '--out-dir' needs a folder");
      batch.out_dir = value;
      out_dir_given = true;
      continue;
    }
    if (name == "jobs") {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < 1 || n > 256) {
        return usage_error("option '--jobs' needs a whole number from 1 to 256");
      }
      batch.jobs = static_cast<int>(n);
      continue;
    }
    if (name == "progress") {
      if (value == "auto") {
        batch.progress = Progress::kAuto;
      } else if (value == "bar") {
        batch.progress = Progress::kBar;
      } else if (value == "lines") {
        batch.progress = Progress::kLines;
      } else {
        return usage_error("option '--progress' is auto, bar or lines");
      }
      continue;
    }
    if (name == "max_pixels" || name == "max_bytes") {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n == 0) {
        return usage_error("option '--" + name + "' needs a positive whole number");
      }
      (name == "max_pixels" ? limits.max_pixels : limits.max_bytes) = n;
      continue;
    }
    if (Status s = set_option(options, name, value); !s) return usage_error(s.error().message);
    if (name == "format") format_given = true;
  }
  // Several files: --out-dir, or a folder and the folder its results go to.
  std::error_code ec;
  if (!out_dir_given && positional.size() == 2 &&
      std::filesystem::is_directory(positional[0], ec)) {
    batch.out_dir = positional.back();
    positional.pop_back();
    out_dir_given = true;
  }
  if (out_dir_given) {
    if (positional.empty()) return usage_error("no inputs for --out-dir");
    if (timings) return usage_error("--timings is for one file");
    batch.inputs = std::move(positional);
    batch.options = options;
    batch.limits = limits;
    return run_batch(batch, err, err_is_terminal);
  }
  if (positional.size() != 2) {
    return usage_error(positional.empty() ? "INPUT and OUTPUT are required"
                                          : "expected exactly INPUT and OUTPUT");
  }
  const std::string& input = positional[0];
  const std::string& output = positional[1];
  if (!format_given && output != "-") {
    const std::string ext = std::filesystem::path(output).extension().string();
    auto f = imaging::parse_output_format(ext.empty() ? "" : ext.substr(1));
    if (!f) {
      return usage_error("cannot tell the output format from '" + output +
                         "': use .png, .gif or .webp, or --format");
    }
    options.format = *f;
  }
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  Clock::time_point start = Clock::now();
  auto bytes = read_file(input, limits.max_bytes);
  const double read_seconds = seconds_since(start);
  if (!bytes) {
    err << "dither: " << bytes.error().message << "\n";
    return kFailed;
  }
  auto result = process(*bytes, options, limits);
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
  if (timings) {
    // One JSON object on stderr, seconds of wall time per stage (pipeline.h, StageTimes).
    const StageTimes& t = result->stages;
    char line[320];
    std::snprintf(line, sizeof line,
                  "{\"read\": %.6f, \"decode\": %.6f, \"dither\": %.6f, \"waited\": %.6f, "
                  "\"encode\": %.6f, \"write\": %.6f}\n",
                  read_seconds, t.decode, t.dither, t.waited, t.encode, seconds_since(start));
    err << line;
  }
  return kOk;
}

}  // namespace dither::cli
