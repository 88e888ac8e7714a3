#include "app/main_support.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <exception>

#include "app/app.h"
#include "imaging/codec.h"
#include "observability/logging.h"

namespace dither {

int run_main(Roles roles) {
  imaging::leave_out_vips_modules();
  const GetEnv getenv = [](const char* name) { return std::getenv(name); };
  Result<Config> config = load_config(getenv);
  if (!config) {
    // Said in the format asked for when that much of the configuration is usable.
    const char* format = getenv("LOG_FORMAT");
    observability::configure_logging(
        {.format = observability::parse_log_format(format != nullptr ? format : "")
                       .value_or(observability::LogFormat::kText),
         .program = program_name(roles)});
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
