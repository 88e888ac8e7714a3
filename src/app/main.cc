// ditherd: the whole system in one process (embedded mode). Configuration: environment
// variables, see README.md.
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <exception>

#include "app/app.h"
#include "app/config.h"

int main() {
  dither::Result<dither::Config> config =
      dither::load_config([](const char* name) { return std::getenv(name); });
  if (!config) {
    spdlog::error("configuration: {}", config.error().message);
    return 2;
  }
  try {
    dither::App app(std::move(*config));
    app.start();
    app.run();
    app.stop();
  } catch (const std::exception& e) {
    spdlog::error("cannot start: {}", e.what());
    return 1;
  }
  return 0;
}
