// The command line's batch mode: many inputs (files, or the images of a folder) into an output
// folder, files spread over every core, a progress bar on a terminal (one line per file
// otherwise) and a summary; a file that fails is reported and the others are still done.
//
//   dither photos/ out/ --palette pico8          # every image of photos/ to out/NAME.png
//   dither a.jpg b.png c.webp --out-dir out      # these three files
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "imaging/codec.h"
#include "pipeline/process_options.h"

namespace dither::cli {

enum class Progress { kAuto, kBar, kLines };

struct Batch {
  std::vector<std::string> inputs;   // files and folders, as given
  std::string out_dir;               // created when missing
  pipeline::ProcessOptions options;  // options.format: of every output (PNG unless --format)
  imaging::Limits limits;
  int jobs = 0;  // files at once; 0 = one per core
  Progress progress = Progress::kAuto;
};

// The images a folder holds directly, by their names (.jpg .jpeg .png .webp .gif .tif .tiff, any
// case), sorted; other files are left out.
std::vector<std::string> images_in(const std::string& folder);

// Runs the batch; messages on `err` (every line starts with "dither: "). kAuto draws a bar when
// `err_is_terminal`. Returns 0 when every file was done, 1 when any failed, 2 for bad usage
// (nothing to do, an output folder that cannot be made).
int run_batch(const Batch& batch, std::ostream& err, bool err_is_terminal);

}  // namespace dither::cli
