#include "cli/cli.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

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
         "       dither --list | --help | --version\n\n"
         "Dithers INPUT (JPEG, PNG, WebP, GIF or TIFF) to OUTPUT. The output format follows\n"
         "OUTPUT's extension (.png, .gif, .webp) unless --format is given; OUTPUT '-' writes to\n"
         "standard output. Every output pixel is a colour of the palette.\n\noptions:\n";
  for (const auto& o : option_table()) {
    std::string left = "  " + flag_of(o.name) + " " + std::string(o.value_hint);
    if (left.size() < 28) left.resize(28, ' ');
    out << left << " " << o.help << "\n";
  }
  out << "  --max-pixels N               refuse larger images (default 250000000)\n"
         "  --max-bytes N                refuse larger files (default 536870912)\n"
         "  --timings                    print seconds per stage (read, decode, dither, encode,\n"
         "                               write) as one JSON line on standard error\n\n"
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

Result<std::vector<uint8_t>> read_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return make_error(ErrorKind::kNotFound, "cannot read '" + path + "': " + ec.message());
  if (size > max_bytes) {
    return make_error(ErrorKind::kTooLarge, "'" + path + "' is " + std::to_string(size) +
                                                " bytes, over the limit of " +
                                                std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof())
    return make_error(ErrorKind::kNotFound, "cannot read '" + path + "'");
  return bytes;
}

Status write_file(const std::string& path, const std::vector<uint8_t>& bytes, std::ostream& out) {
  if (path == "-") {
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.flush();
    return {};
  }
  // Write beside the target and rename, so a failure never leaves half a file behind.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    if (!f.good()) {
      std::remove(tmp.c_str());
      return make_error(ErrorKind::kInternal, "cannot write '" + path + "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return make_error(ErrorKind::kInternal, "cannot write '" + path + "': " + ec.message());
  }
  return {};
}

bool is_boolean(std::string_view name) {
  for (const auto& o : option_table()) {
    if (o.name == name) return o.type == OptionType::kBoolean;
  }
  return false;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto usage_error = [&](const std::string& message) {
    err << "dither: " << message << " (try --help)\n";
    return kUsage;
  };
  ProcessOptions options;
  imaging::Limits limits{kDefaultMaxBytes, kDefaultMaxPixels};
  std::vector<std::string> positional;
  bool format_given = false;
  bool timings = false;
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
