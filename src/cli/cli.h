// The `dither` command-line tool, as a function so tests can call it without a process.
//
//   dither INPUT OUTPUT [options]     e.g. dither photo.jpg out.png --palette pico8 --serpentine
//   dither FOLDER OUT_FOLDER [options]          every image of FOLDER (batch.h)
//   dither INPUT... --out-dir OUT_FOLDER [options]
//   dither --list | --help | --version
//
// Exit codes: 0 success, 1 an input could not be processed, 2 bad usage. With one file, every
// failure prints exactly one line to `err`, starting with "dither: "; with several, one line per
// failed file and a summary (and progress: a bar when `err_is_terminal`, else a line per file).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace dither::cli {

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        bool err_is_terminal = false);

}  // namespace dither::cli
