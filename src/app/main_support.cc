#include "app/main_support.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <exception>

#include "app/app.h"

namespace dither {

int run_main(Roles roles) {
  Result<Config> config = load_config([](const char* name) { return std::getenv(name); });
  if (!config) {
    spdlog::error("configuration: {}", config.error().message);
    return 2;
  }
  config->roles = roles;
  try {
    App app(std::move(*config));
    app.start();
    app.run();
    app.stop();
  } catch (const std::exception& e) {
    spdlog::error("cannot start: {}", e.what());
    return 1;
  }
  return 0;
}

}  // namespace dither
