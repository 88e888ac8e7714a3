// Thin main: hands the arguments to cli::run.
#include <unistd.h>

#include <iostream>

#include "cli/cli.h"
#include "imaging/codec.h"

int main(int argc, char** argv) {
  dither::imaging::leave_out_vips_modules();
  std::vector<std::string> args(argv + 1, argv + argc);
  return dither::cli::run(args, std::cout, std::cerr, isatty(STDERR_FILENO) == 1);
}
