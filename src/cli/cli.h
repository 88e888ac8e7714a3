// The `dither` command-line tool, as a function so tests can call it without a process.
//
//   dither INPUT OUTPUT [options]     e.g. dither photo.jpg out.png --palette pico8 --serpentine
//   dither --list | --help | --version
//
// Exit codes: 0 success, 1 the input could not be processed, 2 bad usage. Every failure prints
// exactly one line to `err`, starting with "dither: ".
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace dither::cli {

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace dither::cli
